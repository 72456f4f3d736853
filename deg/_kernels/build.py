"""Construction: the complete-graph bootstrap and the d/2 edge-swap extension (algorithm.md §5).

New vertices are placed with all-self-loop rows (unreachable: nobody points at them), their
candidates are found by ``search`` on the graph as it was before the batch (that phase is
read-only and may run in parallel), then ``connect_batch`` wires them in one by one, which keeps
every vertex at degree d and the graph connected after each step.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.distances import IP, chunk_end, distance, distance_within
from deg._kernels.graph import change_edge, has_edge, rng_check
from deg._kernels.prefetch import prefetch_head
from deg._kernels.remove import restore_graph
from deg._kernels.state import DistanceLog, EditLog, Graph, OptScratch, OptSpec

SCHEME_D = 0  # "low LID": cut the neighbour that distorts least (w_cv + d_vn - w_cn)
SCHEME_C = 1  # "high LID": cut the candidate's longest edge
SCHEME_STREAM = 2  # distribution-agnostic: random entry, d-1 links, repair the cut-off vertices


@jit
def reset_rows(neighbors, weights, start, end):
    """Give vertices ``start..end-1`` d empty slots (self-loops, weight 0)."""
    for v in range(start, end):
        for j in range(neighbors.shape[1]):
            neighbors[v, j] = v
            weights[v, j] = np.float32(0.0)


@jit
def bootstrap(graph, v):
    """Connect vertex ``v`` to every existing vertex (the graph holds fewer than d+1);
    ``graph``: a plain tuple of ``Graph``'s fields (see ``state``)."""
    graph = Graph(*graph)
    vectors, neighbors, weights, metric = graph
    for i in range(v):
        w = distance(metric, vectors[i], vectors[v])
        change_edge(neighbors, weights, i, i, v, w)
        change_edge(neighbors, weights, v, v, i, w)


@jit
def choose_cut(graph, v, c, w_cv, scheme, known, stamp):
    """Pick the neighbour n of candidate c whose edge c-n is cut for v (scheme C or D).

    Only neighbours not yet adjacent to v qualify. Returns ``(slot, dist(v, n))``, slot -1 when
    none qualifies. First best wins on ties (strict comparisons, algorithm.md §5.4).
    """
    vectors, neighbors, weights, metric = graph
    if scheme == SCHEME_C:
        best = -1
        for j in range(neighbors.shape[1]):
            m = neighbors[c, j]
            if (
                m != c
                and not has_edge(neighbors, v, m)
                and (best < 0 or weights[c, j] > weights[c, best])
            ):
                best = j
        if best < 0:
            return best, np.float32(0.0)
        return best, distance(metric, vectors[v], vectors[neighbors[c, best]])
    return least_distortion(graph, v, c, w_cv, known, stamp)


@jit
def least_distortion(graph, v, c, w_cv, known, stamp):
    """Scheme D: the neighbour n minimising w_cv + d(v, n) - w_cn, lowest slot on ties.

    Distances v's candidate search already computed (``stamp[m] == v``: ``known[m]``, the bits
    ``distance`` gives) are scored first; they give a score to beat, so each remaining L2
    distance is abandoned (``distance_within``) once it cannot win. Those are mostly vertices the
    search had itself abandoned, far from v: on Fashion-MNIST 40% of the distances the wiring
    needs are not in the log. The bound carries a margin of 1e-5 of the terms' size, far above
    float32 rounding, so the choice is exactly that of scoring every neighbour in slot order.
    """
    vectors, neighbors, weights, metric = graph
    d = neighbors.shape[1]
    best = -1
    best_score = np.float32(0.0)
    best_dvn = np.float32(0.0)
    for j in range(d):  # known distances; start loading the rows of the others
        m = neighbors[c, j]
        if m == c:
            continue
        if stamp[m] != v:
            # the first distance chunk: most unknown distances stop there (FM build, rotated:
            # 256 bytes 2-3% faster than 512 in 3 alternating pairs)
            prefetch_head(vectors, m, vectors.itemsize * chunk_end(0, vectors.shape[1]))
            continue
        if has_edge(neighbors, v, m):
            continue
        score = (w_cv + known[m]) - weights[c, j]
        if best < 0 or score < best_score:
            best = j
            best_score = score
            best_dvn = known[m]
    bounded = metric != IP
    for j in range(d):  # the others, abandoned once they cannot beat the best so far
        m = neighbors[c, j]
        if m == c or stamp[m] == v or has_edge(neighbors, v, m):
            continue
        if bounded and best >= 0:
            w_cm = weights[c, j]
            limit = (best_score + w_cm) - w_cv
            limit += np.float32(1e-5) * (abs(best_score) + abs(w_cm) + abs(w_cv)) + np.float32(
                1e-30
            )
            d_vm = distance_within(metric, vectors[v], vectors[m], limit)
            if d_vm > limit:
                continue
        else:
            d_vm = distance(metric, vectors[v], vectors[m])
        score = (w_cv + d_vm) - weights[c, j]
        if best < 0 or score < best_score or (score == best_score and j < best):
            best = j
            best_score = score
            best_dvn = d_vm
    return best, best_dvn


@jit
def candidate_ok(neighbors, weights, v, c, w_cv, rng_pass):
    """May candidate c take part in v's insertion? Not v, not yet adjacent to v, and in the
    first pass conform to the relative neighbourhood graph (algorithm.md §5.3-5.5)."""
    if c == v or has_edge(neighbors, c, v):
        return False
    return not rng_pass or rng_check(neighbors, weights, c, v, w_cv)


@jit
def found(cand_i, q):
    """Candidates in row q of a search result (rows are padded with -1)."""
    n = 0
    while n < cand_i.shape[1] and cand_i[q, n] >= 0:
        n += 1
    return n


@jit
def connect_candidates(graph, v, cand_i, cand_d, n_cand, scheme, filled, known, stamp):
    """Fill v's empty slots from its ascending candidate list; returns the filled slot count.

    Pass 1 takes only RNG-conform candidates, pass 2 any. Each accepted candidate c gives v two
    edges: c itself and the neighbour n cut off from c (edge c-n becomes c-v and v-n).
    """
    neighbors, weights = graph.neighbors, graph.weights
    d = neighbors.shape[1]
    for p in range(2):
        for r in range(n_cand):
            if filled >= d:
                return filled
            c = cand_i[r]
            w_cv = cand_d[r]
            if not candidate_ok(neighbors, weights, v, c, w_cv, p == 0):
                continue
            j, d_vn = choose_cut(graph, v, c, w_cv, scheme, known, stamp)
            if j < 0:
                continue
            n = neighbors[c, j]
            change_edge(neighbors, weights, v, v, c, w_cv)
            change_edge(neighbors, weights, v, v, n, d_vn)
            change_edge(neighbors, weights, c, n, v, w_cv)
            change_edge(neighbors, weights, n, c, v, d_vn)
            filled += 2
    return filled


@jit
def connect_exhaustive(graph, v, scheme, filled, known, stamp):
    """Fallback when the searched candidates ran out: every connected vertex, nearest first.

    Vertices ``0..v-1`` are connected and have full rows; v has fewer than d edges and there are
    at least d+1 of them, so some non-adjacent c has a neighbour not adjacent to v: this always
    completes v. Rarely needed (duplicates, tiny graphs), so it may allocate.
    """
    vectors, metric = graph.vectors, graph.metric
    order, dists = nearest_first(vectors, metric, v)
    return connect_candidates(graph, v, order, dists, v, scheme, filled, known, stamp)


@jit
def nearest_first(vectors, metric, v):
    """Vertices ``0..v-1`` ordered by distance to v (ties by id), with their distances."""
    dists = np.empty(v, dtype=np.float32)
    for u in range(v):
        dists[u] = distance(metric, vectors[v], vectors[u])
    order = np.argsort(dists, kind="mergesort").astype(np.int32)
    return order, dists[order]


@jit
def connect_batch(graph, start, end, cand_i, cand_d, scheme, log, known, stamp):
    """Wire vertices ``start..end-1`` into the graph, candidates in ``cand_i/cand_d`` rows
    (row 0 is ``start``'s).

    Candidate rows are ascending and padded with -1; ``log`` (a ``DistanceLog``) holds each
    candidate search's exact distances (see ``search_block``): before v is wired they are
    spread into ``known`` (float32, at least ``end`` of them, one per vertex) and stamped with
    v in ``stamp`` (int64, as many, initially -1), so ``choose_cut`` finds them in O(1); the
    caller keeps both across the calls that wire one batch in steps. Returns -1 on success,
    else the vertex that could not be completed (cannot happen in a healthy graph; the caller
    raises). ``graph`` and ``log`` are plain tuples of the fields of ``Graph`` and
    ``DistanceLog``.
    """
    graph = Graph(*graph)
    neighbors = graph.neighbors
    log_i, log_d, log_n = DistanceLog(*log)
    d = neighbors.shape[1]
    for v in range(start, end):
        q = v - start
        for r in range(log_n[q]):
            known[log_i[q, r]] = log_d[q, r]
            stamp[log_i[q, r]] = v
        filled = connect_candidates(
            graph,
            v,
            cand_i[q],
            cand_d[q],
            found(cand_i, q),
            scheme,
            np.int64(0),
            known,
            stamp,
        )
        if filled < d:
            filled = connect_exhaustive(graph, v, scheme, filled, known, stamp)
        if filled < d:
            return v
    return -1


@jit
def stream_candidates(graph, v, cand_i, cand_d, n_cand, missing, n_missing, slots):
    """Link v to up to ``slots`` candidates, cutting each one's longest edge (scheme C).

    The cut-off neighbour is not linked to v; it is appended to ``missing`` (it now lacks an
    edge), and a candidate that already lacks one is linked to v directly. Returns
    ``(n_missing, slots)`` left (algorithm.md §5.5).
    """
    neighbors, weights = graph.neighbors, graph.weights
    d = neighbors.shape[1]
    for p in range(2):
        for r in range(n_cand):
            if slots == 0:
                return n_missing, slots
            c = cand_i[r]
            w_cv = cand_d[r]
            if not candidate_ok(neighbors, weights, v, c, w_cv, p == 0):
                continue
            if has_edge(neighbors, c, c):  # c was cut off earlier in this insertion
                change_edge(neighbors, weights, c, c, v, w_cv)
                change_edge(neighbors, weights, v, v, c, w_cv)
                slots -= 1
                continue
            best = -1
            for j in range(d):
                m = neighbors[c, j]
                if m == c or has_edge(neighbors, v, m) or has_edge(neighbors, m, m):
                    continue
                if best < 0 or weights[c, j] > weights[c, best]:
                    best = j
            if best < 0:
                continue
            n = neighbors[c, best]
            change_edge(neighbors, weights, c, n, v, w_cv)
            change_edge(neighbors, weights, v, v, c, w_cv)
            change_edge(neighbors, weights, n, c, n, np.float32(0.0))
            missing[n_missing] = n
            n_missing += 1
            slots -= 1
    return n_missing, slots


@jit
def connect_stream_batch(graph, start, end, cand_i, cand_d, opt, scr, log, owner, touched):
    """Streaming insertion of ``start..end-1`` (algorithm.md §5.5): d-1 links to candidates, then
    RESTORE_GRAPH pairs up v's last slot and the cut-off vertices. Returns -1 or the failed v.
    ``graph``, ``opt``, ``scr`` and ``log`` are plain tuples of the fields of ``Graph``,
    ``OptSpec``, ``OptScratch`` and ``EditLog`` (see ``state``)."""
    graph, opt, scr, log = Graph(*graph), OptSpec(*opt), OptScratch(*scr), EditLog(*log)
    vectors, neighbors, metric = graph.vectors, graph.neighbors, graph.metric
    d = neighbors.shape[1]
    missing = np.empty(2 * d + 2, dtype=np.int64)
    for v in range(start, end):
        q = v - start
        missing[0] = v
        n_missing, slots = stream_candidates(
            graph,
            v,
            cand_i[q],
            cand_d[q],
            found(cand_i, q),
            missing,
            np.int64(1),
            d - 1,
        )
        if slots > 0:  # candidates ran out: every connected vertex, nearest first
            order, dists = nearest_first(vectors, metric, v)
            n_missing, slots = stream_candidates(
                graph, v, order, dists, v, missing, n_missing, slots
            )
        if slots > 0:
            return v
        m = np.int64(0)
        for i in range(n_missing):
            if has_edge(neighbors, missing[i], missing[i]):
                missing[m] = missing[i]
                m += 1
        if (
            restore_graph(
                graph,
                missing,
                m,
                np.bool_(False),
                opt,
                scr,
                log,
                owner,
                touched,
            )
            != 0
        ):
            return v
    return -1
