"""Vertex removal with repair (algorithm.md §6): the graph stays even-regular and connected.

Removing x leaves its d former neighbours one edge short each ("missing" vertices).
``restore_graph`` pairs them up again with d/2 short edges: first it finds, by a bounded
multi-source BFS, which missing vertices can still reach each other; isolated ones are linked to
a group with spare slots, groups are linked to each other, and the rest pair up freely.
Internal ids stay dense: the last vertex moves into the freed slot.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.distances import distance, distance_rows
from deg._kernels.graph import change_edge, has_edge
from deg._kernels.optimize import improve_edge
from deg._kernels.prefetch import prefetch_head
from deg._kernels.state import EditLog, Graph, OptScratch, OptSpec
from deg._kernels.values import f32

OK = 0
ERR_BFS = 1  # the BFS ran out of vertices while groups were still isolated: disconnected input
ERR_LEFTOVER = 2  # a missing vertex could not be paired (no 2-hop rewiring exists)
ERR_PLAN = 3  # the removal's plan was made for another vertex or graph (an internal error)
ROWS = 8  # 2-hop rows whose distances are summed side by side


@jit
def remove_vertex(graph, labels, n, x, involved):
    """Drop vertex x (of ``n``) and move the last vertex L into slot x (algorithm.md §6.1).

    Writes x's former neighbours, in their new ids, into ``involved`` (length d) and returns
    how many there are; each now lacks one edge (has one empty slot). If x and L were adjacent,
    that edge is dropped first and L, at its new id x, is among them.
    """
    vectors, neighbors, weights, _ = graph
    last = n - 1
    d = neighbors.shape[1]
    count = 0
    if x != last and has_edge(neighbors, x, last):
        change_edge(neighbors, weights, x, last, x, np.float32(0.0))
        change_edge(neighbors, weights, last, x, last, np.float32(0.0))
        involved[count] = x  # L, once moved into slot x, lacks this edge
        count += 1
    for j in range(d):
        nb = neighbors[x, j]
        if nb != x:
            change_edge(neighbors, weights, nb, x, nb, np.float32(0.0))
            involved[count] = nb
            count += 1
    if x != last:
        for j in range(d):  # L's neighbours rename it to x
            nb = neighbors[last, j]
            if nb != last:
                change_edge(neighbors, weights, nb, last, x, weights[last, j])
        for i in range(vectors.shape[1]):  # a loop: an array assignment costs 2 s to compile
            vectors[x, i] = vectors[last, i]
        labels[x] = labels[last]
        for j in range(d):  # L's row, its empty slots (L itself) renamed x
            nb = neighbors[last, j]
            neighbors[x, j] = x if nb == last else nb
            weights[x, j] = weights[last, j]
    return count


@jit
def connect(graph, a, b, w):
    """Fill one empty slot of a and of b with the edge a-b of weight ``w``."""
    neighbors, weights = graph.neighbors, graph.weights
    change_edge(neighbors, weights, a, a, b, w)
    change_edge(neighbors, weights, b, b, a, w)


@jit
def pair_distances(metric, vectors, rows, m, dist):
    """``dist[i, t] = distance(metric, vectors[rows[i]], vectors[rows[t]])`` for ``i, t < m``
    (a distance is symmetric to the last bit: ``(a - b)**2`` and ``(b - a)**2`` are equal)."""
    for i in range(m):
        dist[i, i] = 0.0
        for t in range(i + 1, m):
            w = distance(metric, vectors[rows[i]], vectors[rows[t]])
            dist[i, t] = w
            dist[t, i] = w


@jit
def plan_removal(graph, n, x, ids, dist):
    """What ``remove_vertex`` will leave open when it removes x (of ``n``), computed before
    it (it only reads): the vertices, in its order and new ids, into ``ids`` (length d), and
    the distances among them (``pair_distances``) into ``dist`` (d, d); returns how many.
    The repair's pairing reads them from there, so a removal's exclusive step computes
    almost no distance (the 2-hop rewiring's only)."""
    vectors, neighbors, _, metric = graph
    last = n - 1
    d = neighbors.shape[1]
    rows = np.empty(d, dtype=np.int64)  # the same vertices at their ids before the removal
    m = 0
    moved = x != last and has_edge(neighbors, x, last)
    if moved:  # L, adjacent to x, becomes open at its new id x
        ids[m] = x
        rows[m] = last
        m += 1
    for j in range(d):
        nb = neighbors[x, j]
        if nb != x and not (moved and nb == last):
            ids[m] = nb
            rows[m] = nb
            m += 1
    pair_distances(metric, vectors, rows, m, dist)
    return m


@jit("int64(int64[::1], int64)")
def find_group(parent, g):
    while parent[g] != g:
        parent[g] = parent[parent[g]]
        g = parent[g]
    return g


@jit
def bfs_groups(neighbors, missing, m, owner, touched, parent, members):
    """Union missing vertices whose BFS regions touch (algorithm.md §6.2: the groups).

    ``owner[v]`` (all -1 on entry, reset on exit) is the group that claimed v. Returns OK or
    ERR_BFS when the frontier dies out while isolated groups remain.
    """
    n_touched = 0
    frontier = np.empty(m, dtype=np.int64)
    for i in range(m):
        parent[i] = i
        members[i] = 1
        owner[missing[i]] = i
        touched[n_touched] = missing[i]
        n_touched += 1
        frontier[i] = missing[i]
    n_front = m
    depth = 0
    status = OK
    while need_more(parent, members, missing, m, neighbors):
        if n_front == 0:
            status = ERR_BFS
            break
        nxt = np.empty(n_front * neighbors.shape[1], dtype=np.int64)
        n_nxt = 0
        for f in range(n_front):
            x = frontier[f]
            r = find_group(parent, owner[x])
            if depth > 0 and members[r] > 1:
                continue  # only isolated groups keep searching
            for j in range(neighbors.shape[1]):
                y = neighbors[x, j]
                if y == x:
                    continue
                if owner[y] < 0:
                    owner[y] = r
                    touched[n_touched] = y
                    n_touched += 1
                    nxt[n_nxt] = y
                    n_nxt += 1
                else:
                    ry = find_group(parent, owner[y])
                    if ry != r:
                        parent[ry] = r
                        members[r] += members[ry]
        frontier = nxt[:n_nxt].copy()
        n_front = n_nxt
        depth += 1
    for i in range(n_touched):
        owner[touched[i]] = -1
    return status


@jit
def need_more(parent, members, missing, m, neighbors):
    """More isolated groups than spare missing slots (beyond 2) in the big groups?"""
    isolated = 0
    spare = 0
    for g in range(m):
        if find_group(parent, g) != g:
            continue
        if members[g] == 1:
            isolated += 1
        else:
            slots = open_count(neighbors, parent, missing, m, g)
            if slots > 2:
                spare += slots - 2
    return isolated > spare


@jit
def open_count(neighbors, parent, missing, m, g):
    c = 0
    for i in range(m):
        if find_group(parent, i) == g and has_edge(neighbors, missing[i], missing[i]):
            c += 1
    return c


@jit
def closest_pair(graph, parent, missing, m, ga, gb, dist):
    """Closest (a, b, their distance) with a open in group ga, b open in group gb (strict <:
    first wins); ``dist`` holds the missing vertices' distances (``pair_distances``)."""
    neighbors = graph.neighbors
    best = np.inf
    ba = np.int64(-1)
    bb = np.int64(-1)
    for i in range(m):
        a = missing[i]
        if find_group(parent, i) != ga or not has_edge(neighbors, a, a):
            continue
        for t in range(m):
            b = missing[t]
            if t == i or find_group(parent, t) != gb or not has_edge(neighbors, b, b):
                continue
            if has_edge(neighbors, a, b):
                continue
            dab = dist[i, t]
            if dab < best:
                best = dab
                ba = a
                bb = b
    return ba, bb, best


@jit
def attach_isolated(graph, parent, members, missing, m, new_edges, new_w, dist):
    """Step 2.3: link every isolated missing vertex to the closest spare slot of a big group.

    Records the new edges in ``new_edges`` (x, y) and ``new_w``; returns their count, or -1.
    ``dist``: the missing vertices' distances (``pair_distances``).
    """
    neighbors = graph.neighbors
    n_new = 0
    for i in range(m):
        if find_group(parent, i) != i or members[i] != 1:
            continue
        best = np.inf
        bt = np.int64(-1)
        for t in range(m):
            g = find_group(parent, t)
            if g == i or members[g] <= 1 or not has_edge(neighbors, missing[t], missing[t]):
                continue
            if open_count(neighbors, parent, missing, m, g) <= 2:
                continue
            dxb = dist[i, t]
            if dxb < best:
                best = dxb
                bt = t
        if bt < 0:
            return -1
        w = dist[i, bt]
        connect(graph, missing[i], missing[bt], w)
        new_edges[n_new, 0] = missing[i]
        new_edges[n_new, 1] = missing[bt]
        new_w[n_new] = w
        n_new += 1
        g = find_group(parent, bt)
        parent[i] = g
        members[g] += 1
    return n_new


@jit
def merge_groups(graph, parent, missing, m, dist):
    """Step 3: link the remaining groups, largest first, through their closest open pair."""
    neighbors = graph.neighbors
    roots = np.empty(m, dtype=np.int64)
    keys = np.empty(m, dtype=np.int64)
    r = 0
    for i in range(m):
        if find_group(parent, i) == i:
            roots[r] = i
            # sort key: (open slots, root vertex id)
            keys[r] = open_count(neighbors, parent, missing, m, i) * (1 << 40) + missing[i]
            r += 1
    groups = roots[:r].copy()
    for i in range(1, r):  # insertion sort by key: a few dozen groups at most, and it spares
        key, root = keys[i], groups[i]  # compiling a second argsort for int64 keys
        t = i
        while t > 0 and keys[t - 1] > key:
            keys[t] = keys[t - 1]
            groups[t] = groups[t - 1]
            t -= 1
        keys[t] = key
        groups[t] = root
    while r >= 2:
        ga = groups[r - 1]
        gb = groups[r - 2]
        a, b, w = closest_pair(graph, parent, missing, m, ga, gb, dist)
        if a < 0:
            return False
        connect(graph, a, b, w)
        parent[ga] = gb
        r -= 1
    return True


@jit
def pair_remaining(graph, missing, m, dist):
    """Step 3.4: pair the still-open missing vertices greedily, closest partner first
    (``dist``: their distances, ``pair_distances``)."""
    neighbors = graph.neighbors
    for i in range(m):
        a = missing[i]
        if not has_edge(neighbors, a, a):
            continue
        best = np.inf
        bb = np.int64(-1)
        for t in range(i + 1, m):
            b = missing[t]
            if has_edge(neighbors, b, b) and not has_edge(neighbors, a, b):
                dab = dist[i, t]
                if dab < best:
                    best = dab
                    bb = b
        if bb >= 0:
            connect(graph, a, bb, best)


@jit
def rewire_leftovers(graph, missing, m, owner):
    """Step 3.5: a is adjacent to every other open vertex c: cut a 2-hop edge B-D into a-B, c-D.

    Tries the 2-hop vertices B nearest first until one has a usable D (the reference takes only
    the nearest and can fail). Returns False if some open vertex could not be completed.
    ``owner`` (int64, one slot per vertex, all -1) marks the 2-hop vertices already listed and
    is all -1 again on return.
    """
    vectors, neighbors, weights, metric = graph
    d = neighbors.shape[1]
    for i in range(m):
        a = missing[i]
        if not has_edge(neighbors, a, a):
            continue
        c = np.int64(-1)
        for t in range(i + 1, m):
            if has_edge(neighbors, missing[t], missing[t]):
                c = missing[t]
                break
        if c < 0:
            return False
        cand = np.empty(d * d, dtype=np.int32)
        cd = np.empty(d * d, dtype=np.float32)
        nc = two_hop(neighbors, a, owner, cand)
        distances_from(metric, vectors, a, cand, nc, cd)
        order = np.argsort(cd[:nc], kind="mergesort")
        done = False
        for o in range(nc):
            bv = np.int64(cand[order[o]])
            best = np.inf
            dv = np.int64(-1)
            for t in range(d):
                q = neighbors[bv, t]
                if q != a and q != bv and not has_edge(neighbors, c, q):
                    dcq = distance(metric, vectors[c], vectors[q])
                    if dcq < best:
                        best = dcq
                        dv = q
            if dv >= 0:
                w_ab = distance(metric, vectors[a], vectors[bv])
                w_cd = distance(metric, vectors[c], vectors[dv])
                change_edge(neighbors, weights, bv, dv, a, w_ab)
                change_edge(neighbors, weights, dv, bv, c, w_cd)
                change_edge(neighbors, weights, a, a, bv, w_ab)
                change_edge(neighbors, weights, c, c, dv, w_cd)
                done = True
                break
        if not done:
            return False
    return True


@jit
def two_hop(neighbors, a, owner, out):
    """The distinct vertices two hops from ``a`` that are not its neighbours, in the order a
    scan of its neighbours' rows first meets them, into ``out`` (>= d * d slots); returns how
    many. ``owner`` marks the listed ones (all -1 on entry, and again on return): about 44% of
    the meetings repeat a vertex on Fashion-MNIST (d=30), each a random row's distance."""
    d = neighbors.shape[1]
    count = 0
    for j in range(d):
        h = neighbors[a, j]
        if h == a:
            continue
        for t in range(d):
            p = neighbors[h, t]
            if p != a and p != h and owner[p] < 0 and not has_edge(neighbors, a, p):
                owner[p] = 0
                out[count] = p
                count += 1
    for r in range(count):
        owner[out[r]] = -1
    return count


@jit
def distances_from(metric, vectors, a, ids, count, out):
    """``distance(metric, vectors[a], vectors[ids[r]])`` into ``out[r]`` for ``r < count``,
    ``ROWS`` rows side by side (``distance_rows``) while the next ``ROWS`` rows are loaded:
    the rows are random, and one after another each waited for memory (a removal's 2-hop
    rewiring, ~400 rows, was most of its time). The same bits as ``distance`` for float32
    rows (its query is their float32 copy of row ``a``; other types may differ in the last
    bit)."""
    dim = vectors.shape[1]
    query = np.empty(dim, np.float32)
    for i in range(dim):
        query[i] = f32(vectors[a, i])
    row_bytes = dim * vectors.itemsize
    group_i = np.empty(ROWS, np.int32)
    group_d = np.empty(ROWS, np.float32)
    for r in range(min(ROWS, count)):
        prefetch_head(vectors, ids[r], row_bytes)
    lo = 0
    while lo < count:
        size = min(ROWS, count - lo)
        for r in range(size):
            group_i[r] = ids[lo + r]
        for r in range(lo + ROWS, min(lo + 2 * ROWS, count)):
            prefetch_head(vectors, ids[r], row_bytes)
        distance_rows(
            metric, query, vectors, group_i, size, np.float32(np.inf), np.float32(1.0), group_d
        )
        for r in range(size):
            out[lo + r] = group_d[r]
        lo += size


@jit
def longest_first(edges, w, n):
    """Order of edges by weight descending, then endpoint ids ascending (algorithm.md §6.2)."""
    order = np.arange(n)
    for i in range(1, n):
        o = order[i]
        t = i
        while t > 0:
            p = order[t - 1]
            if w[p] > w[o] or (
                w[p] == w[o]
                and (
                    edges[p, 0] < edges[o, 0]
                    or (edges[p, 0] == edges[o, 0] and edges[p, 1] <= edges[o, 1])
                )
            ):
                break
            order[t] = p
            t -= 1
        order[t] = o
    return order


@jit
def repair_graph(graph, missing, m, owner, touched, new_edges, new_w, dist):
    """RESTORE_GRAPH's repair (algorithm.md §6.2) without its optimisation: give each of the
    m missing vertices its edge back.

    ``missing`` holds distinct vertices that each lack exactly one edge (m is even, at most
    ``new_edges.shape[0]``). ``owner`` (int64, all -1) and ``touched`` (int64) have one slot
    per vertex. The edges made for isolated vertices, the ones Alg. 4 optimises, go to
    ``new_edges`` (int64, (>= m, 2)) and ``new_w``, longest first. ``dist`` (float32, (>= m,
    >= m)) holds the missing vertices' distances (``pair_distances``). Returns ``(status,
    count)``: OK or an error code (the graph then still has empty slots), and how many edges
    were written.
    """
    if m == 0:
        return OK, 0
    parent = np.empty(m, dtype=np.int64)
    members = np.empty(m, dtype=np.int64)
    status = bfs_groups(graph.neighbors, missing, m, owner, touched, parent, members)
    if status != OK:
        return status, 0
    made = np.empty((m, 2), dtype=np.int64)
    made_w = np.empty(m, dtype=np.float32)
    n_new = attach_isolated(graph, parent, members, missing, m, made, made_w, dist)
    if n_new < 0:
        return ERR_BFS, 0
    if not merge_groups(graph, parent, missing, m, dist):
        return ERR_LEFTOVER, 0
    pair_remaining(graph, missing, m, dist)
    if not rewire_leftovers(graph, missing, m, owner):
        return ERR_LEFTOVER, 0
    for t, o in enumerate(longest_first(made, made_w, n_new)):
        new_edges[t, 0] = made[o, 0]
        new_edges[t, 1] = made[o, 1]
        new_w[t] = made_w[o]
    return OK, n_new


@jit
def improve_new_edges(graph, new_edges, new_w, lo, hi, opt, scr, log):
    """Alg. 4 on the repair's new edges ``lo..hi-1`` (``repair_graph``'s order) that are
    still in the graph."""
    for o in range(lo, hi):
        x = new_edges[o, 0]
        y = new_edges[o, 1]
        if has_edge(graph.neighbors, x, y):
            improve_edge(graph, x, y, new_w[o], opt, scr, log)


@jit
def restore_graph(graph, missing, m, improve, opt, scr, log, owner, touched):
    """RESTORE_GRAPH (algorithm.md §6.2): ``repair_graph``, then with ``improve`` and
    ``opt.k > 0`` the new edges optimised (Alg. 4), longest first. Returns OK or an error
    code; on error the graph still has empty slots.
    """
    new_edges = np.empty((max(m, 1), 2), dtype=np.int64)
    new_w = np.empty(max(m, 1), dtype=np.float32)
    dist = np.empty((max(m, 1), max(m, 1)), dtype=np.float32)
    pair_distances(graph.metric, graph.vectors, missing, m, dist)
    status, n_new = repair_graph(graph, missing, m, owner, touched, new_edges, new_w, dist)
    if status == OK and improve and opt.k > 0:
        improve_new_edges(graph, new_edges, new_w, 0, n_new, opt, scr, log)
    return status


@jit
def remove_and_restore(graph, labels, n, x, owner, touched, new_edges, new_w, plan):
    """Remove vertex x of ``n`` (``remove_vertex``) and, while more than d vertices remain,
    repair the graph (``repair_graph``: ``new_edges`` (>= d rows) and ``new_w`` get the new
    edges to optimise, which the caller does in steps with ``improve_new_edges``). ``plan``
    is ``plan_removal``'s ``(count, ids, dist)`` for this x on this graph (ERR_PLAN if the
    removal leaves other vertices open). Returns ``(status, count)`` as ``repair_graph``."""
    graph = Graph(*graph)
    planned, ids, dist = plan
    d = graph.neighbors.shape[1]
    involved = np.empty(d, dtype=np.int64)
    count = remove_vertex(graph, labels, n, x, involved)
    if n - 1 <= d:  # the complete graph on n - 1 vertices: empty slots are expected
        return OK, 0
    if count != planned or ids.shape[0] < count or min(dist.shape[0], dist.shape[1]) < count:
        return ERR_PLAN, 0
    for i in range(count):
        if involved[i] != ids[i]:
            return ERR_PLAN, 0
    return repair_graph(graph, involved, count, owner, touched, new_edges, new_w, dist)


@jit
def improve_repair(graph, new_edges, new_w, lo, hi, opt, scr, log):
    """``improve_new_edges`` on plain tuples of ``Graph``, ``OptSpec``, ``OptScratch`` and
    ``EditLog`` (the caller's steps after ``remove_and_restore``)."""
    graph, opt, scr, log = Graph(*graph), OptSpec(*opt), OptScratch(*scr), EditLog(*log)
    if opt.k > 0:
        improve_new_edges(graph, new_edges, new_w, lo, hi, opt, scr, log)
