"""Filtered search (docs/algorithm.md §3.6): which labels a query may return,
as bitsets over internal ids, and per query the choice between the graph search and an exact
scan of the allowed vectors.

A filter-aware graph search traverses every vertex but returns only allowed ones, so it must
pass about ``1 / selectivity`` vertices for each allowed one it finds, and many more when the
allowed vertices lie far from the query (a filter correlated with it). An exact scan reads
each allowed vector once. Each query therefore takes the scan when its allowed set is small
against the index (``prefers_scan``), and otherwise a graph search with a budget of
distance computations worth a few scans: a search that spends it without meeting its
stopping rule is answered by the scan instead.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import NamedTuple

import numpy as np

from deg import _validation as check
from deg._kernels import filters as kfilters

# A scan's distance computation costs this fraction of a graph search's: its rows are read in
# order of id, in groups, and mostly abandoned after their first chunk; a graph search's are
# scattered and come with heap work (Fashion-MNIST: ~24 ns against ~176 ns; bench/RESULTS.md,
# "Filtered search").
SCAN_COST = 0.14
# A filtered graph search that may return a share s of the index makes about
# GRAPH_DC / sqrt(s) distance computations (Fashion-MNIST at eps 0.1: 502 at s = 0.5, 1281
# at 0.1, 4563 at 0.01): it finds allowed vertices in passing while it closes in on the query.
GRAPH_DC = 400
# A filtered graph search may spend this many scans' worth of distance computations before
# the scan answers instead: the worst case (allowed vertices far from the query) costs
# 1 + FALLBACK scans.
FALLBACK = 2.0


class Filter:
    """A reusable set of labels a search may return, for one index.

    Parameters
    ----------
    index : deg.Index
        The index it is used with; using it with another raises ``ValueError``.
    allowed : array_like
        The allowed labels (integers; labels not in the index are ignored), or a boolean mask
        over labels (``allowed[i]`` allows label ``i``).

    The filter keeps its labels and a bitset over the index's internal ids, made at first use
    and again after the index changed (an add, a removal): it allows exactly its labels
    whenever they are in the index, including labels added after it was made, and never a
    label that is not among them, whatever removals renumbered.
    """

    def __init__(self, index, allowed):
        from deg.index import Index

        if not isinstance(index, Index):
            raise TypeError(
                f"deg.Filter needs the deg.Index it filters, got {type(index).__name__}"
            )
        self._store = weakref.ref(index.internals().store)
        self.labels = as_labels(allowed, "allowed")
        self._cached = None  # (store.changes, words, count)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"deg.Filter({len(self.labels)} labels)"

    def __reduce__(self):
        raise TypeError(
            "a deg.Filter belongs to one index in one process and is not pickled; pickle its "
            "labels (Filter.labels) and make a Filter for the index at the other end"
        )

    def words(self, store) -> tuple[np.ndarray, int]:
        """The bitset over ``store``'s ids (``words(n)`` words) and how many bits are set."""
        if self._store() is not store:
            raise ValueError("this deg.Filter was made for another index")
        if self._cached is None or self._cached[0] != store.changes:
            self._cached = (store.changes, *bitset(self.labels, store))
        return self._cached[1], self._cached[2]


def as_labels(allowed, name) -> np.ndarray:
    """Sorted distinct labels from a label array or a boolean mask over labels; negative ones
    (never labels) are dropped like other labels not in the index."""
    if isinstance(allowed, Filter):
        return allowed.labels
    if isinstance(allowed, set | frozenset):
        allowed = sorted(allowed)
    arr = np.asarray(allowed)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of labels or a boolean mask over labels, got shape "
            f"{arr.shape}"
        )
    if arr.dtype == np.bool_:
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.empty(0, np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integer labels or a boolean mask, got dtype {arr.dtype}")
    if arr.dtype == np.uint64:
        arr = arr[arr <= check.MAX_LABEL]
    arr = np.unique(arr.astype(np.int64))
    return arr[arr >= 0]


def words(n: int) -> int:
    """Words of a bitset over ``n`` ids."""
    return (n + 63) >> 6


def bitset(labels: np.ndarray, store) -> tuple[np.ndarray, int]:
    """The bits of those ``labels`` that are in ``store``, and how many."""
    vids = store.vid_of.find_present(labels, store.labels)
    out = np.zeros(words(store.n), np.uint64)
    kfilters.set_bits(out, vids)
    return out, len(vids)


class Plan(NamedTuple):
    """What each query of a batch may return: bitset rows ``words`` (nf, w) over the store's
    capacity (bits at n and above clear), each query's row ``of`` (nq,) int32, each row's
    allowed count ``counts`` (nf,), and ``free`` (nf,): the row filters nothing (a query left
    alone in a sequence), so its queries take the plain search."""

    words: np.ndarray
    of: np.ndarray
    counts: np.ndarray
    free: np.ndarray


# Per-query filters of a batch hold a bitset each: batches are planned this many bytes of
# them at a time (deg.index splits larger ones).
PLAN_BYTES = 1 << 26


def queries_per_plan(store) -> int:
    """Queries of a batch planned at once so that their bitsets stay within PLAN_BYTES."""
    return max(1, PLAN_BYTES // (8 * words(store.capacity)))


def batches(allowed, exclude, nq: int, store):
    """``(lo, hi, allowed, exclude)`` for each part of a batch of ``nq`` queries that is
    planned at once: the whole batch, unless a per-query sequence makes its bitsets pass
    PLAN_BYTES. A sequence of the wrong length raises ``ValueError`` first."""
    per = []
    for spec, name in ((allowed, "filter"), (exclude, "exclude")):
        seq = spec is not None and not isinstance(spec, Filter) and _is_sequence_of_sets(spec)
        if seq and len(spec) != nq:
            raise ValueError(f"{name} has {len(spec)} entries, one per query, for {nq} queries")
        per.append(seq)
    step = queries_per_plan(store) if any(per) else max(nq, 1)
    for lo in range(0, max(nq, 1), step):
        hi = min(nq, lo + step)
        yield (
            lo,
            hi,
            allowed[lo:hi] if per[0] else allowed,
            exclude[lo:hi] if per[1] else exclude,
        )


def plan(allowed, exclude, nq: int, store) -> Plan | None:
    """The rows for ``filter=allowed, exclude=exclude`` over a batch of ``nq`` queries, or None
    when neither is given. Each may be a label array, a boolean mask over labels, a ``Filter``,
    or a sequence of those with one per query (a list or tuple of arrays or filters, None for
    a query left alone, or a 2-D array, of ``nq`` rows).

    The rows span the store's capacity, not only its n ids: the kernels test the bit of every
    neighbour id they meet, and an add cut short between its wiring and its commit leaves
    edges to ids past n."""
    if allowed is None and exclude is None:
        return None
    allow = per_query(allowed, "filter", nq, store)
    deny = per_query(exclude, "exclude", nq, store)
    width = words(max(store.capacity, store.n))
    rows, free, index, of = [], [], {}, np.empty(nq, np.int32)
    for q in range(nq):
        key = (allow[q][0], deny[q][0])
        if key not in index:
            index[key] = len(rows)
            rows.append(combine(allow[q][1], deny[q][1], store.n, width))
            free.append(allow[q][1] is None and deny[q][1] is None)
        of[q] = index[key]
    w = np.stack(rows) if rows else np.zeros((0, width), np.uint64)
    counts = np.array([kfilters.count_below(r, store.n) for r in w], np.int64)
    return Plan(w, of, counts, np.array(free, bool))


def per_query(spec, name, nq, store) -> list:
    """``[(key, words or None), ...]`` for each query: ``key`` tells equal filters apart
    (a shared one has one key), ``None`` allows (or denies) nothing in particular."""
    if spec is None:
        return [(None, None)] * nq
    if isinstance(spec, Filter) or not _is_sequence_of_sets(spec):
        bits = _bits(spec, name, store)
        return [(0, bits)] * nq
    if len(spec) != nq:
        raise ValueError(f"{name} has {len(spec)} entries, one per query, for {nq} queries")
    out = []
    for q, one in enumerate(spec):
        if one is None:  # this query is not filtered (or excludes nothing)
            out.append((None, None))
            continue
        key = ("filter", id(one)) if isinstance(one, Filter) else ("row", q)
        out.append((key, _bits(one, f"{name}[{q}]", store)))
    return out


def _is_sequence_of_sets(spec) -> bool:
    """A 2-D array, or a list or tuple whose entries (the first that is not None) are sets:
    one per query. Anything else is one set for every query."""
    if isinstance(spec, np.ndarray):
        return spec.ndim == 2
    if isinstance(spec, list | tuple) and len(spec) > 0:
        first = next((one for one in spec if one is not None), None)
        return first is None or isinstance(first, Filter | list | tuple | set | np.ndarray)
    return False


def _bits(one, name, store) -> np.ndarray:
    if isinstance(one, Filter):
        return one.words(store)[0]
    return bitset(as_labels(one, name), store)[0]


def combine(allow, deny, n, width) -> np.ndarray:
    """``allow`` (None: every id) less ``deny`` (None: none), over ``n`` ids, in ``width``
    words (the bits from n on clear)."""
    out = np.zeros(width, np.uint64)
    if allow is None:
        out[: n >> 6] = np.uint64(0xFFFFFFFFFFFFFFFF)
        if n & 63:
            out[n >> 6] = (np.uint64(1) << np.uint64(n & 63)) - np.uint64(1)
    else:
        out[: len(allow)] = allow
    if deny is not None:
        out[: len(deny)] &= ~deny
    return out


def prefers_scan(count: int, n: int) -> bool:
    """Whether an exact scan of ``count`` allowed vectors (``SCAN_COST * count``) costs less
    than the graph search an index of ``n`` expects for them (``GRAPH_DC * sqrt(n / count)``);
    Fashion-MNIST 60k: up to ~7 900 allowed, 13%."""
    return SCAN_COST * SCAN_COST * count**3 <= GRAPH_DC * GRAPH_DC * n


def budget(count: int) -> int:
    """Distance computations a filtered graph search may spend before the scan answers."""
    return max(1, int(FALLBACK * SCAN_COST * count))


@contextlib.contextmanager
def forced(path: str | None):
    """Every filtered query of this process takes ``path`` while the block runs: "graph" (no
    fallback to the scan) or "scan"; None changes nothing. For measuring each path and
    testing it (``python -m bench --filter --crossover``, the tests); not thread-safe."""
    if path is None:
        yield
        return
    global prefers_scan, FALLBACK
    saved = prefers_scan, FALLBACK
    prefers_scan = (lambda count, n: True) if path == "scan" else (lambda count, n: False)
    FALLBACK = 1e12
    try:
        yield
    finally:
        prefers_scan, FALLBACK = saved


def ids_of(row: np.ndarray, n: int) -> np.ndarray:
    """The allowed ids of a bitset row, ascending (int32)."""
    out = np.empty(kfilters.count_below(row, n), np.int32)
    kfilters.ids_below(row, n, out)
    return out
