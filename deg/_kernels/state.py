"""The named state the kernels share (docs/algorithm.md names each part).

Each is a ``typing.NamedTuple``: numba compiles it as a tuple whose fields are read by name,
and caches kernels that take it. A kernel called from Python takes the same fields as a plain
``tuple`` and names them on entry (``Graph(*graph)``): numba types a named tuple argument in
Python on every call (~1 us each; a search call passes seven), a plain tuple in C.
"""

from typing import NamedTuple

import numpy as np


class Graph(NamedTuple):
    """The index's graph over internal ids: ``vectors`` (n, dim) float32; ``neighbors``
    (n, d) int32, each row in search-view order, a row's own id marking an empty slot;
    ``weights`` (n, d) float32, the distance of each edge, in the same order; ``metric``, the
    distance (``distances.L2``, ``IP`` or ``COS``)."""

    vectors: np.ndarray
    neighbors: np.ndarray
    weights: np.ndarray
    metric: int


class Tree(NamedTuple):
    """The search's entry tree (``entry_tree``): member ids, each node's two places in the
    members, the upper nodes' hyperplanes and every node's offset."""

    members: np.ndarray
    pairs: np.ndarray
    planes: np.ndarray
    offsets: np.ndarray


class Basis(NamedTuple):
    """The stored basis (``rotation``): reflection vectors ``yt`` (r, dim) and their
    triangular factor ``tt`` (r, r); no rows: the input basis."""

    yt: np.ndarray
    tt: np.ndarray


class SearchSpec(NamedTuple):
    """One search's settings (``search.search_one``): ``k`` results, slack ``eps``, ``lead``
    (float32; < 1 rejects a candidate on its first distance chunk), ``exact`` distances,
    ``include_entry`` (entries may be results), ``own_entry`` (the query is the entry's own
    vector: its edges' weights are its distances), the budget ``max_dc`` (0: none) and the
    slots followed per vertex, ``max_degree``."""

    k: int
    eps: float
    lead: np.float32
    exact: bool
    include_entry: bool
    own_entry: bool
    max_dc: int
    max_degree: int


class Filters(NamedTuple):
    """What each query of a batch may return (``filters``): bitset rows over ids ``words``
    (nf, w) uint64, no words: no filter; the row of each query ``of`` (nq,) int32, empty: row
    0 for all; and a distance-computation budget per row ``budget`` (nf,) int64, 0: none (the
    search then falls back to an exact scan when it is spent, ``deg._filtering``)."""

    words: np.ndarray
    of: np.ndarray
    budget: np.ndarray


class Scratch(NamedTuple):
    """Per-thread search scratch, one row per thread: visited tags (uint16 per vertex), the
    thread's current tag, the candidate heap (uint64 per vertex), the result heap's distances
    and ids, and the fresh neighbours' slots."""

    visited: np.ndarray
    tags: np.ndarray
    cand: np.ndarray
    res_d: np.ndarray
    res_i: np.ndarray
    fresh: np.ndarray


class Results(NamedTuple):
    """A batch's answers: ids (nq, k) int32, distances (nq, k) float32, and the distance
    computations of each query (nq,) int64."""

    ids: np.ndarray
    dists: np.ndarray
    counts: np.ndarray


class DistanceLog(NamedTuple):
    """The exact distances each query's search computed (construction reuses them): ids and
    distances (nq, capacity), and how many of each row are filled (nq,)."""

    ids: np.ndarray
    dists: np.ndarray
    counts: np.ndarray


class OptSpec(NamedTuple):
    """The edge optimisation's settings: search size ``k`` and slack ``eps`` of its searches,
    and the longest swap path ``max_path``."""

    k: int
    eps: float
    max_path: int


class OptScratch(NamedTuple):
    """One thread's scratch for the optimisation and the repair: a search's scratch rows
    (visited, tag, candidate and result heaps), its sorted results (``out_d``, ``out_i``),
    the fresh slots and one group of rows read side by side (``group_i``, ``group_d``)."""

    visited: np.ndarray
    tags: np.ndarray
    cand: np.ndarray
    res_d: np.ndarray
    res_i: np.ndarray
    out_d: np.ndarray
    out_i: np.ndarray
    fresh: np.ndarray
    group_i: np.ndarray
    group_d: np.ndarray


class EditLog(NamedTuple):
    """The edits of one improvement try, so that a failed try is undone: row, old id, new id
    and the old weight of each changed slot."""

    u: np.ndarray
    old: np.ndarray
    new: np.ndarray
    w: np.ndarray
