"""Edge codes of a ``quantize="rabitq"`` index (``deg._kernels.edges``; docs/algorithm.md
§3.8): the rotation they are taken in, and when they are brought up to date.

The rotation is ``ROUNDS`` rounds of random signs and Hadamard transforms over the stored
basis, centred on the mean of the vectors the index held when it first reached
``MIN_VECTORS`` (fitted once, like the ``sq8`` map; the signs come from a seed, so a file
keeps the mean and the seed). The codes themselves are not saved: they follow the graph and
the vectors, and are encoded again, row by row, wherever a row's signature changed — by an
add, remove or optimize at its end (``catch_up``), and after a load by the first coded
search (all rows once).
"""

from __future__ import annotations

import numpy as np

from deg import _basis as basis
from deg import _view as view
from deg._kernels import edges as kedges

KIND = "rabitq"
FACTORS = kedges.FACTORS
MIN_VECTORS = basis.MIN_VECTORS
# two rounds: one gave estimates of about the same spread (relative error 2.7% against 2.6%
# on Fashion-MNIST) but 1.5 points less recall at the same expansions (bench/RESULTS.md)
ROUNDS = 2
SEED_MAX = 2**63 - 1


def padded_dim(dim: int) -> int:
    """Coordinates of a code: ``dim`` rounded up to whole 64-bit words."""
    return -(-dim // 64) * 64


def lanes(d: int) -> int:
    """Slots per row of codes: d rounded up to ``kedges.LANES``."""
    return -(-d // kedges.LANES) * kedges.LANES


class EdgeCodes:
    """The rotation (``mean``, ``signs`` from ``seed``), empty until fitted, and whether
    some rows' codes may be out of date (``stale``)."""

    def __init__(self, dim: int):
        self.dim = dim
        self.mean = np.zeros(0, np.float32)
        self.seed = 0
        self.signs = np.ones((ROUNDS, padded_dim(dim)), np.float32)
        self.stale = True

    @property
    def fitted(self) -> bool:
        return self.mean.shape[0] > 0

    def fit(self, sample: np.ndarray, seed: int) -> None:
        """Centre on float32 rows ``sample`` (stored basis); signs drawn from ``seed``."""
        self.adopt(np.asarray(sample, np.float64).mean(axis=0), int(seed) % SEED_MAX)

    def adopt(self, mean, seed: int) -> None:
        self.mean = np.asarray(mean, np.float32).copy()
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self.signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=self.signs.shape)
        self.stale = True

    def state(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "seed": self.seed}

    @staticmethod
    def check_state(state, dim: int) -> str | None:
        """Why a file's ``state`` is not a rotation for vectors of ``dim`` (None if it is)."""
        shape = "quantizer state is not {'mean': [numbers], 'seed': integer}"
        if not isinstance(state, dict) or set(state) != {"mean", "seed"}:
            return shape
        mean, seed = state["mean"], state["seed"]
        if not isinstance(mean, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean
        ):
            return shape
        if type(seed) is not int or not 0 <= seed <= SEED_MAX:
            return f"quantizer seed {seed!r} is not an integer in 0..{SEED_MAX}"
        try:
            mean = np.asarray(mean, np.float64)
        except OverflowError:
            return "quantizer state has a number beyond float64"
        if mean.shape != (dim,) or not np.isfinite(mean).all() or np.abs(mean).max() > 3e38:
            return f"quantizer mean of shape {mean.shape} is not {dim} finite float32 values"
        return None

    def refresh(self, store, threads=None) -> int:
        """Encode every row whose signature changed since it was encoded; returns how many.
        The caller holds the write lock. Fresh only once every part is done (an interrupted
        refresh leaves the codes stale)."""
        if not self.fitted:
            self.stale = False
            return 0
        graph = store.graph()
        args = (
            store.gen,
            store.esig,
            store.eslot,
            self.mean,
            self.signs,
            store.edge_codes,
            store.edge_factors,
        )
        count = view.over_rows(
            store.n, threads, lambda lo, hi: kedges.encode_rows(graph, lo, hi, *args)
        )
        self.stale = False
        return count

    def catch_up(self, store, steps, signed: bool = False) -> int:
        """At the end of an add, remove or optimize (the caller holds the writer mutex):
        encode the rows it edited (their changed slots: ``kedges.update_row``) so that
        searches find the codes fresh again without waiting for them; returns how many.
        Which rows is found by a pass over the signatures (``signed``: every row's ``sig``
        is its signature, as after the view's refresh, so the rows are those whose ``esig``
        differs, found without hashing any row), and ``view.CATCH_UP`` rows at a time are
        encoded, outside the lock (it only reads, and no other writer runs); each part is
        then copied in by a short exclusive step (``steps``): encoding there, a few rows per
        step, made every search wait."""
        if not self.stale:
            return 0
        if not self.fitted:
            self.stale = False
            return 0
        if signed:
            rows = np.flatnonzero(store.esig[: store.n] != store.sig[: store.n]).astype(np.int64)
        else:
            rows = view.pending_rows(store, store.esig)
        graph = store.graph()
        part = min(view.CATCH_UP, rows.size)
        codes = np.empty((part, store.edge_codes.shape[1]), np.uint64)
        factors = np.empty((part, store.edge_factors.shape[1]), np.float32)
        sigs = np.empty(part, np.uint32)
        keys = np.empty((part, store.eslot.shape[1]), np.uint32)
        index_codes = (store.edge_codes, store.edge_factors, store.eslot)
        for a in range(0, rows.size, view.CATCH_UP):
            listed = rows[a : a + view.CATCH_UP]
            m = listed.size
            mine = (codes[:m], factors[:m], sigs[:m], keys[:m])
            kedges.encode_listed(
                graph, listed, store.gen, self.mean, self.signs, index_codes, *mine
            )
            with steps.step():
                kedges.take_listed(listed, *mine, *index_codes[:2], store.esig, store.eslot)
        self.stale = False  # every row is encoded: nothing changed them since
        return rows.size

    def ensure(self, lock, store, writer) -> bool:
        """Bring stale codes up to date before a search reads them (takes the writer mutex and
        the write lock: call with neither); False when an add, remove or optimize is under way
        (codes are not encoded between their steps: the walk then checks every row it expands,
        and expands an edited one by exact distances)."""
        view.refresh_when_free(self, lock, store, writer)
        return not self.stale
