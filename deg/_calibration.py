"""Recall targets (``Index.calibrate``, ``search(..., recall=...)``, ``explore(..., recall=...)``).

A search's recall at a given ``eps`` depends on the index (its size, its data, its degree)
and on the queries, so no fixed ``eps`` keeps a recall as an index grows. A calibration
measures it on this index: exact neighbours of a sample of queries by a brute-force scan,
then recall@k and time along a sweep of settings, a curve per ``max_degree`` (and, for a
quantized index, per ``rerank``) over a grid of ``eps``. A target is met by the curve that
reaches it at the least time per query, at the ``eps`` interpolated between the two grid
points around it (recall grows with ``eps`` and is concave in it, so the straight line
errs on the side of more recall).

The sample must be like the queries to come. Stored vectors are not: a graph was built
around them, and their neighbours are found 1-2.4 points of recall more often than those of
unseen queries (bench/RESULTS.md, "Recall targets"). Without caller queries a search is
calibrated on **held-out** vectors: a copy of the index from which the sample is removed,
so the sample is searched as queries the graph does not hold (a removal's repair leaves
their neighbours a little better linked: measured 0.2-0.6 points easier on Fashion-MNIST).
An exploration starts at stored vertices by definition: it is calibrated on stored ones.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from deg import _validation as check
from deg import datasets

METHODS = ("search", "explore")
SOURCES = ("queries", "held-out", "stored")
EPS_GRID = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5)
DEGREE_SHARES = (1.0, 0.8, 0.65, 0.5, 0.4, 0.3, 0.2)  # of d: a curve per max_degree
RERANKS_PER_K = (2, 4)  # a quantized index's curves per rerank (2k is its default)
SATURATED = 0.9995  # a curve's eps stops growing once its recall reaches this
PLATEAU = 0.0005  # ... or grows by less in a step (a quantized walk's codes cap its recall)
TIME_TIE = 0.05  # settings this much slower than the fastest are as fast (timing noise)
MIN_SECONDS = 0.1  # a setting is timed again until this much time has passed (the least
MAX_RUNS = 10  # time counts), at most this many times
SAMPLE = 1000
MAX_SAMPLE = 1 << 20
REFRESH = 0.2
HELD_OUT_SHARE = 0.1  # at most this share of an index is held out of its copy
TIE = 1e-4  # a result within this relative distance of the k-th true one counts (a tie)
MAX_TABLES = 16  # calibrations an index keeps (one per method and k; the oldest goes)
MAX_POINTS = 512  # per calibration (a full sweep has 156 at most)


class Point(NamedTuple):
    """One measured setting."""

    max_degree: int
    eps: float
    rerank: int | None
    recall: float
    distance_computations: float  # per query
    seconds: float  # per query, one thread


class Setting(NamedTuple):
    """What a search with a recall target runs, and the recall the calibration expects."""

    eps: float
    max_degree: int
    rerank: int | None
    expected_recall: float


@dataclass
class Table:
    """A calibration: its points (grouped by curve, ``eps`` ascending within each)."""

    method: str
    k: int
    source: str
    n: int  # the index's size when calibrated
    refresh: float
    points: tuple
    sample: int = SAMPLE
    changed_at: int = 0  # the index's change count when calibrated
    queries: np.ndarray | None = field(default=None, repr=False)  # the caller's, kept in memory

    def stale(self, changed: int) -> bool:
        """Has the index changed (vectors added and removed) by ``refresh`` of its size?"""
        return changed - self.changed_at > self.refresh * max(self.n, 1)

    def summary(self) -> dict:
        return {
            "method": self.method,
            "k": self.k,
            "source": self.source,
            "n": self.n,
            "refresh": self.refresh,
            "sample": self.sample,
            "points": [p._asdict() for p in self.points],
        }

    def to_json(self, changed: int) -> dict:
        out = self.summary()
        out["changed"] = changed - self.changed_at
        out["points"] = [list(p) for p in self.points]
        return out


def curves(points) -> list:
    """The points by curve (max_degree, rerank), each ``eps`` ascending."""
    by = {}
    for p in points:
        by.setdefault((p.max_degree, p.rerank), []).append(p)
    return [sorted(c, key=lambda p: p.eps) for c in by.values()]


def choose(table: Table, target: float, stacklevel: int = 2) -> Setting:
    """The least-time setting whose (interpolated) recall reaches ``target`` (of those within
    ``TIME_TIE`` of the least time, the one expecting the least recall: the nearest to the
    target); the best-recall point, with a warning, when no measured setting reaches it."""
    found = [got for curve in curves(table.points) if (got := _on_curve(curve, target))]
    if found:
        fastest = min(seconds for seconds, _ in found)
        near = [got for got in found if got[0] <= fastest * (1.0 + TIME_TIE)]
        return min(near, key=lambda got: (got[1].expected_recall, got[0]))[1]
    top = max(table.points, key=lambda p: (p.recall, -p.seconds))
    warnings.warn(
        f"recall {target} is above every setting this index's calibration measured "
        f"(at most {top.recall:.4f}, at eps={top.eps}); searching at that one",
        stacklevel=stacklevel + 1,
    )
    return Setting(top.eps, top.max_degree, top.rerank, top.recall)


def _on_curve(curve, target):
    """(seconds, Setting) where ``curve`` first reaches ``target``, or None."""
    prev = None
    for p in curve:
        if p.recall >= target:
            if prev is None:
                return p.seconds, Setting(p.eps, p.max_degree, p.rerank, p.recall)
            share = (target - prev.recall) / (p.recall - prev.recall)
            eps = prev.eps + share * (p.eps - prev.eps)
            seconds = prev.seconds + share * (p.seconds - prev.seconds)
            return seconds, Setting(float(eps), p.max_degree, p.rerank, float(target))
        prev = p
    return None


def degrees(d: int) -> list:
    """The max_degree of each curve, highest first."""
    return sorted({max(1, min(d, round(s * d))) for s in DEGREE_SHARES}, reverse=True)


def recall_at(dists: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Recall@k of returned distances against the exact ones (nq, k): a result counts if it
    is no farther than the k-th true neighbour (within float32 rounding), so a tie with it
    is not punished, as ANN-Benchmarks counts."""
    limit = truth[:, k - 1 : k] * (1.0 + TIE) + TIE * 1e-3
    return float((dists[:, :k] <= limit).sum() / (dists.shape[0] * k))


def exact(x: np.ndarray, q: np.ndarray, k: int, metric: str, exclude=None) -> np.ndarray:
    """Exact distances (float64, the index's: squared L2 or ``1 - <a, b>``) of the k nearest
    rows of ``x`` to each of ``q``, both in the stored basis (cosine rows are unit vectors);
    ``exclude``: a row id per query that is not a neighbour."""
    if metric == "l2":
        _, dist = datasets.ground_truth(x, q, k, "euclidean", exclude=exclude)
        return dist.astype(np.float64) ** 2
    if metric == "cosine":
        _, dist = datasets.ground_truth(x, q, k, "angular", exclude=exclude)
        return dist.astype(np.float64)
    return _exact_ip(x, q, k, exclude)


def _exact_ip(x, q, k, exclude):
    """``exact`` for inner products: float32 scores pick candidates surely holding the top k
    (their rounding bounded as in ``datasets.ground_truth``), measured again in float64."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    q = np.ascontiguousarray(q, dtype=np.float32)
    dim = x.shape[1]
    x_norm = float(np.sqrt((x.astype(np.float64) ** 2).sum(axis=1)).max()) if len(x) else 0.0
    q_norm = np.sqrt((q.astype(np.float64) ** 2).sum(axis=1))
    tol = (dim + 4) * 2.0**-24 * q_norm * x_norm
    out = np.empty((len(q), k))
    block = max(1, (128 << 20) // (4 * max(1, len(x))))
    for lo in range(0, len(q), block):
        hi = min(len(q), lo + block)
        score = -(q[lo:hi] @ x.T)
        if exclude is not None:
            score[np.arange(hi - lo), exclude[lo:hi]] = np.inf
        rows, cols = datasets._candidates(score, k, tol[lo:hi])
        del score
        dist = 1.0 - np.einsum("ij,ij->i", x[cols].astype(np.float64), q[lo:hi][rows])
        _, out[lo:hi] = datasets._top_k(rows, cols, dist, hi - lo, k)
    return out


def sweep(run, truth: np.ndarray, k: int, d: int, reranks) -> tuple:
    """The points of every curve: ``run(eps, max_degree, rerank)`` answers the sample
    (distances, distance computations) on one thread."""
    points = []
    run(EPS_GRID[0], d, reranks[0])  # untimed: the first call also fills scratch buffers
    for max_degree in degrees(d):
        for rerank in reranks:
            prev = -1.0
            for eps in EPS_GRID:
                seconds, (dists, n_dc) = _timed(run, eps, max_degree, rerank)
                recall = recall_at(dists, truth, k)
                points.append(
                    Point(
                        max_degree,
                        eps,
                        rerank,
                        recall,
                        float(np.mean(n_dc)),
                        seconds / len(truth),
                    )
                )
                if recall >= SATURATED or recall - prev < PLATEAU:
                    break
                prev = recall
    return tuple(points)


def _timed(call, *args) -> tuple:
    """(least seconds of a call, its result), repeated until ``MIN_SECONDS`` have passed."""
    best, spent, runs = math.inf, 0.0, 0
    while spent < MIN_SECONDS and runs < MAX_RUNS:
        start = time.perf_counter()
        out = call(*args)
        took = time.perf_counter() - start
        best, spent, runs = min(best, took), spent + took, runs + 1
    return best, out


def check_target(recall) -> float:
    """A recall target: a number in (0, 1]."""
    if isinstance(recall, (bool, np.bool_)) or not isinstance(recall, (int, float, np.number)):
        raise TypeError(f"recall must be a number in (0, 1], got {recall!r}")
    value = float(recall)
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise ValueError(f"recall must be in (0, 1], got {recall!r}")
    return value


def from_json(obj, d: int) -> Table:
    """A saved calibration, checked (``ValueError`` naming what is wrong)."""
    if not isinstance(obj, dict):
        raise ValueError(f"a calibration must be a mapping, got {type(obj).__name__}")
    method = check.check_choice("calibration method", obj["method"], METHODS)
    source = check.check_choice("calibration source", obj["source"], SOURCES)
    k = check.check_int("calibration k", obj["k"], minimum=1, maximum=check.MAX_K)
    n = check.check_int("calibration n", obj["n"], minimum=0, maximum=check.MAX_VERTICES)
    refresh = check.check_float("calibration refresh", obj["refresh"], minimum=0.0)
    sample = check.check_int("calibration sample", obj["sample"], minimum=1, maximum=MAX_SAMPLE)
    changed = check.check_int("calibration changed", obj["changed"], minimum=0)
    rows = obj["points"]
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_POINTS:
        raise ValueError(f"a calibration needs 1 to {MAX_POINTS} points in a list")
    points = tuple(_point(row, d) for row in rows)
    return Table(method, k, source, n, refresh, points, sample, changed_at=-changed)


def _point(row, d: int) -> Point:
    if not isinstance(row, list) or len(row) != len(Point._fields):
        raise ValueError(f"a calibration point must be a list of {len(Point._fields)} values")
    md, eps, rerank, recall, n_dc, seconds = row
    return Point(
        check.check_int("calibration max_degree", md, minimum=1, maximum=d),
        check.check_float("calibration eps", eps, minimum=0.0, maximum=check.MAX_EPS),
        None
        if rerank is None
        else check.check_int("calibration rerank", rerank, minimum=1, maximum=check.MAX_K),
        check.check_float("calibration recall", recall, minimum=0.0, maximum=1.0),
        _finite("calibration distance_computations", n_dc),
        _finite("calibration seconds", seconds),
    )


def _finite(name, value) -> float:
    value = check.check_float(name, value, minimum=0.0)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


class Calibrations:
    """The calibrations an index keeps, one per (method, k), and its change count: the
    vectors added and removed since it was made or loaded."""

    def __init__(self, tables=()):
        self.tables = {(t.method, t.k): t for t in tables}
        self.changed = 0
        self.lock = threading.Lock()  # one calibration at a time

    def count(self, vectors: int) -> None:
        self.changed += vectors

    def setting(self, index, method: str, k: int, target: float) -> Setting:
        """The setting for ``target``, calibrating first when this (method, k) has no
        calibration or a stale one (refreshed as it was made, on the caller's queries if it
        still has them)."""
        with self.lock:
            table = self.tables.get((method, k))
            if table is None or table.stale(self.changed):
                old = table or Table(method, k, "", 0, REFRESH, ())
                table = self.calibrate(index, method, k, old.queries, old.sample, 0, old.refresh)
            return choose(table, target, stacklevel=4)

    def calibrate(self, index, method, k, queries, sample, seed, refresh) -> Table:
        if queries is not None and len(queries) > sample:
            rng = np.random.default_rng(seed)
            queries = queries[np.sort(rng.choice(len(queries), size=sample, replace=False))]
        copy, changed = index._snapshot()
        n = len(copy)  # before any vector is held out of it
        source, points = measure(copy, method, k, queries, sample, seed)
        table = Table(method, k, source, n, refresh, points, sample, changed, queries)
        self.tables.pop((method, k), None)
        self.tables[(method, k)] = table
        while len(self.tables) > MAX_TABLES:  # the oldest goes
            del self.tables[next(iter(self.tables))]
        return table

    def to_json(self) -> list:
        return [t.to_json(self.changed) for t in self.tables.values()]


def measure(copy, method: str, k: int, queries, sample: int, seed: int) -> tuple:
    """(source, points) of a calibration on ``copy``, an index of its own (held-out vectors
    are removed from it): ``queries`` (the sample, in the input basis), or None for a sample
    of its vectors."""
    rng = np.random.default_rng(seed)
    store, n = copy._store, len(copy)
    if method == "explore":
        _need(n - 1, k, "an exploration")
        labels = np.sort(rng.choice(copy.labels, size=min(sample, n), replace=False))
        vids = store.vids(labels)
        truth = exact(store.floats(slice(0, n)), store.floats(vids), k, copy.metric, vids)

        def run(eps, max_degree, rerank):
            _, dists, stats = copy.explore(
                labels, k, eps=eps, threads=1, return_stats=True, max_degree=max_degree
            )
            return dists, stats["distance_computations"]

        return "stored", sweep(run, truth, k, copy.edges_per_vertex, (None,))
    if queries is None:
        held = min(sample, max(1, round(HELD_OUT_SHARE * n)))
        _need(n - held, k, f"a search with {held} vectors held out")
        labels = rng.choice(copy.labels, size=held, replace=False)
        q_stored = store.floats(store.vids(labels))
        queries = copy.get_vectors(labels).astype(np.float32)
        copy.remove(labels)
        source = "held-out"
    else:
        _need(n, k, "a search")
        q_stored = copy._basis.forward(queries)
        source = "queries"
    truth = exact(store.floats(slice(0, len(copy))), q_stored, k, copy.metric)
    # a walk on edge codes re-ranks every vertex it expands: nothing to sweep
    reranks = tuple(r * k for r in RERANKS_PER_K) if copy.quantize == "sq8" else (None,)

    def run(eps, max_degree, rerank):
        _, dists, stats = copy.search(
            queries,
            k,
            eps=eps,
            threads=1,
            return_stats=True,
            max_degree=max_degree,
            rerank=rerank,
        )
        return dists, stats["distance_computations"]

    return source, sweep(run, truth, k, copy.edges_per_vertex, reranks)


def _need(n: int, k: int, what: str) -> None:
    if n < k:
        raise ValueError(f"a calibration at k={k} needs more vectors: {what} would search {n}")
