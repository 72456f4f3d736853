"""Graph checks and quality measures (algorithm.md §12): the invariants every test asserts.

``check(index)`` never raises on a broken graph; it reports what holds, so a failing test can
say which invariant broke.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deg import fileformat
from deg._kernels import verify as kverify
from deg._kernels import view as kview
from deg._kernels.distances import edge_distances

if TYPE_CHECKING:
    from deg.index import Index


def _graph(index):
    n = len(index)
    store = index.internals().store
    return n, store.vectors[:n], store.neighbors[:n], store.weights[:n]


# the keys of check()'s report that are invariants (the rest are measures)
INVARIANTS = (
    "regular",
    "no_self_loops",
    "undirected",
    "weights_exact",
    "connected",
    "view_current",
)


def check(index: Index, gq_sample: int = 1000, seed: int = 0) -> dict:
    """Check the DEG invariants and measure the graph.

    Returns
    -------
    dict
        ``regular``: every row has d slots, no vertex twice, with
        ``max(0, d - (n - 1))`` empty slots (0 once n > d); ``no_self_loops``: no self loop
        beyond those; ``undirected``: u lists v iff v lists u, with the same weight;
        ``weights_exact``: stored weights equal recomputed distances (``max_weight_error``
        gives the largest difference); ``connected``: a BFS from vertex 0 reaches all n;
        ``view_current``: every row that the index holds as in search-view order (its
        signature matches) is in the order computed afresh; rows changed since their last
        ordering are due to be reordered before a pruned search reads them, and do not count
        (``view_pending`` says how many there are);
        ``ok``: all of these. ``aew``: average edge weight over all n*d slots (algorithm.md §12).
        ``gq``: graph quality, the fraction of edges of ``gq_sample`` sampled vertices that lead
        to one of the vertex's exact d nearest other vertices.
    """
    with index._lock.reading():  # one state, though other threads add or remove meanwhile
        return _check(index, gq_sample, seed)


def _check(index: Index, gq_sample: int, seed: int) -> dict:
    n, vectors, nb, w = _graph(index)
    d = index.edges_per_vertex
    out = {"n": n, "edges_per_vertex": d}
    if n == 0:
        out.update(
            regular=True,
            no_self_loops=True,
            undirected=True,
            weights_exact=True,
            max_weight_error=0.0,
            connected=True,
            view_current=True,
            view_pending=0,
            aew=0.0,
            gq=1.0,
            ok=True,
        )
        return out
    ids = np.arange(n)
    self_slot = nb == ids[:, None]
    expected_empty = max(0, d - (n - 1))
    in_range = bool(((nb >= 0) & (nb < n)).all())
    out["no_self_loops"] = bool((self_slot.sum(axis=1) == expected_empty).all())
    # with exactly the expected empty slots, the other d - empty must be distinct ids
    out["regular"] = in_range and out["no_self_loops"] and not fileformat.repeats_a_neighbor(nb)
    out["undirected"] = in_range and _undirected(nb, w, self_slot, n)
    store = index.internals().store
    recomputed = edge_distances(vectors, nb, store.metric_code, n) if in_range else w
    err = np.abs(recomputed - w)
    out["max_weight_error"] = float(err.max())
    out["weights_exact"] = in_range and bool((err <= 1e-6 * np.maximum(1.0, np.abs(w))).all())
    out["connected"] = in_range and kverify.reached(nb, n, np.empty(n, np.int64)) == n
    out["view_current"] = in_range and _view_current(index, n)
    out["view_pending"] = int(kview.pending(nb, n, store.sig, store.gen))
    out["aew"] = float(w.mean(dtype=np.float64))
    out["gq"] = graph_quality(index, gq_sample, seed) if in_range and n > d else 1.0
    out["ok"] = all(out[key] for key in INVARIANTS)
    return out


def _view_current(index, n):
    """Every row its signature calls ordered, against its order computed afresh."""
    store = index.internals().store
    return kview.misordered(store.graph(), n, store.sig, store.gen) < 0


def _undirected(nb, w, self_slot, n):
    """Every edge (u, v, w) has its twin (v, u, w): compare the sorted forward/reverse keys."""
    u = np.repeat(np.arange(n, dtype=np.int64), nb.shape[1])[~self_slot.ravel()]
    v = nb.ravel().astype(np.int64)[~self_slot.ravel()]
    wt = w.ravel()[~self_slot.ravel()]
    fwd = np.argsort(u * n + v, kind="stable")
    rev = np.argsort(v * n + u, kind="stable")
    return bool(
        np.array_equal((u * n + v)[fwd], (v * n + u)[rev]) and np.array_equal(wt[fwd], wt[rev])
    )


def average_edge_weight(index: Index) -> float:
    """AEW: mean stored weight over all n*d slots (the quantity edge optimisation lowers)."""
    n, _, _, w = _graph(index)
    return float(w.mean(dtype=np.float64)) if n else 0.0


def graph_quality(index: Index, sample: int = 1000, seed: int = 0) -> float:
    """GQ: share of the sampled vertices' edges that lead to one of their exact d-NN (self
    excluded); NaN when nothing is sampled (``sample=0``)."""
    n, _, nb, _ = _graph(index)
    if sample <= 0:
        return float("nan")
    d = index.edges_per_vertex
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    x = index.internals().store.floats(slice(0, n)).astype(np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    hits = 0
    for lo in range(0, picked.size, 256):
        rows = picked[lo : lo + 256]
        dots = x[rows] @ x.T
        dist = sq[rows, None] - 2 * dots + sq[None, :] if index.metric == "l2" else 1.0 - dots
        dist[np.arange(rows.size), rows] = np.inf
        top = np.argpartition(dist, d - 1, axis=1)[:, :d]
        for r, vid in enumerate(rows):
            hits += np.intersect1d(top[r], nb[vid], assume_unique=True).size
    return hits / (picked.size * d)
