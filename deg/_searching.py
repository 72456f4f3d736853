"""Running the search kernel over a batch of queries (docs/algorithm.md, "Search"): scratch,
threads, the entry tree, the rotated basis, and the results as labels."""

from __future__ import annotations

import numpy as np

from deg import _filtering as filtering
from deg import _pipeline
from deg import _quantizer as quantizer
from deg import _validation as check
from deg._concurrency import resolve_threads
from deg._kernels import edges as kedges
from deg._kernels import entry_tree as ktree
from deg._kernels import labels as klabels
from deg._kernels import pool as kpool
from deg._kernels import rotation as krot
from deg._kernels import scan as kscan
from deg._kernels import search as ksearch
from deg._kernels.entry_tree import ENTRIES
from deg._kernels.search import GROUP_MAX
from deg._kernels.state import SearchSpec

SERIAL_BELOW = 4  # queries per thread below which one thread is faster than a launch
# The threads of a batch claim its queries in chunks as they go (search.search_shared): each
# thread makes at least CLAIMS claims, of at most MAX_CHUNK queries, so that they finish within
# a few queries of each other (bench/RESULTS.md: chunk sizes on SIFT-small, 2 threads).
CLAIMS = 4
MAX_CHUNK = 16
# Queries and explorations of a rotated index reject a candidate once its first distance chunk
# (the 64 leading directions) alone passes this fraction of the search bound: on Fashion-MNIST
# those directions hold 88% of the variance, so such a row is almost surely past the bound, and
# its remaining 90% of bytes are not read (bench/RESULTS.md: 0.6-0.8 measured; 0.7 keeps the
# high-recall end).
LEAD = 0.7
# the kernels' Filters tuple for an unfiltered batch (read only)
NO_FILTER = (np.zeros((1, 0), np.uint64), np.zeros(0, np.int32), np.zeros(1, np.int64))


class Searcher:
    """Searches over an index's parts: its storage, entry tree, basis and scratch pool. The
    caller holds the index's lock (reading for queries, writing for construction)."""

    def __init__(self, store, tree, basis, pool, quant=None):
        self.store, self.tree, self.basis, self.pool = store, tree, basis, pool
        self.quant = quant

    def query(
        self,
        queries,
        entries,
        spec: SearchSpec,
        threads,
        *,
        use_tree=False,
        rotate=False,
        plan: filtering.Plan | None = None,
        rerank: int | None = None,
    ):
        """Labels, distances and distance counts of a user search or exploration: ``spec``
        as given (validated here), at most n results searched, the rest of each row padded.
        ``plan`` (``deg._filtering``): what each query may return. An unfiltered search
        (``rotate``: queries in the input basis) of a quantized index walks on codes and
        re-ranks ``rerank`` candidates (``coded``)."""
        store = self.store
        k = check.check_int("k", spec.k, minimum=1, maximum=check.MAX_K)
        max_degree = store.d if spec.max_degree is None else spec.max_degree
        max_degree = check.check_int("max_degree", max_degree, minimum=1, maximum=store.d)
        eps = check.check_float("eps", spec.eps, minimum=0.0)
        max_dc = check.check_int("max_distance_computations", spec.max_dc, minimum=0)
        lead = np.float32(LEAD if self.basis.rotated else 1.0)
        # at most n results are searched: the same ones for any k >= n
        spec = SearchSpec(
            min(k, store.n),
            eps,
            lead,
            spec.exact,
            spec.include_entry,
            spec.own_entry,
            max_dc,
            max_degree,
        )  # not _replace: 1 us less
        threads = resolve_threads(threads)
        nq = queries.shape[0]
        if store.n == 0:
            return (
                np.full((nq, k), -1, np.int64),
                np.full((nq, k), np.inf, np.float32),
                np.zeros(nq, np.int64),
            )
        found = None
        quant = self.quant
        if plan is None and rotate and quant is not None and quant.fitted:
            if quant.edges is None:
                found = self.coded(queries, spec, threads, rerank)
            else:  # stale codes (a write under way): rows edited since are expanded exactly
                found = self.edge_walk(queries, spec, threads, check=quant.edges.stale)
        if found is not None:
            vids, dists, n_dc = found
        elif plan is None:
            vids, dists, n_dc, _ = self.run(
                queries, entries, spec, threads, use_tree=use_tree, rotate=rotate
            )
        else:
            vids, dists, n_dc = self.filtered(
                queries, entries, spec, threads, plan, use_tree, rotate
            )
        labels = klabels.labels_of(vids, store.labels)
        if spec.k < k:
            labels = np.pad(labels, ((0, 0), (0, k - spec.k)), constant_values=-1)
            dists = np.pad(dists, ((0, 0), (0, k - spec.k)), constant_values=np.inf)
        return labels, dists, n_dc

    def filtered(self, queries, entries, spec, threads, plan, use_tree, rotate):
        """A filtered batch: each query an exact scan of its allowed ids or a graph search
        that may return only them, by ``filtering.prefers_scan``; a graph search that spent
        its budget (``filtering.budget``) is answered by the scan (algorithm.md §3.6).
        With the caller's own budget (``max_dc``) a query scans only when its allowed set
        fits in it, and a graph search's results stand when the budget ends it. Returns
        vids, distances and distance counts (a fallback's both)."""
        n, nq = self.store.n, queries.shape[0]
        counts, of = plan.counts, plan.of
        scan_row = np.array([filtering.prefers_scan(int(c), n) for c in counts], bool)
        scan_row &= ~plan.free
        if spec.max_dc > 0:
            scan_row &= counts <= spec.max_dc
        row_budget = np.array(
            [
                filtering.budget(int(c))
                if spec.max_dc == 0 and not (scan_row[f] or plan.free[f])
                else 0
                for f, c in enumerate(counts)
            ],
            np.int64,
        )
        vids = np.full((nq, spec.k), -1, np.int32)
        dists = np.full((nq, spec.k), np.inf, np.float32)
        n_dc = np.zeros(nq, np.int64)
        some = counts[of] > 0  # an empty allowed set: padding, no search
        scan = some & scan_row[of]
        for free in (True, False):  # queries left alone take the plain search
            graph = np.flatnonzero(some & ~scan_row[of] & (plan.free[of] == free))
            if not graph.size:
                continue
            sub = entries if entries.shape[0] == 1 else entries[graph]
            filters = NO_FILTER if free else (plan.words, of[graph], row_budget)
            g_vids, g_dists, g_dc, _ = self.run(
                queries[graph],
                sub,
                spec,
                threads,
                use_tree=use_tree,
                rotate=rotate,
                filters=filters,
            )
            limit = row_budget[of[graph]]
            spent = (limit > 0) & (g_dc >= limit)  # the fallback budget: not finished
            done = graph[~spent]
            vids[done], dists[done], n_dc[graph] = g_vids[~spent], g_dists[~spent], g_dc
            scan[graph[spent]] = True
        chosen = np.flatnonzero(scan)
        if chosen.size:
            skip = (
                entries[chosen, 0].astype(np.int64)
                if spec.own_entry and not spec.include_entry
                else np.full(chosen.size, -1, np.int64)
            )
            s_vids, s_dists, s_dc = self.scan(
                queries[chosen], plan, of[chosen], skip, spec.k, threads, rotate
            )
            vids[chosen], dists[chosen] = s_vids, s_dists
            n_dc[chosen] += s_dc
        return vids, dists, n_dc

    def coded(self, queries, spec, threads, rerank):
        """A quantized search (``deg._quantizer``): each query, rotated into the stored basis
        and mapped like the codes, walks the graph on codes from its leaf of the entry tree
        (descended with the real query and vectors); the least code distances it computed
        are ranked again by exact distances. Returns vids, distances and the distance
        computations (hyperplanes, codes and exact ones: within ``max_dc``, which the walk
        and the re-ranks share; a budget of 1 may take 2), or None when a query maps too far
        from the codes for float32 sums (searched exactly instead)."""
        store, quant = self.store, self.quant
        rotated = self.stored_basis(queries)
        coded = quant.to_code_space(rotated)
        if not np.all(np.abs(coded) <= quantizer.CODE_SPACE_MAX):  # NaN fails too
            return None
        size = quantizer.pool_size(rerank, spec.k, store.n)
        entries, descent = self.leaf_entries(rotated, spec.max_dc)
        left = max(1, spec.max_dc - descent)  # the budget the walk and the re-ranks share
        budget = max(1, left - min(size, left // 2)) if spec.max_dc > 0 else 0
        walk = spec._replace(max_dc=budget)
        pool = np.empty((len(queries), size), np.int32)
        n_dc = np.empty(len(queries), np.int64)
        for lo in range(0, len(queries), quantizer.PART):  # the logs of PART queries at a time
            hi = min(lo + quantizer.PART, len(queries))
            part = entries if entries.shape[0] == 1 else entries[lo:hi]
            walk_i, walk_d, n_dc[lo:hi], log = self.run(
                coded[lo:hi], part, walk, threads, vectors=store.codes, log_capacity=quantizer.LOG
            )
            kpool.best_logged(*log, walk_i, walk_d, pool[lo:hi])
        found = pool >= 0  # rows padded past the pool's size, nearest first
        if spec.max_dc > 0:  # what the walk left of the budget, at least one
            found &= np.arange(size) < np.maximum(1, left - n_dc)[:, None]
        offsets = np.zeros(len(pool) + 1, np.int64)
        offsets[1:] = np.cumsum(found.sum(axis=1))
        sets = (pool[found], offsets, np.arange(len(pool), dtype=np.int64))
        skip = np.full(len(pool), -1, np.int64)
        vids, dists, exact = self.scan_sets(rotated, sets, skip, spec.k, threads, rotate=False)
        return vids, dists, n_dc + descent + exact

    def edge_walk(self, queries, spec, threads, check=False):
        """A walk on edge codes (``deg._kernels.edges``): each query, rotated into the stored
        basis, enters at the members of its leaf of the entry tree and expands vertices in
        order of their estimates, ranking each by its exact distance. With ``check`` (codes
        not all up to date) each expanded row's signature is compared with its codes' and an
        edited row is expanded by exact distances. Returns vids, distances and the distance
        computations (hyperplanes, exact distances and estimates, within ``max_dc``)."""
        store, edges = self.store, self.quant.edges
        if min(store.esig.shape[0], store.gen.shape[0]) < store.n:
            raise ValueError("edge signatures do not cover the index (an internal error)")
        rotated = self.stored_basis(queries)
        entries, descent = self.leaf_entries(rotated, spec.max_dc)
        budget = max(1, spec.max_dc - descent) if spec.max_dc > 0 else 0
        kspec = (spec.k, float(spec.eps), budget, spec.max_degree, bool(check))
        nq = rotated.shape[0]
        blocks, chunk, out, _, _, claim, done = self.batch(rotated, spec.k, threads, False)
        graph = store.graph()
        with self.pool.take(store.capacity, blocks) as s:
            res_d, res_i, _ = s.rows(spec.k + 1, store.d)
            scratch = (s.visited, s.tags, s.cand, res_d, res_i)

            def work(t):
                kedges.walk_shared(
                    t,
                    claim,
                    done,
                    chunk,
                    graph,
                    (store.edge_codes, store.edge_factors, store.gen, store.esig),
                    edges.mean,
                    edges.signs,
                    rotated,
                    entries,
                    kspec,
                    scratch,
                    out,
                )

            _pipeline.side_by_side(None, work, blocks, done, nq)
        vids, dists, n_dc = out
        return vids, dists, n_dc + descent

    def stored_basis(self, queries):
        """A search's queries (float32 rows) in the stored basis, rotated by the kernel that
        rotated the stored vectors (so a stored vector as a query is at distance 0)."""
        if not self.basis.rotated:
            return queries
        out = np.empty_like(queries)
        krot.rotate_rows(queries, self.basis.yt, self.basis.tt, out)
        return out

    def leaf_entries(self, queries, max_dc):
        """Each query's entries into the graph, the first members of its leaf of the entry
        tree (as ``search.search_block`` takes them), and the hyperplane tests it cost; one
        row of vertex 0 and no tests without a tree or within a budget too small for it."""
        tree = self.tree
        levels = int(tree.pairs.shape[0]).bit_length()
        if not tree.members.size or (max_dc and max_dc <= 2 * (levels + ENTRIES)):
            return np.zeros((1, 1), np.int32), 0
        out = np.empty((queries.shape[0], ENTRIES), np.int32)
        ktree.leaf_entries(
            queries, self.store.vectors, tree.members, tree.pairs, tree.planes, tree.offsets, out
        )
        return out, levels

    def scan(self, queries, plan, of, skip, k, threads, rotate):
        """Exact scans: query q's k nearest among the allowed ids of row ``of[q]`` of the
        plan, never ``skip[q]``; returns vids, distances and the rows read."""
        rows = np.unique(of)
        ids = [filtering.ids_of(plan.words[f], self.store.n) for f in rows]
        offsets = np.zeros(len(rows) + 1, np.int64)
        offsets[1:] = np.cumsum([len(i) for i in ids])
        set_of = np.searchsorted(rows, of).astype(np.int64)
        sets = (np.concatenate(ids).astype(np.int32), offsets, set_of)
        return self.scan_sets(queries, sets, skip, k, threads, rotate)

    def scan_sets(self, queries, sets, skip, k, threads, rotate):
        """Exact scans of id sets ``(ids, offsets, set of each query)`` (``scan.scan_shared``);
        returns vids, distances and the rows read."""
        nq = queries.shape[0]
        blocks, chunk, out, basis, rotated, claim, done = self.batch(queries, k, threads, rotate)
        scratch = (
            np.empty((blocks, k + 1), np.float32),
            np.empty((blocks, k + 1), np.int32),
            np.empty((blocks, GROUP_MAX), np.int32),
            np.empty((blocks, GROUP_MAX), np.float32),
        )
        graph = self.store.graph()

        def work(t):
            kscan.scan_shared(
                t, claim, done, chunk, graph, queries, basis, rotated, sets, skip, scratch, out
            )

        _pipeline.side_by_side(None, work, blocks, done, nq)
        return out

    def batch(self, queries, k, threads, rotate, chunk=None):
        """What the batch kernels (``search_shared``, ``scan_shared``) share: the thread blocks
        (one per ``SERIAL_BELOW`` queries at most), the queries claimed at a time (``chunk``,
        default: see ``CLAIMS``), the output arrays (``Results``, rows of k), the basis the
        queries are rotated into (``rotate`` and a rotated index) with room for them, and the
        claim and done counters, a cache line apart."""
        nq = queries.shape[0]
        blocks = min(threads, max(1, nq // SERIAL_BELOW))
        if chunk is None:
            chunk = nq if blocks == 1 else min(MAX_CHUNK, max(1, nq // (CLAIMS * blocks)))
        out = (np.empty((nq, k), np.int32), np.empty((nq, k), np.float32), np.empty(nq, np.int64))
        rotate = rotate and self.basis.rotated
        basis = self.basis.pair(rotate)
        rotated = np.empty_like(queries) if rotate else queries[:0]
        sync = np.zeros(16, dtype=np.int64)
        return blocks, chunk, out, basis, rotated, sync[:1], sync[8:9]

    def run(
        self,
        queries,
        entries,
        spec,
        threads,
        *,
        use_tree=False,
        rotate=False,
        log_capacity=0,
        neighbors=None,
        first=None,
        chunk=None,
        filters=NO_FILTER,
        vectors=None,
    ):
        """Run the search kernel over ``queries``; returns vids, distances, distance counts
        and the distance log ``(ids, dists, counts)`` (up to ``log_capacity`` per query).

        With ``use_tree`` each query enters the graph at the members of its leaf of the entry
        tree instead of ``entries`` (query search, construction); exploration and the
        streaming scheme pass their own entries (one row for all queries, or one per query).
        ``neighbors`` replaces the neighbour rows (construction's copy). With several
        threads, each runs the kernel with its own scratch rows, and they claim the queries
        ``chunk`` at a time (default: see ``CLAIMS``) until none are left; ``first`` runs on
        the calling thread before it joins in (see ``deg._pipeline.side_by_side``).
        ``rotate``: the queries are in the input basis (``search``); each chunk is rotated into
        the stored basis by the kernel that rotated the stored vectors, so a stored vector
        given as a query is found at distance 0 (by the same machine code: a file moved to
        another CPU may round a few vectors differently). ``filters``: the kernels'
        ``Filters`` tuple (default: none); ``vectors`` replaces the stored vectors (a
        quantized search's codes). ``spec.lead`` < 1 rejects a
        candidate on its first distance chunk (``LEAD``; 1 = exact, as construction and
        optimisation search); ``spec.exact`` False lets the kernel sum rows four at a time,
        equal to ``distance`` up to float32 rounding (construction's distances become edge
        weights and stay exact).
        """
        store, tree = self.store, self.tree
        k, nq = spec.k, queries.shape[0]
        words, of, _ = filters
        # the kernel tests the bit of any neighbour id (< capacity) and reads row of[q]
        if words.shape[1] and (words.shape[1] * 64 < store.capacity or of.shape[0] != nq):
            raise ValueError("filter rows do not cover the index (an internal error)")
        if of.shape[0] and not 0 <= of.min() <= of.max() < words.shape[0]:
            raise ValueError("filter row out of range (an internal error)")
        blocks, chunk, out, basis, rotated, claim, done = self.batch(
            queries, k, threads, rotate, chunk
        )
        log = (
            np.empty((nq, log_capacity), np.int32),
            np.empty((nq, log_capacity), np.float32),
            np.zeros(nq, np.int64),
        )
        members = tree.members if use_tree else tree.members[:0]
        kernel_tree = (members, tree.pairs, tree.planes, tree.offsets)
        graph = store.graph(neighbors, vectors)
        # every entry enters the result heap (include_entry): a row of entries, or a leaf's
        heap = k + max(entries.shape[1], ENTRIES if use_tree else 0) + 1
        with self.pool.take(store.capacity, blocks) as s:
            scratch = (s.visited, s.tags, s.cand, *s.rows(heap, store.d))

            def work(t):
                ksearch.search_shared(
                    t,
                    claim,
                    done,
                    chunk,
                    graph,
                    queries,
                    basis,
                    rotated,
                    entries,
                    kernel_tree,
                    tuple(spec),
                    filters,
                    scratch,
                    out,
                    log,
                )

            _pipeline.side_by_side(first, work, blocks, done, nq)
        return (*out, log)
