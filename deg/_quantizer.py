"""Quantized traversal (``Index(quantize="sq8")``, docs/algorithm.md §3.7): the search walks
the graph on one-byte codes of the stored vectors and re-ranks its best candidates exactly.

A search's time goes to reading vector rows it has not seen (a cache miss each); codes are a
quarter of a float32 row, so a walk on them reads fewer lines per candidate and more of them
stay in the cache. The codes are an affine map of the stored coordinates with **one** scale
for all of them, ``code = round((x - lo) / scale)`` clipped to 0..255 (``lo`` per
coordinate, centring each coordinate's range): a squared L2 distance between a query mapped
the same way (unrounded) and a code is then the distance to the code's vector over
``scale**2``. Scaling every distance alike keeps their order, the radius-times-(1 + eps)
stopping rule and the rotated basis's first-chunk rejection as they are, so the search kernel
runs on codes unchanged, with its own k. Of the code distances the walk computed (its
distance log), the ``rerank`` least are ranked again with exact distances of the stored
vectors. ``"l2"`` and ``"cosine"`` only: an inner product of codes is not a multiple
of the vectors' (it is shifted per query), so its stopping rule would change.

The map is fitted once, when the index first holds ``MIN_VECTORS`` vectors (in the stored
basis, after the rotation is fitted); rows added later are encoded with it, values beyond the
fitted range clipped (their estimates are coarser; the re-ranking stays exact). Below that
size searches are exact. Construction, removal, optimisation, exploration and filtered
searches use the stored vectors.

``quantize="rabitq"`` shares this class for its state only: its codes are of the graph's
edges, not of the vectors (``deg._edgecodes``, ``deg._kernels.edges``).
"""

from __future__ import annotations

import numpy as np

from deg import _basis as basis
from deg import _edgecodes as edgecodes

KINDS = (None, "sq8", edgecodes.KIND)
MIN_VECTORS = basis.MIN_VECTORS
LEVELS = 255  # code values 0..255
MARGIN = 0.02  # the fitted range is widened by this share, for rows added later
# exact re-ranks of a quantized search: rerank=None takes max(k, POOL_PER_K * k) of the code
# distances its walk computed (bench/RESULTS.md: on the sentence embeddings 2k keeps float32's
# recall at every eps, k loses 0.5-1 point, a pool as the walk's own result heap of 2k widens
# the walk: ~50% more distance computations)
POOL_PER_K = 2
LOG = 4096  # code distances a walk logs for its pool (beyond: the first LOG and its results)
# a query mapped beyond this (far outside the codes' range) is searched exactly: its squared
# code distances could overflow float32 sums (1e15**2 * 2**20 coordinates < 3.4e38)
CODE_SPACE_MAX = 1e15
TINY = float(np.finfo(np.float32).tiny)  # the least normal float32: a scale below is refused
PART = 256  # queries whose logs are held at once (8 MiB)


class Quantizer:
    """The code map of an index: ``lo`` (dim,) and ``scale``, empty until fitted; for
    ``"rabitq"`` the edge codes' rotation instead (``edges``, ``deg._edgecodes``)."""

    def __init__(self, kind: str | None, dim: int, seed: int = 0):
        self.kind = kind
        self.dim = dim
        self.seed = seed
        self.lo = np.zeros(0, np.float32)
        self.scale = np.float32(1.0)
        self.edges = edgecodes.EdgeCodes(dim) if kind == edgecodes.KIND else None

    @property
    def fitted(self) -> bool:
        if self.edges is not None:
            return self.edges.fitted
        return self.lo.shape[0] > 0

    def fit(self, sample: np.ndarray) -> None:
        """Fit the map to float32 rows ``sample`` (in the stored basis)."""
        if self.edges is not None:
            self.edges.fit(sample, self.seed)
            return
        x = np.asarray(sample, np.float64)
        lo, hi = x.min(axis=0), x.max(axis=0)
        span = float((hi - lo).max()) * (1.0 + MARGIN)
        scale = span / LEVELS if span / LEVELS >= TINY else 1.0  # all alike: any scale does
        self.adopt((lo + hi) / 2 - scale * LEVELS / 2, scale)

    def adopt(self, lo, scale) -> None:
        self.lo = np.asarray(lo, np.float32).copy()
        self.scale = np.float32(scale)

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """The codes (uint8) of float32 rows in the stored basis."""
        z = np.rint((rows - self.lo) / self.scale)
        return np.clip(z, 0, LEVELS).astype(np.uint8)

    def to_code_space(self, queries: np.ndarray) -> np.ndarray:
        """Queries (float32, stored basis) mapped like the codes, unrounded."""
        return np.ascontiguousarray((queries - self.lo) / self.scale, dtype=np.float32)

    def state(self) -> dict | None:
        """What a file or pickle keeps of the map (None before it is fitted)."""
        if not self.fitted:
            return None
        if self.edges is not None:
            return self.edges.state()
        return {"lo": [float(v) for v in self.lo], "scale": float(self.scale)}

    def restore(self, state: dict) -> None:
        """Take a checked ``state`` (``check_state``) of a file or pickle."""
        if self.edges is not None:
            self.edges.adopt(state["mean"], state["seed"])
        else:
            self.adopt(state["lo"], state["scale"])

    @staticmethod
    def check_state(state, dim: int, kind: str | None = "sq8") -> str | None:
        """Why a file's ``state`` is not a map for vectors of ``dim`` (None if it is)."""
        if state is None:
            return None
        if kind == edgecodes.KIND:
            return edgecodes.EdgeCodes.check_state(state, dim)
        shape = "quantizer state is not {'lo': [numbers], 'scale': number}"
        if not isinstance(state, dict) or not {"lo", "scale"} <= state.keys():
            return shape
        lo, scale = state["lo"], state["scale"]
        numbers = isinstance(lo, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in lo
        )
        if not numbers or not isinstance(scale, (int, float)) or isinstance(scale, bool):
            return shape
        try:
            lo = np.asarray(lo, np.float64)
            scale = float(scale)
        except OverflowError:
            return "quantizer state has a number beyond float64"
        if lo.shape != (dim,) or not np.isfinite(lo).all() or np.abs(lo).max() > 3e38:
            return f"quantizer offsets of shape {lo.shape} are not {dim} finite float32 values"
        if not TINY <= scale <= 3e38:
            return f"quantizer scale {scale!r} is not a positive normal float32"
        return None


BLOCK = 8192  # rows encoded at a time (bounds the float32 temporaries)


def fits_at(quant: Quantizer, end: int) -> bool:
    """Whether ``encode_rows`` up to row ``end`` fits the map (which searches read) first."""
    return quant.kind is not None and not quant.fitted and end >= MIN_VECTORS


def encode_rows(quant: Quantizer, store, start: int, end: int) -> None:
    """Encode stored rows ``start..end-1`` into ``store.codes``; an unfitted map is fitted
    first once the index holds ``MIN_VECTORS`` (on a sample of all its rows, which are then
    all encoded). Nothing for an index without quantization or too small yet. Edge codes
    (``"rabitq"``) follow the graph instead: only the rotation is fitted here."""
    if quant.kind is None or (not quant.fitted and not fits_at(quant, end)):
        return
    if not quant.fitted:
        quant.fit(store.floats(basis.sample_rows(end)))
        start = 0
    if quant.edges is not None:
        return
    for lo in range(start, end, BLOCK):
        hi = min(lo + BLOCK, end)
        store.codes[lo:hi] = quant.encode(store.floats(slice(lo, hi)))


def pool_size(rerank, k: int, n: int) -> int:
    """The candidates a quantized search keeps for its exact re-ranking."""
    pool = max(k, POOL_PER_K * k) if rerank is None else max(k, rerank)
    return min(pool, n)
