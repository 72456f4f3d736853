"""The per-vertex arrays of an index, their growth, and the label map over them.

Struct of arrays over dense internal ids (``vid``): vectors, neighbour ids and weights (the
graph, ``state.Graph``), labels, each row's search-view signature and each id's vector
generation (``deg._kernels.view``). Capacity doubles as the index grows; rows start on cache
lines (``deg._aligned``).
"""

from __future__ import annotations

import numpy as np

from deg import _aligned as aligned
from deg import _dtypes as dtypes
from deg import _edgecodes as edgecodes
from deg import _validation as check
from deg._kernels import view as kview
from deg._labelmap import LabelMap

# the per-vertex arrays, in the order of ``Storage.arrays`` (files read the first four)
PER_VERTEX = (
    "vectors",
    "neighbors",
    "weights",
    "labels",
    "sig",
    "gen",
    "codes",
    "edge_codes",
    "edge_factors",
    "esig",
    "eslot",
)


class Storage:
    """The arrays, ``n`` vertices in use, the next default label and the label map. Callers
    hold the index's lock."""

    def __init__(
        self,
        dim: int,
        d: int,
        metric_code: int,
        dtype: str = "float32",
        coded: bool = False,
        edge_coded: bool = False,
    ):
        self.dim, self.d, self.metric_code = dim, d, metric_code
        self.dtype = dtype  # the vectors' type (deg._dtypes), stored as dtypes.STORED[dtype]
        self.code_dim = dim if coded else 0  # codes of a quantized index (deg._quantizer)
        # edge codes of a quantize="rabitq" index (deg._edgecodes): words x slots, factors x slots
        lanes = edgecodes.lanes(d) if edge_coded else 0
        self.edge_width = (edgecodes.padded_dim(dim) // 64 * lanes, edgecodes.FACTORS * lanes)
        self.n = 0
        self.next_label = 0
        self.epoch = 1  # the next vector generation (deg._kernels.view); 0 is a loaded one's
        self.read_only = False
        # counts the changes of which ids hold which labels (adds, removals, loads): filters
        # (deg._filtering) keep their bitsets over ids until it moves
        self.changes = 0
        self.vid_of = LabelMap()
        self.allocate(0)

    def allocate(self, capacity: int) -> None:
        self.take(capacity, self.empty_arrays(capacity))

    def empty_arrays(self, capacity: int) -> tuple:
        """Fresh per-vertex arrays for ``capacity`` vertices, in ``arrays()`` order."""
        return (
            aligned.zeros((capacity, self.dim), dtypes.STORED[self.dtype]),
            aligned.zeros((capacity, self.d), np.int32),
            aligned.zeros((capacity, self.d), np.float32),
            np.full(capacity, -1, dtype=np.int64),
            np.full(capacity, kview.EMPTY_SIG, dtype=np.uint32),
            np.zeros(capacity, dtype=np.uint32),
            aligned.zeros((capacity, self.code_dim), np.uint8),
            *self.edge_arrays(capacity),
        )

    def edge_arrays(self, capacity: int) -> tuple:
        """Edge codes, their factors, each row's signature and each slot's key (``eslot``:
        which neighbour a slot was encoded for, 0 for none) when encoded."""
        words, factors = self.edge_width
        rows = capacity if words else 0
        return (
            aligned.zeros((capacity, words), np.uint64),
            aligned.zeros((capacity, factors), np.float32),
            np.full(rows, kview.EMPTY_SIG, dtype=np.uint32),
            np.zeros((rows, self.d), dtype=np.uint32),
        )

    def allocate_edges(self, capacity: int) -> None:
        self.edge_codes, self.edge_factors, self.esig, self.eslot = self.edge_arrays(capacity)

    def take(self, capacity: int, arrays: tuple) -> None:
        """Use ``arrays`` (``arrays()`` order, ``capacity`` rows) from now on."""
        for name, a in zip(PER_VERTEX, arrays, strict=True):
            setattr(self, name, a)
        self.capacity = capacity

    def adopt(self, vectors, neighbors, weights, labels, sig, read_only, next_label) -> None:
        """Take the rows of a loaded index (checked): copied, or with ``read_only`` kept as
        they are (a copy-on-write map). Generations start again at 0."""
        n = vectors.shape[0]
        if read_only:
            self.vectors, self.neighbors, self.weights = vectors, neighbors, weights
            self.labels, self.sig = labels, sig
            self.gen = np.zeros(n, dtype=np.uint32)
            self.codes = aligned.zeros((n, self.code_dim), np.uint8)  # encoded by the caller
            self.allocate_edges(n)  # encoded at the first coded search
            self.capacity = n
            self.read_only = True
        else:
            self.allocate(n)
            for dst, src in zip(self.arrays(), (vectors, neighbors, weights, labels, sig)):
                dst[:n] = src
        self.n = n
        self.changes += 1
        self.vid_of.rebuild(labels)
        self.next_label = max(next_label, int(labels.max()) + 1 if n else 0)

    def floats(self, rows) -> np.ndarray:
        """The stored vectors ``rows`` (ids, a slice or a mask) as float32 values, in the
        stored basis."""
        return dtypes.to_float32(self.vectors[rows], self.dtype)

    def arrays(self) -> tuple:
        """Every per-vertex array, in one fixed order (``PER_VERTEX``: the codes last)."""
        return tuple(getattr(self, name) for name in PER_VERTEX)

    def reserve(self, needed: int) -> bool:
        """Grow capacity by doubling so that ``needed`` vertices fit; True if it grew."""
        room = self.grown(needed)
        if room is not None:
            self.take(*room)
        return room is not None

    def grown(self, needed: int) -> tuple | None:
        """``(capacity, arrays)`` for ``take``: new arrays (capacity doubled until ``needed``
        fit) holding rows ``0..n-1``, or None when they fit already. It only reads the
        arrays in use, so a writer makes them while searches go on (the copy is a pass over
        the whole index) and takes them in a short exclusive step; nothing may change those
        rows in between (the caller keeps other writers out)."""
        if needed <= self.capacity:
            return None
        capacity = max(needed, 2 * self.capacity, 64)
        arrays = self.empty_arrays(capacity)
        for new, prev in zip(arrays, self.arrays()):
            new[: self.n] = prev[: self.n]
        return capacity, arrays

    def graph(self, neighbors: np.ndarray | None = None, vectors: np.ndarray | None = None):
        """The kernels' ``Graph`` as a plain tuple (see ``state``), optionally over other
        neighbour rows (construction's copy) or other vectors (a quantized search's codes)."""
        nb = self.neighbors if neighbors is None else neighbors
        vec = self.vectors if vectors is None else vectors
        return vec, nb, self.weights, self.metric_code

    def next_generation(self) -> np.uint32:
        """A vector generation not given before (wraps after 2**32 - 1)."""
        gen = self.epoch
        self.epoch = gen % 0xFFFFFFFF + 1
        return np.uint32(gen)

    def commit(self, start: int, stop: int) -> None:
        """Make vertices ``start..stop-1`` visible: count them and register their labels."""
        self.vid_of.add(start, stop, self.labels)
        self.n = stop
        self.changes += 1
        self.next_label = max(self.next_label, int(self.labels[start:stop].max()) + 1)

    def default_labels(self, m: int) -> np.ndarray:
        """Labels for ``m`` vectors added without any: after the largest label so far."""
        if self.next_label + m - 1 > check.MAX_LABEL:
            raise ValueError(
                f"default labels would pass {check.MAX_LABEL} (they continue after the largest "
                f"label added, {self.next_label - 1}); pass labels explicitly"
            )
        return np.arange(self.next_label, self.next_label + m, dtype=np.int64)

    def check_room(self, new_labels: np.ndarray, given: bool) -> None:
        """Refuse an add whose labels (``given`` by the caller; default ones start above every
        label ever added) are in the index already, or that would pass the size bound."""
        if given:
            clash = self.vid_of.first_present(new_labels, self.labels)
            if clash is not None:
                raise ValueError(f"label {clash} is already in the index")
        if self.n + len(new_labels) > check.MAX_VERTICES:
            raise ValueError(
                f"an index holds at most {check.MAX_VERTICES} vectors; it holds {self.n}, and "
                f"{len(new_labels)} more came"
            )

    def vids(self, labels) -> np.ndarray:
        """Internal ids of ``labels`` (integers); ``KeyError`` naming the first unknown."""
        return self.vid_of.find(check.lookup_labels(labels), self.labels)

    def file_signatures(self) -> np.ndarray:
        """The row signatures as a file stores them (generations 0; see ``kview``)."""
        out = np.empty(self.n, dtype=np.uint32)
        kview.plain_signatures(self.neighbors, self.n, self.sig, self.gen, out)
        return out

    def aew(self) -> float:
        """Average edge weight over all n*d slots."""
        return float(self.weights[: self.n].mean(dtype=np.float64)) if self.n else 0.0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays()) + self.vid_of.nbytes
