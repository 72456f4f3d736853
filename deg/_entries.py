"""Search entries: the entry tree (``deg._kernels.entry_tree``) over the vertices, its draw,
its upkeep when vertices are removed, and when to draw it again."""

import math
import os

import numpy as np

from deg import _aligned as aligned
from deg._kernels import entry_tree as ktree
from deg._kernels.distances import CHUNK, FIRST_CHUNK

MIN_VERTICES = 1024  # below this no tree: vertex 0 is close to everything in a small graph
LEAF = 8  # members per leaf at most (a leaf holds LEAF/2 to LEAF): 4-8 entries per query
# the upper levels whose hyperplanes are stored take at most this share of the vectors' bytes
# (SIFT-small: 6 of 11 levels, Fashion-MNIST rotated: 12 of 13); the rest read two vertices
PLANES_SHARE = 0.01
# DEG_ENTRY_TREE=0: no tree, every query enters at vertex 0 (as the reference implementation)
ENABLED = os.environ.get("DEG_ENTRY_TREE", "1") != "0"


def depth(n):
    """Levels of the tree drawn over n vertices: 0 for small graphs, else leaves of at most
    ``LEAF`` members."""
    return 0 if n < MIN_VERTICES or not ENABLED else math.ceil(math.log2(n / LEAF))


def stored_levels(levels, n, dim, width):
    """How many upper levels of a tree over n vectors keep their hyperplanes (``width`` floats
    each) within ``PLANES_SHARE`` of the vectors' bytes."""
    budget = PLANES_SHARE * n * dim / width  # hyperplanes
    return min(levels, int(math.log2(budget + 1))) if budget >= 1 else 0


def empty(width):
    """The tree of a small graph: no hyperplanes, no members (queries enter at vertex 0)."""
    return (
        np.zeros(0, np.int32),
        np.zeros((0, 2), np.int32),
        np.zeros((0, width), np.float32),
        np.zeros(0, np.float32),
    )


def draw(vectors, n, seed, width):
    """The entry tree over vertices ``0..n-1``: ``(members, pairs, planes, offsets)``, a
    function of the seed, n and their vectors' first ``width`` coordinates (see
    ``entry_tree.grow``)."""
    levels = depth(n)
    if not levels:
        return empty(width)
    members = np.arange(n, dtype=np.int32)
    pairs = np.empty((2**levels - 1, 2), np.int32)
    top = stored_levels(levels, n, vectors.shape[1], width)
    planes = aligned.empty((2**top - 1, width), np.float32)
    offsets = np.empty(2**levels - 1, np.float32)
    ktree.grow(vectors, np.uint64((seed & 0xFFFFFFFF) << 32 | n), members, pairs, planes, offsets)
    return members, pairs, planes, offsets


def stale(n, drawn_at):
    """Must the tree drawn over ``drawn_at`` vertices be drawn again for n? When the graph grew
    by half, shrank by a third (1.5 n <= drawn_at) or crossed ``MIN_VERTICES`` (a draw per
    call would cost a pass over all vectors on every small add or remove)."""
    return n >= 1.5 * drawn_at or 1.5 * n <= drawn_at or (depth(n) > 0) != (depth(drawn_at) > 0)


def renumber(members, removed, n_before):
    """Members after removals: ``removed`` lists the ids removed in order, each time the last
    vertex taking the removed one's id (``Index.remove``). A moved vertex keeps its place in
    the tree under its new id; a removed vertex's place goes to the member before it (after it
    for the first), a vertex of the same or the neighbouring leaf. Returns a new array (empty
    when no member is left)."""
    out = np.array(members, dtype=np.int32)
    return out if Chains(out).renumber(out, removed, n_before) else np.zeros(0, np.int32)


class Chains:
    """Where each vertex sits in ``members`` (``entry_tree.chain_members``), so that a
    removal renumbers only the places it changes (``entry_tree.renumber_removal``)."""

    def __init__(self, members):
        self.first = np.empty(int(members.max()) + 1 if members.size else 0, dtype=np.int32)
        self.after = np.empty(members.size, dtype=np.int32)
        self.places = np.empty(members.size, dtype=np.int32)
        ktree.chain_members(members, self.first, self.after)

    @property
    def nbytes(self) -> int:
        return self.first.nbytes + self.after.nbytes + self.places.nbytes

    def renumber(self, members, removed, n_before) -> bool:
        """``renumber`` on ``members`` itself (the array these chains index); False when no
        member is left (both are then of no use)."""
        n = n_before
        for vid in removed:
            ok = ktree.renumber_removal(
                members, self.first, self.after, np.int32(vid), np.int32(n - 1), self.places
            )
            if not ok:
                return False
            n -= 1
        return True


TYPES = {"members": np.int32, "pairs": np.int32, "planes": np.float32, "offsets": np.float32}


class EntryTree:
    """The index's entry tree and the size of the graph it was drawn over (``drawn_at``)."""

    def __init__(self, width: int):
        self.members, self.pairs, self.planes, self.offsets = empty(width)
        self.drawn_at = 0
        self.chains = Chains(self.members)

    def arrays(self) -> tuple:
        """``(members, pairs, planes, offsets)``: the kernels' ``Tree``, the file's order."""
        return self.members, self.pairs, self.planes, self.offsets

    def adopt(self, arrays: dict, drawn_at: int) -> None:
        """Take a saved tree (already checked), copied onto cache lines."""
        self.members, self.pairs, self.planes, self.offsets = (
            aligned.copy(arrays[name], dtype) for name, dtype in TYPES.items()
        )
        self.drawn_at = drawn_at
        self.chains = Chains(self.members)

    def redraw(self, vectors: np.ndarray, drawn_at: int, seed: int, width: int) -> None:
        """Draw the tree over vertices ``0..drawn_at-1`` on their first ``width``
        coordinates."""
        self.drawn_at = drawn_at
        self.members, self.pairs, self.planes, self.offsets = draw(vectors, drawn_at, seed, width)
        self.chains = Chains(self.members)

    def redraw_for(self, store, basis_, seed: int, drawn_at: int | None = None) -> None:
        """Draw the tree over vertices ``0..drawn_at-1`` of ``store`` (default: all). In a
        rotated index it splits on the first distance chunk, which holds most of each
        distance; otherwise on the first ``CHUNK`` coordinates at most."""
        dim = store.dim
        width = FIRST_CHUNK if basis_.rotated and dim > CHUNK else min(dim, CHUNK)
        self.redraw(store.vectors, store.n if drawn_at is None else drawn_at, seed, width)

    def after_removals(self, removed: list, n_before: int, n: int) -> bool:
        """Renumber the members after removals (``renumber``); False when the tree must be
        drawn again instead (the graph shrank by a third, or no member is left)."""
        if stale(n, self.drawn_at):
            return False
        if len(removed) and self.members.size:
            return self.chains.renumber(self.members, removed, n_before)
        return True

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays()) + self.chains.nbytes
