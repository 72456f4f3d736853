"""When the search view is brought up to date (``deg._kernels.view``; docs/algorithm.md)."""

from __future__ import annotations

import numpy as np

from deg import _pipeline
from deg._concurrency import resolve_threads
from deg._kernels import view as kview

PARTS = 16  # row ranges of a refresh, handed out to threads as they free up
# rows a writer orders or encodes beside searches, then applies by one exclusive step
CATCH_UP = 256


class SearchView:
    """Whether rows may be out of search-view order (``stale``), and their refresh.

    After a change to at least 1/8 of the graph the rows are put back in order at once; after
    a smaller one, before the view is next read (a pruned search, a save, a pickle), so a
    stream of single adds and removes does not pay a pass over all rows each time."""

    def __init__(self, edges=None):
        self.stale = False
        self.edges = edges  # a quantize="rabitq" index's edge codes (deg._edgecodes), or None

    def editing(self) -> None:
        """Before a mutation's first step: rows change from then on (searches between the
        steps check each edge-coded row they expand, ``Searcher.edge_walk``)."""
        self.stale = True
        if self.edges is not None:
            self.edges.stale = True

    def changed(self, store, amount: int, threads=None) -> None:
        """After a mutation of ``amount`` vertices (or tries). The caller holds the write
        lock. Edge codes follow the rows: stale with them, encoded at once with them."""
        self.stale = True
        if self.edges is not None:
            self.edges.stale = True
        if 8 * amount >= store.n:
            self.refresh(store, threads)
            if self.edges is not None:
                self.edges.refresh(store, threads)

    def catch_up(self, store, steps) -> None:
        """At the end of an add, remove or optimize (the caller holds the writer mutex): with
        edge codes, the rows it edited put back in order (``order_in_steps``), then their
        codes encoded (``EdgeCodes.catch_up``), so searches find both fresh. Without, the
        view's order waits for its next pruned reader (few searches read it)."""
        if self.edges is not None:
            if self.stale:
                self.order_in_steps(store, steps)
            self.edges.catch_up(store, steps, signed=True)

    def order_in_steps(self, store, steps) -> int:
        """Put every row whose signature changed back in order: the rows found and their
        orders computed beside searches (it only reads, and the caller keeps other writers
        out), ``CATCH_UP`` rows applied per exclusive step of ``steps``; returns how many.
        (A search finding the view stale after a write would otherwise reorder every such
        row, and encode their codes again, in one exclusive step: ~13 ms after a 10-row add
        to Fashion-MNIST's 60k.)"""
        rows = pending_rows(store, store.sig)
        graph = store.graph()
        orders = np.empty((min(CATCH_UP, rows.size), store.d), np.int32)
        for a in range(0, rows.size, CATCH_UP):
            listed = rows[a : a + CATCH_UP]
            kview.order_listed(graph, listed, orders)
            with steps.step():
                kview.take_orders(
                    store.neighbors, store.weights, listed, orders, store.sig, store.gen
                )
        self.stale = False
        if rows.size and self.edges is not None:  # reordered rows are encoded again
            self.edges.stale = True
        return rows.size

    def ensure(self, lock, store, writer) -> None:
        """Refresh a stale view before it is read; takes the index's writer mutex ``writer``
        and the write lock (call with neither). While an add, remove or optimize runs, the
        view stays as it is (rows out of order cost a pruned search speed, never a wrong
        result): a refresh between their steps would reorder rows they are reading."""
        refresh_when_free(self, lock, store, writer)

    def refresh(self, store, threads=None) -> None:
        """Put every row whose signature changed back in order. The caller holds the write
        lock."""
        self.stale = False
        graph = store.graph()
        moved = over_rows(
            store.n, threads, lambda lo, hi: kview.refresh_view(graph, lo, hi, store.sig, store.gen)
        )
        if moved and self.edges is not None:  # reordered rows are encoded again
            self.edges.stale = True


def pending_rows(store, sig) -> np.ndarray:
    """The rows of ``store`` (int64 ids) whose signature is no longer the one ``sig`` (the
    view's ``store.sig`` or the edge codes' ``store.esig``) holds for them: a pass hashing
    every row."""
    rows = np.empty(store.n, dtype=np.int64)
    return rows[: kview.pending_rows(store.neighbors, store.n, sig, store.gen, rows)]


def over_rows(n: int, threads, work) -> int:
    """``work(lo, hi)`` over ``PARTS`` row ranges of ``0..n-1``, handed out to threads (one
    below ``PARTS * 64`` rows); returns the sum of what the calls returned."""
    threads = resolve_threads(threads) if n >= PARTS * 64 else 1
    bounds = [n * c // PARTS for c in range(PARTS + 1)]
    counts = [0] * PARTS

    def part(t, c):
        counts[c] = work(bounds[c], bounds[c + 1])

    _pipeline.overlap(None, part, PARTS, threads)
    return sum(counts)


def refresh_when_free(part, lock, store, writer) -> None:
    """``part.refresh(store)`` if ``part.stale``, under the index's writer mutex ``writer``
    and its write lock (call with neither), unless an add, remove or optimize holds the
    mutex: their steps read rows a refresh would change."""
    if part.stale and writer.acquire(blocking=False):
        try:
            with lock.writing():
                if part.stale:
                    part.refresh(store)
        finally:
            writer.release()
