"""Exact scan over an allowed set (docs/algorithm.md §3.6): when a filter allows
few vertices, or allows them far from the query, reading each allowed vector once is cheaper
than a graph search that must pass all the others to find them, and it is always right."""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.atomic import fetch_add
from deg._kernels.distances import distance_rows
from deg._kernels.heap import before, drain_padded, max_push, max_replace_top
from deg._kernels.prefetch import prefetch_head
from deg._kernels.search import claim_chunk

ROWS = 8  # rows read side by side (distance_rows), as the graph search reads its groups


@jit
def scan_one(vectors, metric, query, ids, skip, k, res_d, res_i, group_i, group_d):
    """The k nearest of ``vectors[ids]`` to ``query`` (``skip``: an id never returned, -1:
    none) into the max-heap ``res_d/res_i``; returns its size. Rows past the current k-th
    distance are abandoned (``distance_rows``), exactly: a row within it is never lost."""
    n_res = 0
    bound = np.float32(np.inf)
    head = vectors.itemsize * min(vectors.shape[1], 64)
    m = ids.shape[0]
    lo = 0
    while lo < m:
        count = 0
        while count < ROWS and lo < m:
            v = ids[lo]
            lo += 1
            if v != skip:
                group_i[count] = v
                prefetch_head(vectors, v, head)
                count += 1
        distance_rows(metric, query, vectors, group_i, count, bound, np.float32(1.0), group_d)
        for r in range(count):
            dn = group_d[r]
            if n_res < k:
                n_res = max_push(res_d, res_i, n_res, dn, group_i[r])
            elif before(dn, group_i[r], res_d[0], res_i[0]):
                max_replace_top(res_d, res_i, n_res, dn, group_i[r])
            if n_res == k:
                bound = res_d[0]
    return n_res


@jit
def scan_shared(t, claim, done, chunk, graph, queries, basis, rotated, sets, skip, scratch, out):
    """Thread ``t``'s part of a batch of exact scans, claimed ``chunk`` queries at a time as in
    ``search.search_shared``. Query q scans ids ``sets[0][sets[1][s]:sets[1][s + 1]]`` with
    ``s = sets[2][q]`` (the allowed ids of its filter, concatenated, their offsets, the set of
    each query), never returning ``skip[q]`` (an exploration's entry, -1: none). ``basis``
    and ``rotated`` as in ``search_shared``; ``scratch`` is ``(res_d, res_i, group_i,
    group_d)``, one row per thread; ``out`` a ``Results`` tuple, rows of k (padded with -1 and
    inf), the rows scanned as the distance computations."""
    vectors, _, _, metric = graph
    ids, offsets, set_of = sets
    res_d, res_i, group_i, group_d = scratch
    out_i, out_d, out_dc = out
    yt, tt = basis
    k = out_i.shape[1]
    nq = queries.shape[0]
    stored = rotated if yt.shape[0] > 0 else queries
    lo, hi = claim_chunk(claim, chunk, queries, yt, tt, rotated)
    while lo < nq:
        for q in range(lo, hi):
            s = set_of[q]
            mine = ids[offsets[s] : offsets[s + 1]]
            n_res = scan_one(
                vectors,
                metric,
                stored[q],
                mine,
                skip[q],
                k,
                res_d[t],
                res_i[t],
                group_i[t],
                group_d[t],
            )
            drain_padded(res_d[t], res_i[t], n_res, out_d[q], out_i[q])
            out_dc[q] = mine.shape[0]
        fetch_add(done, hi - lo)
        lo, hi = claim_chunk(claim, chunk, queries, yt, tt, rotated)
