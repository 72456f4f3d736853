"""Range search (algorithm.md §3.2) and its batch drivers.

One routine serves query search, exploration and construction. Per-thread scratch (visited
tags, candidate and result heaps) is allocated by the caller once per scratch set and indexed
by a thread-block number, never by query number, so parallel blocks never share buffers.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.atomic import fetch_add
from deg._kernels.distances import IP, chunk_end, distance, distance_rows, distance_rows_by_four
from deg._kernels.entry_tree import ENTRIES, leaf_of
from deg._kernels.filters import allowed
from deg._kernels.heap import (
    before,
    cand_id,
    cand_key,
    cand_pop,
    cand_push,
    drain_padded,
    max_pop,
    max_push,
    max_replace_top,
)
from deg._kernels.prefetch import prefetch_head
from deg._kernels.rotation import rotate_queries
from deg._kernels.state import (
    Basis,
    DistanceLog,
    Filters,
    Graph,
    Results,
    Scratch,
    SearchSpec,
    Tree,
)

# L2 rows are prefetched only as far as their first chunk (distances.chunk_end): a candidate
# beyond the radius is usually rejected there (distance_rows), and the hardware prefetcher
# streams the rest of a row that is read on. Fashion-MNIST 784-D: +8-12% QPS over prefetching
# whole rows; with rows read in groups (below) 512 bytes was a few % ahead of 0, 1024 and
# 2048; in the rotated basis (first chunk 64 floats) 256 bytes gives +2-3% search and +8%
# exploration over 512 (alternating A/B, 4 pairs).
# Fresh neighbours' distances are computed this many rows at a time (distance_rows), so
# their reads overlap. Fashion-MNIST: 4 and 8 +13-20% QPS over one at a time, 16 -2-+4% and 32
# -4-10% (a group shares the bound it started with, and a row of several chunks is read further
# the staler it is).
GROUP = 8
# Rows of one chunk (at most 128 floats) are read whole whatever the bound, so their groups only
# cost overhead: SIFT-small 32 +4-10% QPS over 8, 16 +3-5%, 4 -8%; same results.
WHOLE_GROUP = 32
GROUP_MAX = max(GROUP, WHOLE_GROUP)
TAG_MAX = 65535  # visited tags are uint16; the array is cleared when the tag wraps


@jit("int64(uint16[::1], int64[::1])")
def next_tag(visited_row, tag_row):
    """Advance a thread's visited tag (``tag_row[0]``), clearing its visited row when the tag
    wraps."""
    tag = tag_row[0] + 1
    if tag > TAG_MAX:
        visited_row[:] = 0
        tag = 1
    tag_row[0] = tag
    return tag


@jit("uint64(float64)")
def stop_key(xr):
    """The largest candidate key whose distance is <= ``xr``: a candidate key above it is a
    distance > ``xr`` (through the largest float32 <= ``xr``, so no float32 between differs)."""
    x32 = np.float32(xr)
    if x32 > xr:
        x32 = np.nextafter(x32, np.float32(-np.inf))
    return cand_key(x32, np.int64(0xFFFFFFFF))


@jit
def admit(cand, n_cand, res_d, res_i, n_res, k, eps, dn, nb, radius, xr, xr_key, ok):
    """A neighbour ``nb`` at distance ``dn`` within the bound ``xr``: it becomes a candidate,
    and, if it may be a result (``ok``: it passes the filter), a result when closer than the
    radius (the k-th distance once a (k+1)-th result arrived: then the farthest of the k+1
    leaves and the radius and bound shrink, algorithm.md §3.2). A filtered-out vertex is
    traversed but never returned, and the radius is that of the allowed results. Returns the
    new ``(n_cand, n_res, radius, xr, xr_key)``."""
    n_cand = cand_push(cand, n_cand, cand_key(dn, nb))
    if ok and dn < radius:
        if n_res < k:
            n_res = max_push(res_d, res_i, n_res, dn, nb)
        else:
            if before(dn, nb, res_d[0], res_i[0]):
                max_replace_top(res_d, res_i, n_res, dn, nb)
            radius = res_d[0]
            xr = radius * (1.0 + eps) if radius >= 0 else radius * (1.0 - eps)
            xr_key = stop_key(xr)
    return n_cand, n_res, radius, xr, xr_key


@jit
def search_one(
    graph,
    query,
    entries,
    spec,
    words,
    visited,
    tag,
    cand,
    res_d,
    res_i,
    fresh,
    group_i,
    group_d,
    log_i,
    log_d,
):
    """Best-first range search from ``entries`` towards ``query`` (algorithm.md §3.2).

    The result max-heap keeps k entries; the radius is the k-th distance only once a (k+1)-th
    result arrived ("lagging radius"). Stops when the closest open candidate is farther than
    radius*(1+eps) (radius*(1-eps) for a negative radius). ``max_dc > 0`` bounds the number of
    distance computations, entries included; once spent, remaining neighbours are marked
    visited but not evaluated, so the lowest-slot ones are kept. ``lead`` (float32, 1 = exact)
    rejects a candidate whose first distance chunk alone passes ``lead`` times the bound (see
    ``distances.distance_rows``); queries of a rotated index pass less than 1. ``exact``: every
    distance bit for bit ``distance``'s (construction, whose distances become edge weights);
    otherwise (query search, exploration) rows of one chunk are summed four at a time
    (``distance_rows_by_four``), equal up to float32 rounding.

    ``cand`` (uint64, one slot per vertex) holds the candidate heap (``heap.cand_key``).
    ``fresh`` (int32, length >= d) holds the slots of the unvisited neighbours of the vertex
    being expanded: their rows are all prefetched before any distance is computed.
    ``group_i/group_d`` (int32, float32, length >= ``GROUP_MAX``) hold a group's rows and
    distances (``distance_rows``): scratch of the caller's, allocated once per chunk of
    queries rather than twice in every search (with the scratch views taken once per chunk
    too: ~4% of a SIFT-small search, see bench/RESULTS.md). With
    ``max_degree < d`` only the first ``max_degree`` slots of each expanded vertex's row are
    followed (rows are in search-view order, see ``view.py``): fewer distance computations
    per hop; a skipped neighbour stays unvisited, so it can still be reached through another
    vertex.

    ``own_entry`` (exploration): the query is the vector of the single entry vertex, so the
    distances to that vertex's neighbours are its edge weights (``weights``, the same bits
    ``distance`` gives): its expansion costs no distance computation, and follows all d edges
    whatever ``max_degree``. Otherwise ``weights`` is not read.

    Up to ``len(log_i)`` exact distances computed on the way are written to ``log_i/log_d``
    (vertex, distance), in the order computed; construction reuses them (``choose_cut``).
    Abandoned distances are not logged.

    ``words`` (uint64) is the filter's bitset over ids (``filters.allowed``); empty: none.

    Returns ``(n_res, n_dc, n_log)``: the number of results left in ``res_d/res_i`` (a
    max-heap), the distance computations made and the distances logged.
    """
    vectors, neighbors, weights, metric = graph
    k, eps, lead, exact, include_entry, own_entry, max_dc, max_degree = spec
    tag16 = np.uint16(tag)
    d = neighbors.shape[1]
    bounded = metric != IP  # L2 and COS distances are abandoned past the radius
    width = chunk_end(0, vectors.shape[1]) if bounded else vectors.shape[1]
    head = vectors.itemsize * width  # bytes per row to prefetch
    n_cand = 0
    n_res = 0
    n_dc = 0
    n_log = 0
    whole = chunk_end(0, vectors.shape[1]) == vectors.shape[1]  # rows of one chunk
    group = WHOLE_GROUP if whole else GROUP
    by_four = whole and bounded and not exact
    for p in range(entries.shape[0]):  # several entries (a tree leaf): their reads overlap
        prefetch_head(vectors, entries[p], head)
    for p in range(entries.shape[0]):
        e = entries[p]
        if visited[e] == tag16:
            continue
        visited[e] = tag16
        de = distance(metric, query, vectors[e])
        if n_log < log_i.shape[0]:
            log_i[n_log] = e
            log_d[n_log] = de
            n_log += 1
        n_cand = cand_push(cand, n_cand, cand_key(de, e))
        if include_entry and allowed(words, e):
            n_res = max_push(res_d, res_i, n_res, de, e)
        n_dc += 1
        if max_dc > 0 and n_dc >= max_dc:
            return n_res, n_dc, n_log
    radius = np.inf
    xr = np.inf
    xr_key = stop_key(xr)
    while n_cand > 0:
        if cand[0] > xr_key:  # the closest open candidate is beyond radius*(1+eps)
            break
        c = cand_id(cand[0])
        n_cand = cand_pop(cand, n_cand)
        if n_cand > 0:  # the likely next expansion: start loading its rows now
            nxt = cand_id(cand[0])
            prefetch_head(neighbors, nxt, max_degree * 4)  # the slots it will follow
        own = own_entry and c == entries[0]  # distances known: all the entry's edges are free
        span = d if own else max_degree
        n_fresh = 0
        cap = span if own or max_dc == 0 else max_dc - n_dc  # the budget's remainder
        # collect the fresh neighbours without a branch (whether one was visited is a coin
        # toss to the branch predictor: SIFT-small +10% QPS), prefetch them, then evaluate;
        # past the budget they are still marked visited, so the lowest slots are the ones kept
        for slot in range(span):
            nb = neighbors[c, slot]
            fresh[n_fresh] = slot
            n_fresh += (visited[nb] != tag16) & (n_fresh < cap)
            visited[nb] = tag16
        if not own:
            for f in range(n_fresh):
                prefetch_head(vectors, neighbors[c, fresh[f]], head)
        g = group  # the next row's place in its group (a counter: f % group divides)
        for f in range(n_fresh):
            slot = fresh[f]
            nb = neighbors[c, slot]
            if own:
                dn = weights[c, slot]
            else:
                n_dc += 1
                if g == group:  # this and the next few fresh rows, read side by side
                    g = 0
                    count = min(group, n_fresh - f)
                    for r in range(count):
                        group_i[r] = neighbors[c, fresh[f + r]]
                    if by_four:
                        distance_rows_by_four(
                            metric, query, vectors, group_i, count, np.float32(xr), group_d
                        )
                    else:  # L2, COS: beyond xr only the rejection matters: rows stop early
                        distance_rows(
                            metric, query, vectors, group_i, count, np.float32(xr), lead, group_d
                        )
                dn = group_d[g]  # exact, or (L2, COS) > the xr it was bounded by (xr only shrinks)
                g += 1
                if (dn <= xr or not bounded) and n_log < log_i.shape[0]:  # complete ones only
                    log_i[n_log] = nb
                    log_d[n_log] = dn
                    n_log += 1
            if dn <= xr:
                n_cand, n_res, radius, xr, xr_key = admit(
                    cand,
                    n_cand,
                    res_d,
                    res_i,
                    n_res,
                    k,
                    eps,
                    dn,
                    nb,
                    radius,
                    xr,
                    xr_key,
                    allowed(words, nb),
                )
        if max_dc > 0 and n_dc >= max_dc:
            break
    return n_res, n_dc, n_log


@jit
def search_block(t, lo, hi, graph, queries, entries, tree, spec, filters, scratch, out, log):
    """Answer queries ``lo..hi-1`` with thread ``t``'s rows of ``scratch``; write sorted,
    padded rows into ``out``.

    With ``log.ids.shape[1] > 0`` each query's exact distances (up to that many) are kept in
    its row of ``log``, their count in ``log.counts``.

    With an entry tree (``tree.members`` not empty, see ``entry_tree``) each query starts at
    the first ``ENTRIES`` members of the leaf it descends to; its hyperplane tests (one per
    level) count towards the budget and the reported distance computations. Otherwise it
    starts at ``entries`` (one row for all queries, or one row per query).

    ``filters`` (``state.Filters``): query q may only return the vertices of bitset row
    ``of[q]`` (row 0 when ``of`` is empty; rows of no words: no filter), and a row's
    ``budget`` (> 0) bounds its searches' distance computations like ``max_dc``.
    """
    vectors = graph.vectors
    k, eps, lead, exact, include_entry, own_entry, max_dc, max_degree = spec
    members, pairs, planes, offsets = tree
    levels = 0
    while (1 << levels) - 1 < pairs.shape[0]:
        levels += 1
    use_tree = members.shape[0] > 0 and (max_dc == 0 or max_dc > 2 * (levels + ENTRIES))
    # every query descends the tree before any searches: the upper levels' hyperplanes stay
    # in cache, where between searches the vectors read would have evicted them (FM: ~3% QPS)
    leaf_lo = np.zeros(hi - lo if use_tree else 0, np.int64)
    group_i = np.empty(GROUP_MAX, np.int32)
    group_d = np.empty(GROUP_MAX, np.float32)
    for q in range(leaf_lo.shape[0]):
        leaf_lo[q], _ = leaf_of(queries[lo + q], vectors, members, pairs, planes, offsets)
    # this thread's scratch rows, taken once: a view made per query is reference-counted
    visited_t, tag_t, cand_t, res_d_t, res_i_t, fresh_t = (
        scratch.visited[t],
        scratch.tags[t],
        scratch.cand[t],
        scratch.res_d[t],
        scratch.res_i[t],
        scratch.fresh[t],
    )
    log_i, log_d, log_n = log
    out_i, out_d, out_dc = out
    words, of, f_budget = filters
    for q in range(lo, hi):
        tag = next_tag(visited_t, tag_t)
        n_descent = 0
        if use_tree:
            a = leaf_lo[q - lo]
            erow = members[a : a + ENTRIES]
            n_descent = levels
        else:
            erow = entries[0] if entries.shape[0] == 1 else entries[q]
        f = of[q] if of.shape[0] > 0 else 0
        limit = max_dc
        if f_budget[f] > 0 and (limit == 0 or f_budget[f] < limit):
            limit = f_budget[f]
        budget = max(1, limit - n_descent) if limit > 0 else 0
        one = SearchSpec(k, eps, lead, exact, include_entry, own_entry, budget, max_degree)
        n_res, n_dc, n_log = search_one(
            graph,
            queries[q],
            erow,
            one,
            words[f],
            visited_t,
            tag,
            cand_t,
            res_d_t,
            res_i_t,
            fresh_t,
            group_i,
            group_d,
            log_i[q],
            log_d[q],
        )
        if log_i.shape[1] > 0:
            log_n[q] = n_log
        n_dc += n_descent
        while n_res > k:  # more entries than k with include_entry: trim the farthest
            n_res = max_pop(res_d_t, res_i_t, n_res)
        drain_padded(res_d_t, res_i_t, n_res, out_d[q], out_i[q])
        out_dc[q] = n_dc


@jit
def claim_chunk(claim, chunk, queries, yt, tt, rotated):
    """Claim the next ``chunk`` queries of a batch (``claim``: the shared int64[1] counter);
    returns ``(lo, hi)``, ``lo >= nq`` when none are left. With reflections in ``yt`` the
    claimed queries are rotated into ``rotated`` (the stored basis) first."""
    nq = queries.shape[0]
    lo = fetch_add(claim, chunk)
    hi = min(lo + chunk, nq)
    if lo < nq and yt.shape[0] > 0:
        rotate_queries(queries[lo:hi], yt, tt, rotated[lo:hi])
    return lo, hi


@jit
def search_shared(
    t,
    claim,
    done,
    chunk,
    graph,
    queries,
    basis,
    rotated,
    entries,
    tree,
    spec,
    filters,
    scratch,
    out,
    log,
):
    """Thread ``t``'s part of a batch: claim ``chunk`` queries at a time from ``claim`` (a
    shared int64[1] starting at 0) and answer them with scratch rows ``t``, until none are
    left. Each chunk's queries are counted in ``done`` (int64[1]) once answered: whoever sees
    the count reach the number of queries sees every answer. ``graph``, ``basis``, ``tree``,
    ``spec``, ``filters``, ``scratch``, ``out`` and ``log`` are plain tuples of the fields of
    ``Graph``, ``Basis``, ``Tree``, ``SearchSpec``, ``Filters``, ``Scratch``, ``Results`` and
    ``DistanceLog``
    (``state``: a plain tuple costs numba less to type on each call).

    Every thread of a batch runs this over the same arguments (the kernel releases the GIL),
    so a thread that starts late or draws slow queries simply claims fewer: the threads finish
    together without a Python call per chunk. A query's answer does not depend on the thread
    or chunk it fell to. With rows in ``basis``, the queries are in the input basis, and each
    chunk is rotated into ``rotated`` (same shape) before it is searched
    (``rotation.rotate_rows``, whose rows do not depend on their block-mates).
    """
    graph, basis, tree, spec = Graph(*graph), Basis(*basis), Tree(*tree), SearchSpec(*spec)
    filters = Filters(*filters)
    scratch, out, log = Scratch(*scratch), Results(*out), DistanceLog(*log)
    yt, tt = basis
    nq = queries.shape[0]
    stored = rotated if yt.shape[0] > 0 else queries
    lo, hi = claim_chunk(claim, chunk, queries, yt, tt, rotated)
    while lo < nq:
        search_block(t, lo, hi, graph, stored, entries, tree, spec, filters, scratch, out, log)
        fetch_add(done, hi - lo)
        lo, hi = claim_chunk(claim, chunk, queries, yt, tt, rotated)
