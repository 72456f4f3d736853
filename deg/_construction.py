"""Construction (docs/algorithm.md, "Construction"): the complete-graph bootstrap, batches of
candidate searches pipelined beside the wiring of the previous batch, the streaming scheme,
the rotated basis adopted once, and the entry tree drawn as the graph grows."""

from __future__ import annotations

import functools
import os

import numpy as np

from deg import _basis as basis
from deg import _dtypes as dtypes
from deg import _entries as entries
from deg import _quantizer as quantizer
from deg._kernels import build as kbuild
from deg._kernels import optimize as kopt
from deg._kernels import rotation as krot
from deg._kernels import view as kview
from deg._kernels.distances import edge_distances
from deg._kernels.state import SearchSpec

MAX_BATCH = 256  # vertices whose candidate searches run together
OVERLAP_MIN = 32  # batches at least this large search beside the previous batch's wiring
# candidate searches per claim (~2 ms on Fashion-MNIST): small, so that the threads finish a
# batch together
CHUNK_SEARCHES = 4
# distances each construction search keeps for the wiring to reuse (choose_cut): a search
# for 2d candidates computes a few hundred to a thousand or so
EXTEND_LOG = 4096
BUILD_TREE = os.environ.get("DEG_BUILD_TREE", "1") == "1"  # construction enters by the tree


def batch_size(n: int) -> int:
    """How many vertices to insert together when the graph holds ``n``.

    Batch-mates cannot see each other during their candidate search, so the batch stays a small
    fraction (1/32) of the graph; it depends on n only, never on the thread count, so the same
    seed and data give the same graph on any machine.
    """
    return max(1, min(MAX_BATCH, n // 32))


def batches(start: int, end: int) -> list:
    """The insertion batches of ``start..end-1`` (sizes depend on the graph size only)."""
    out = []
    while start < end:
        stop = min(end, start + batch_size(start))
        out.append((start, stop))
        start = stop
    return out


def wired_rows(neighbors, lo, hi):
    """The rows that wiring vertices ``lo..hi-1`` may have changed: theirs and their
    neighbours'. A wiring step (v, candidate c, cut neighbour n) edits only the rows of v, c and
    n, and leaves c and n adjacent to v; a later step removes such an edge only to replace it by
    one to its own new vertex. So every edited row ends adjacent to a vertex of the batch."""
    return np.unique(np.concatenate([np.arange(lo, hi), neighbors[lo:hi].ravel()]))


def insertion_search(k: int, eps: float, d: int) -> SearchSpec:
    """The settings of a new vertex's candidate search: exact distances (they become edge
    weights), entries among the results, the whole graph, no budget."""
    return SearchSpec(
        k=k,
        eps=eps,
        lead=np.float32(1.0),
        exact=True,
        include_entry=True,
        own_entry=False,
        max_dc=0,
        max_degree=d,
    )


class Builder:
    """Inserts vectors into an index's parts (its parameters, storage, entry tree, basis and
    view, searching through ``searcher``, optimising through ``maintainer``). The caller keeps
    other writers out (the search view's refresh among them), so the rows read here change
    only here; every change to what searches read is made in an exclusive step of ``steps``
    (``deg._concurrency.Steps``), so searches run between them."""

    def __init__(self, params, store, tree, basis_, view, searcher, maintainer, pool, quant, steps):
        self.params, self.store, self.tree, self.basis = params, store, tree, basis_
        self.view, self.searcher, self.maintainer, self.pool = view, searcher, maintainer, pool
        self.quant, self.steps = quant, steps

    def redraw_tree(self, drawn_at=None) -> None:
        self.tree.redraw_for(self.store, self.basis, self.params.seed, drawn_at)

    def adopt_basis(self, x) -> None:
        """Adopt the rotated basis (``deg._basis``) when this add first brings the index to
        ``basis.MIN_VECTORS``: fitted on the stored vectors and ``x`` together; the stored
        ones are rotated and their edge weights recomputed (the same graph, the distances
        rounded in the new basis), then the entry tree and the search view are renewed."""
        store, p, n = self.store, self.params, self.store.n
        if (
            self.basis.rotated
            or n + x.shape[0] < basis.MIN_VECTORS
            or not basis.wanted(
                p.rotate, p.metric, p.dim, dtypes.is_integer(p.dtype), p.quantize == "rabitq"
            )
        ):
            return
        rows = basis.sample_rows(n + x.shape[0])
        yt, tt = basis.fit(np.concatenate([store.floats(rows[rows < n]), x[rows[rows >= n] - n]]))
        if p.dtype == "float16":  # refused before anything changes: rows that overflow it
            self.rotated_rows(x, yt, tt, "data row")  # once rotated (float32 rows cannot)
        if not n:
            self.basis.adopt(yt, tt)
            return
        rotated = self.rotated_rows(store.floats(slice(0, n)), yt, tt, "stored vector")
        rotated = dtypes.to_stored(rotated, p.dtype)  # float16: rounded, as stored
        # empty slots (self-loops) keep weight 0, which is what edge_distances gives them
        weights = edge_distances(rotated, store.neighbors[:n], p.metric_code, n)
        # the switch: vectors, weights and basis together (nothing that can fail in between)
        store.vectors[:n], store.weights[:n] = rotated, weights
        self.basis.adopt(yt, tt)
        store.sig[:n] = kview.EMPTY_SIG  # every view row is computed again
        self.redraw_tree(min(self.tree.drawn_at, n))  # removals may have shrunk n
        self.view.changed(store, n)

    def rotated_rows(self, x, yt, tt, what) -> np.ndarray:
        """Float32 rows ``x`` rotated into the basis ``(yt, tt)``; ``ValueError`` for a row the
        index's type cannot hold there (a rotated coordinate can grow to the row's norm:
        float32 rows within as_vectors' bound never overflow, float16 ones may)."""
        rotated = np.empty_like(x)
        krot.rotate_rows(x, yt, tt, rotated)
        ok = np.isfinite(rotated).all(axis=1)
        if self.store.dtype == "float16":
            ok &= (np.abs(rotated) <= dtypes.HALF_MAX).all(axis=1)
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            raise ValueError(
                f"{what} {row} overflows {self.store.dtype} when rotated into the index's basis "
                f"(norm {np.linalg.norm(x[row].astype(np.float64)):.3g}); use rotate=False "
                f"for vectors this large"
            )
        return rotated

    def insert(self, x, new_labels, progress, threads) -> None:
        """Insert the rows ``x`` (validated, in the input basis) under ``new_labels``.

        Searches see each vertex once it is wired in: the rows are placed beside them (no
        search reaches a row past the counted ones: a 1000-row add's placing took 2.3 ms,
        which every search would have waited for), the wiring and the optimisation go in
        short steps, and the entry tree and the view are renewed in a last one. What searches
        read (grown arrays, a new basis, a quantizer fitted on every row) changes in a step."""
        store = self.store
        start, end = store.n, store.n + x.shape[0]
        room = store.grown(end)  # copied while searches run, taken in the step
        with self.steps.step():
            if room is not None:
                store.take(*room)
                self.pool.clear()
            self.adopt_basis(x)
            fitting = quantizer.fits_at(self.quant, end)
            if fitting:  # the map searches read, fitted on every row: all of them encoded
                self.place(x, new_labels, start, end)
            self.view.editing()  # rows change from the first wiring step on
        if not fitting:
            self.place(x, new_labels, start, end)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=end - start, desc="deg add", unit="vec")
        try:
            v = start
            with self.steps.step():  # bootstrap: the first d+1 form a complete graph
                while v < end and v <= store.d:
                    kbuild.bootstrap(store.graph(), v)
                    store.commit(v, v + 1)
                    v += 1
            if bar is not None:
                bar.update(v - start)
            if v < end and self.params.scheme == "stream":
                self.extend_stream(v, end, threads, bar)
            elif v < end:
                self.extend(v, end, threads, bar)
        finally:
            with self.steps.step():
                # a large add, or a graph grown by half: the entry tree for the new size
                if 8 * (end - start) >= store.n or entries.stale(store.n, self.tree.drawn_at):
                    self.redraw_tree()
                self.view.changed(store, end - start, threads)
            self.view.catch_up(store, self.steps)
            if bar is not None:
                bar.close()

    def place(self, x, new_labels, start, end) -> None:
        """Store rows ``start..end-1`` (rotated into the stored basis), unconnected."""
        store = self.store
        if store.reserve(end):  # insert makes room before its step: then nothing to do here
            self.pool.clear()
        if self.basis.rotated:  # rows beyond n: nothing is inserted yet if this raises
            x = self.rotated_rows(x, self.basis.yt, self.basis.tt, "data row")
        store.vectors[start:end] = dtypes.to_stored(x, store.dtype)
        quantizer.encode_rows(self.quant, store, start, end)
        store.labels[start:end] = new_labels
        store.gen[start:end] = store.next_generation()
        kbuild.reset_rows(store.neighbors, store.weights, start, end)
        store.sig[start:end] = kview.EMPTY_SIG

    def extend(self, start, end, threads, bar) -> None:
        """Insert ``start..end-1`` batch by batch: candidate search, then wiring (LowLID or
        HighLID).

        Pipelined: while batch b is wired (one thread, it changes the graph), the candidates of
        batch b+1 are searched on a copy of the graph as it was before batch b (the other
        threads, joined by the wiring one when it is done). Batch b+1 therefore does not see
        batch b: it may only connect to older vertices, which is what batch-mates already
        accept among themselves. The copy (``shadow``) is brought up to date after each
        wiring by copying the rows it changed. Batches below ``OVERLAP_MIN`` vertices (small
        graphs, small adds) are searched after the previous wiring, on the current graph; when
        no batch overlaps (an add of fewer than 32 vectors, or into a small graph) there is no
        copy: the copy of a 60k x 30 graph for a 10-vector add cost 0.6 ms of its 4.
        """
        store = self.store
        todo = batches(start, end)
        if all(hi - lo < OVERLAP_MIN for lo, hi in todo[1:]):
            for lo, hi in todo:  # each batch searched on the graph as the last one left it
                self.wire(lo, hi, self.candidates(lo, hi, store.neighbors, lo, threads))
                if self.params.improve_tries:
                    self.maintainer.improve((hi - lo) * self.params.improve_tries)
                if bar is not None:
                    bar.update(hi - lo)
            return
        shadow = np.empty_like(store.neighbors[:end])
        shadow[:start] = store.neighbors[:start]
        found = self.candidates(*todo[0], shadow, start, threads)
        for b, (lo, hi) in enumerate(todo):
            wire = functools.partial(self.wire, lo, hi, found)
            following = todo[b + 1] if b + 1 < len(todo) else None
            if following and following[1] - following[0] >= OVERLAP_MIN:
                found = self.candidates(*following, shadow, lo, threads, wire)
            else:
                wire()
            if self.params.improve_tries:  # the optimisation may touch any row
                self.maintainer.improve((hi - lo) * self.params.improve_tries)
                shadow[:hi] = store.neighbors[:hi]
            else:
                rows = wired_rows(store.neighbors, lo, hi)
                shadow[rows] = store.neighbors[rows]
            if following and following[1] - following[0] < OVERLAP_MIN:
                found = self.candidates(*following, shadow, hi, threads)
            if bar is not None:
                bar.update(hi - lo)

    def candidates(self, lo, hi, neighbors, visible, threads, first=None):
        """Candidate searches for vertices ``lo..hi-1`` over the neighbour rows ``neighbors``,
        in which vertices ``0..visible-1`` are wired; ``first`` (the previous batch's wiring)
        runs on the calling thread before it joins the searches. Returns ``(cand_i, cand_d,
        log)`` as ``Searcher.run`` does."""
        if BUILD_TREE and visible >= 2 * self.tree.drawn_at:  # a fresh tree as n grows
            with self.steps.step():
                self.redraw_tree(visible)
        p = self.params
        spec = insertion_search(max(p.extend_k, p.d), p.extend_eps, p.d)
        cand_i, cand_d, _, log = self.searcher.run(
            self.store.vectors[lo:hi],
            np.zeros((1, 1), dtype=np.int32),
            spec,
            threads,
            use_tree=BUILD_TREE,
            log_capacity=EXTEND_LOG,
            neighbors=neighbors,
            first=first,
            chunk=CHUNK_SEARCHES,
        )
        return cand_i, cand_d, log

    def wire(self, lo, hi, found) -> None:
        """Connect vertices ``lo..hi-1`` to the candidates ``found`` for them, a few per step,
        each step counting the vertices it wired (a wired vertex links only to older ones,
        so the counted graph is whole between steps)."""
        cand_i, cand_d, (log_i, log_d, log_n) = found
        if not cand_i.shape[0] == log_i.shape[0] == log_n.shape[0] == hi - lo:
            raise ValueError("candidate rows do not match the batch (an internal error)")
        known = np.empty(hi, dtype=np.float32)  # both indexed by vertex id < hi
        stamp = np.full(hi, -1, dtype=np.int64)
        store, scheme = self.store, self.params.scheme_code

        def step(a, b):
            failed = kbuild.connect_batch(
                store.graph(),
                lo + a,
                lo + b,
                cand_i[a:b],
                cand_d[a:b],
                scheme,
                (log_i[a:b], log_d[a:b], log_n[a:b]),
                known,
                stamp,
            )
            if failed >= 0:  # cannot happen on a healthy graph; never count a half-wired vertex
                raise RuntimeError(f"internal error: vertex {failed} could not be connected")
            store.commit(lo + a, lo + b)

        self.steps.run(step, hi - lo, "wire")

    def extend_stream(self, start, end, threads, bar) -> None:
        """Streaming insertion, batch by batch: each vertex searches 2d candidates from a
        random vertex, links to d-1 of them and the cut-off vertices are re-paired by the
        deletion repair."""
        store, p = self.store, self.params
        for lo, hi in batches(start, end):
            spec = insertion_search(max(p.extend_k, 2 * p.d), p.extend_eps, p.d)
            rand = self.maintainer.rand_state
            picks = [kopt.rand_below(rand, lo) for _ in range(lo, hi)]
            starts = np.array(picks, dtype=np.int32).reshape(-1, 1)
            cand_i, cand_d, _, _ = self.searcher.run(store.vectors[lo:hi], starts, spec, threads)
            # one step per batch: the repair of the cut-off vertices spans the whole batch
            with self.steps.step(), self.maintainer.scratch() as (opt, scr, log, owner, touched):
                failed = kbuild.connect_stream_batch(
                    store.graph(), lo, hi, cand_i, cand_d, opt, scr, log, owner, touched
                )
                if failed >= 0:
                    raise RuntimeError(f"internal error: vertex {failed} could not be connected")
                store.commit(lo, hi)
            if p.improve_tries:
                self.maintainer.improve((hi - lo) * p.improve_tries)
            if bar is not None:
                bar.update(hi - lo)
