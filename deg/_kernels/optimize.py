"""Continuous edge optimisation (algorithm.md §7): swap paths that replace long edges.

An improvement removes one edge, then repairs the two degree deficits through a short chain of
edge swaps, each found by a small search. It is kept only when the total edge weight went down
and the graph provably stays connected (``has_path``); otherwise every change is undone from
the log, so a failed try leaves the graph bit-identical.

``graph`` is a ``state.Graph``, ``scr`` one thread's ``state.OptScratch``, ``opt`` the
``state.OptSpec`` ``(k_opt, eps_opt, i_opt)`` and ``log`` a ``state.EditLog`` with room for
``log_capacity(i_opt)`` records.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.distances import distance
from deg._kernels.graph import change_edge, find_slot, has_edge, rng_check
from deg._kernels.heap import (
    cand_id,
    cand_key,
    cand_pop,
    cand_push,
    max_drain_sorted,
    max_pop,
    max_push,
)
from deg._kernels.search import admit, next_tag, search_one, stop_key
from deg._kernels.state import EditLog, Graph, OptScratch, OptSpec, SearchSpec


@jit
def log_capacity(i_opt):
    """Changes one improvement can log: 2 (removal) + 3 per step + 4 (closing)."""
    return 2 + 3 * (i_opt + 1) + 4


@jit
def rand_below(state, n):
    """Uniform int in [0, n) from a splitmix64 stream kept in ``state`` (uint64[1])."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z % np.uint64(n))


@jit
def search_sorted(graph, query, entries, k, eps, scr):
    """Range search with include_entry; results ascending in ``scr.out_d, scr.out_i``;
    returns the count."""
    visited, tags, cand, res_d, res_i, out_d, out_i, fresh, group_i, group_d = scr
    tag = next_tag(visited, tags)
    # the optimiser searches the full graph (max_degree = d) with exact distances (they become
    # edge weights), entries included, no budget; typed flags rather than literals, so
    # search_one is not compiled twice
    spec = SearchSpec(
        k,
        eps,
        np.float32(1.0),
        np.bool_(True),
        np.bool_(True),
        np.bool_(False),
        np.int64(0),
        graph.neighbors.shape[1],
    )
    n_res, _, _ = search_one(
        graph,
        query,
        entries,
        spec,
        np.empty(0, dtype=np.uint64),  # no filter
        visited,
        tag,
        cand,
        res_d,
        res_i,
        fresh,
        group_i,
        group_d,
        fresh[:0],
        np.empty(0, dtype=np.float32),
    )
    while n_res > k:
        n_res = max_pop(res_d, res_i, n_res)
    return max_drain_sorted(res_d, res_i, n_res, out_d, out_i)


@jit
def has_path(graph, entries, target, k, eps, scr):
    """Does a search from ``entries`` towards ``target`` reach a vertex adjacent to it?

    algorithm.md §3.5: the same best-first loop; True as soon as an expanded vertex lists
    ``target``. False is not a proof of disconnection, so callers treat it as "unsafe".
    """
    vectors, neighbors, _, metric = graph
    visited, tags, cand, res_d, res_i = scr.visited, scr.tags, scr.cand, scr.res_d, scr.res_i
    tag16 = np.uint16(next_tag(visited, tags))
    query = vectors[target]
    n_cand = 0
    n_res = 0
    for p in range(entries.shape[0]):
        e = entries[p]
        if visited[e] == tag16:
            continue
        visited[e] = tag16
        de = distance(metric, query, vectors[e])
        n_cand = cand_push(cand, n_cand, cand_key(de, e))
        n_res = max_push(res_d, res_i, n_res, de, e)
    radius = np.inf
    xr = np.inf
    xr_key = stop_key(xr)
    while n_cand > 0:
        if cand[0] > xr_key:
            break
        c = cand_id(cand[0])
        n_cand = cand_pop(cand, n_cand)
        for j in range(neighbors.shape[1]):
            nb = neighbors[c, j]
            if nb == target:
                return True
            if visited[nb] == tag16:
                continue
            visited[nb] = tag16
            dn = distance(metric, query, vectors[nb])
            if dn <= xr:
                n_cand, n_res, radius, xr, xr_key = admit(
                    cand, n_cand, res_d, res_i, n_res, k, eps, dn, nb, radius, xr, xr_key, True
                )
    return False


@jit
def logged_change(neighbors, weights, log, pos, u, old, new, w):
    """``change_edge`` that records the old slot so it can be undone; returns the new log end."""
    log_u, log_old, log_new, log_w = log
    j = find_slot(neighbors, u, old)
    log_u[pos] = u
    log_old[pos] = old
    log_new[pos] = new
    log_w[pos] = weights[u, j]
    change_edge(neighbors, weights, u, old, new, w)
    return pos + 1


@jit
def undo(neighbors, weights, log, pos):
    log_u, log_old, log_new, log_w = log
    for i in range(pos - 1, -1, -1):
        change_edge(neighbors, weights, log_u[i], log_new[i], log_old[i], log_w[i])


@jit
def close_double_gap(graph, v4, v2, v3, gain, opt, scr, log, pos):
    """Case v1 == v4 (it lacks two edges): insert it like an extension, cutting one edge g-s.

    Returns the new log end, or -1 when no cut gains (nothing changed then).
    """
    vectors, neighbors, weights, metric = graph
    entries = np.empty(2, dtype=np.int32)
    entries[0] = v2
    entries[1] = v3
    out_d, out_i = scr.out_d, scr.out_i
    n = search_sorted(graph, vectors[v4], entries, opt.k, opt.eps, scr)
    best = 0.0
    bg = np.int64(-1)
    bs = np.int64(-1)
    bdg = np.float32(0.0)
    bds = np.float32(0.0)
    for r in range(n):
        g = out_i[r]
        dg = out_d[r]
        if g == v4 or has_edge(neighbors, v4, g):
            continue
        for j in range(neighbors.shape[1]):
            s = neighbors[g, j]
            if s == v4 or s == g or has_edge(neighbors, v4, s):
                continue
            ds = distance(metric, vectors[v4], vectors[s])
            ng = gain + weights[g, j] - (dg + ds)
            if ng > best:
                best = ng
                bg, bs, bdg, bds = g, s, dg, ds
    if bg < 0:
        return -1
    pos = logged_change(neighbors, weights, log, pos, v4, v4, bg, bdg)
    pos = logged_change(neighbors, weights, log, pos, v4, v4, bs, bds)
    pos = logged_change(neighbors, weights, log, pos, bg, bs, v4, bdg)
    pos = logged_change(neighbors, weights, log, pos, bs, bg, v4, bds)
    return pos


@jit
def improve_edge(graph, v1, v2, w12, opt, scr, log):
    """Try to replace edge v1-v2 by a swap path of total weight gain (algorithm.md §7.2, Alg. 4).

    Written as a loop over path steps (the reference recurses). Returns True when the graph
    changed: lower total weight, still even-regular and connected.
    """
    vectors, neighbors, weights, metric = graph
    k_opt, eps_opt, i_opt = opt
    if k_opt == 0:
        return False
    out_d, out_i = scr.out_d, scr.out_i
    entries = np.empty(2, dtype=np.int32)
    pos = logged_change(neighbors, weights, log, np.int64(0), v1, v2, v1, np.float32(0.0))
    pos = logged_change(neighbors, weights, log, pos, v2, v1, v2, np.float32(0.0))
    gain = np.float64(w12)
    v3 = v1
    v4 = v1
    for step in range(i_opt + 1):
        # 1) a new partner v3 for v2 among vertices reachable from {v3, v4}; v3 gives up v4
        entries[0] = v3
        entries[1] = v4
        n = search_sorted(graph, vectors[v2], entries, k_opt, eps_opt, scr)
        best = gain
        nv3 = np.int64(-1)  # typed, not literal: numba would compile callees for the literal
        nv4 = np.int64(-1)
        d23 = np.float32(0.0)
        d34 = np.float32(0.0)
        for r in range(n - 1, -1, -1):  # farthest first: the reference's scan order
            c = out_i[r]
            d2c = out_d[r]
            if c == v1 or c == v2 or has_edge(neighbors, v2, c):
                continue
            for j in range(neighbors.shape[1]):
                x = neighbors[c, j]
                g = gain - d2c + weights[c, j]
                if x != v2 and x != c and g > best:
                    best = g
                    nv3, nv4, d23, d34 = c, x, d2c, weights[c, j]
        if nv3 < 0:
            break
        v3 = nv3
        v4 = nv4
        gain = gain - d23 + d34
        pos = logged_change(neighbors, weights, log, pos, v2, v2, v3, d23)
        pos = logged_change(neighbors, weights, log, pos, v3, v4, v2, d23)
        pos = logged_change(neighbors, weights, log, pos, v4, v3, v4, np.float32(0.0))
        # 2) try to close the path
        if v1 == v4:
            closed = close_double_gap(graph, v4, v2, v3, gain, opt, scr, log, pos)
            if closed >= 0:
                return True
        elif not has_edge(neighbors, v1, v4):
            d14 = distance(metric, vectors[v1], vectors[v4])
            if gain - d14 > 0:
                entries[0] = v2
                entries[1] = v3
                if has_path(graph, entries, v1, k_opt, eps_opt, scr) or has_path(
                    graph, entries, v4, k_opt, eps_opt, scr
                ):
                    pos = logged_change(neighbors, weights, log, pos, v1, v1, v4, d14)
                    pos = logged_change(neighbors, weights, log, pos, v4, v4, v1, d14)
                    return True
        # 3) extend the path: the vertex that waited searches next, from the new edge's ends
        if step >= i_opt or gain < 0:
            break
        v1, v2, v3, v4 = v4, v1, v2, v3
    undo(neighbors, weights, log, pos)
    return False


@jit
def improve_random(graph, n, opt, scr, log, rand_state):
    """One random improvement try (algorithm.md §7.1, Alg. 5): every non-RNG edge of a random
    vertex, then its longest edge. Returns True if any improvement was kept."""
    neighbors, weights = graph.neighbors, graph.weights
    v1 = rand_below(rand_state, n)
    success = False
    d = neighbors.shape[1]
    for j in range(d):  # the live row: swaps may change it while we walk it
        v2 = np.int64(neighbors[v1, j])
        w = weights[v1, j]
        if v2 != v1 and not rng_check(neighbors, weights, v2, v1, w):
            if improve_edge(graph, v1, v2, w, opt, scr, log):
                success = True
    best = -1
    for j in range(d):
        if neighbors[v1, j] != v1 and (best < 0 or weights[v1, j] > weights[v1, best]):
            best = j
    if best >= 0:
        if improve_edge(graph, v1, np.int64(neighbors[v1, best]), weights[v1, best], opt, scr, log):
            success = True
    return success


@jit
def improve_many(graph, n, tries, opt, scr, log, rand_state):
    """``tries`` random improvement tries; returns how many changed the graph. ``graph``,
    ``opt``, ``scr`` and ``log`` are plain tuples of the fields of ``Graph``, ``OptSpec``,
    ``OptScratch`` and ``EditLog`` (see ``state``)."""
    graph, opt, scr, log = Graph(*graph), OptSpec(*opt), OptScratch(*scr), EditLog(*log)
    improved = 0
    for _ in range(tries):
        if improve_random(graph, n, opt, scr, log, rand_state):
            improved += 1
    return improved
