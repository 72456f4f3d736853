"""The search view: each vertex's edges in the order a pruned search should follow them.

Each row of ``neighbors`` (and ``weights`` with it) is kept in this order: first the edges
that survive a relative neighbourhood test among u's own neighbours (shortest first; an edge
u-v is dropped when an already kept neighbour a is closer to v than u is: d(a, v) < d(u, v)),
then the others by weight, empty slots last. ``search(max_degree=m)`` follows the first m
slots. The test is the one HNSW and pynndescent use to diversify neighbour lists; here it
orders edges instead of deleting them, so the graph stays d-regular and the full graph is
still searched when m = d. Keeping the order in the rows themselves costs no memory (a
separate permutation was d bytes per vertex, 4% of SIFT-small's index) and no extra read per
expanded vertex.

Edits (construction, removal, optimisation) write into the slot of the edge they replace, so
a row leaves this order while the graph changes and is put back lazily: ``sig[u]`` is a hash
of row u as it was last ordered, and after any edit only the rows whose hash changed are
reordered. Reordering a row in order again leaves it as it is (ties keep their order).

A row's order depends on the vectors behind its ids as well as on the ids, and ids are
reused (a removal moves the last vertex into the freed id, an add takes the ids after the
last). So the hash covers, besides the ids, each id's *generation* ``gen[v]``: a number the
index gives an id whenever a new vector takes it, never the same twice for one id. A row
that changes and comes back to the same ids then still hashes as it did only if the same
vectors stand behind them, in which case it is in order. With every generation 0 (a loaded
index) the hash is that of the ids alone, which is what files store (``plain_signatures``).
The hash is 32 bits: one changed row in ~4e9 may keep an older order until it changes again
(a question of speed for a ``max_degree`` search, never of correctness).

When rows are put back (``deg._view.SearchView``: at once after a change to 1/8 of the graph,
else at the first search or explore with ``max_degree < d``, save or pickling), a
whole-graph search and later edits see them in the order the edits left. That order decides
which fresh neighbours a search evaluates first and the construction's ties, so results stay
a function of the sequence of calls (any thread count, any machine), but a pruned search
between two small adds can change the second add's graph slightly.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.distances import distance
from deg._kernels.state import Graph

EMPTY_SIG = np.uint32(0)  # never produced by row_signature (see below)


@jit("uint32(int32[:, ::1], uint32[::1], int64)")
def row_signature(neighbors, gen, u):
    """FNV-1a hash of row u's neighbour ids, each mixed with its generation (and u's own
    generation first), forced odd so it never equals ``EMPTY_SIG``. A generation of 0 mixes in
    nothing: with all of them 0 this is the hash of the ids alone."""
    golden = np.uint32(0x9E3779B1)
    h = np.uint32(2166136261) ^ (gen[u] * golden)
    for j in range(neighbors.shape[1]):
        v = neighbors[u, j]
        h = (h ^ (np.uint32(v) ^ (gen[v] * golden))) * np.uint32(16777619)
    return h | np.uint32(1)


@jit
def order_row(graph, u, by_weight, kept, out):
    """Write row u's search order into ``out`` (int32, length d).

    ``by_weight`` and ``kept`` are int64 scratch of length d. Empty slots (u itself) go last.
    """
    vectors, neighbors, weights, metric = graph
    d = neighbors.shape[1]
    n_full = 0
    for j in range(d):  # insertion sort of the real edges by (weight, slot)
        if neighbors[u, j] == u:
            continue
        w = weights[u, j]
        i = n_full
        while i > 0 and weights[u, by_weight[i - 1]] > w:
            by_weight[i] = by_weight[i - 1]
            i -= 1
        by_weight[i] = j
        n_full += 1
    n_kept = 0
    n_out = 0
    for r in range(n_full):  # the diversified edges, in weight order
        j = by_weight[r]
        v = neighbors[u, j]
        w_uv = weights[u, j]
        occluded = False
        for i in range(n_kept):
            a = neighbors[u, kept[i]]
            if distance(metric, vectors[a], vectors[v]) < w_uv:
                occluded = True
                break
        if occluded:
            by_weight[r] = -1 - j  # remember it for the second pass
        else:
            kept[n_kept] = j
            n_kept += 1
            out[n_out] = j
            n_out += 1
    for r in range(n_full):  # the occluded ones, still in weight order
        if by_weight[r] < 0:
            out[n_out] = -1 - by_weight[r]
            n_out += 1
    for j in range(d):
        if neighbors[u, j] == u:
            out[n_out] = j
            n_out += 1


@jit
def refresh_view(graph, lo, hi, sig, gen):
    """Put every row among ``lo..hi-1`` whose signature changed back in search order; returns
    the rows reordered. Serial: callers split the rows over Python threads (a parallel loop
    here cost two seconds of compile time)."""
    graph = Graph(*graph)
    neighbors, weights = graph.neighbors, graph.weights
    d = neighbors.shape[1]
    by_weight = np.empty(d, dtype=np.int64)
    kept = np.empty(d, dtype=np.int64)
    order = np.empty(d, dtype=np.int32)
    row_i = np.empty(d, dtype=np.int32)
    row_w = np.empty(d, dtype=np.float32)
    count = 0
    for u in range(lo, hi):
        if row_signature(neighbors, gen, u) != sig[u]:
            order_row(graph, u, by_weight, kept, order)
            put_in_order(neighbors, weights, u, order, row_i, row_w)
            sig[u] = row_signature(neighbors, gen, u)
            count += 1
    return count


@jit
def put_in_order(neighbors, weights, u, order, row_i, row_w):
    """Rewrite row u (ids and weights) in the slot order ``order`` (``order_row``'s);
    ``row_i``/``row_w`` (length d) are scratch."""
    d = neighbors.shape[1]
    for j in range(d):
        row_i[j] = neighbors[u, order[j]]
        row_w[j] = weights[u, order[j]]
    for j in range(d):
        neighbors[u, j] = row_i[j]
        weights[u, j] = row_w[j]


@jit
def order_listed(graph, rows, orders):
    """``order_row`` of each row listed in ``rows`` (int64) into ``orders`` (int32, (>= its
    length, d)). It only reads: a writer computes the orders beside searches, then applies
    them in a short exclusive step (``take_orders``)."""
    graph = Graph(*graph)
    d = graph.neighbors.shape[1]
    by_weight = np.empty(d, dtype=np.int64)
    kept = np.empty(d, dtype=np.int64)
    for i in range(rows.shape[0]):
        order_row(graph, rows[i], by_weight, kept, orders[i])


@jit
def take_orders(neighbors, weights, rows, orders, sig, gen):
    """Put each row listed in ``rows`` in the order ``order_listed`` computed for it, unchanged
    since, and sign it."""
    d = neighbors.shape[1]
    row_i = np.empty(d, dtype=np.int32)
    row_w = np.empty(d, dtype=np.float32)
    for i in range(rows.shape[0]):
        u = rows[i]
        put_in_order(neighbors, weights, u, orders[i], row_i, row_w)
        sig[u] = row_signature(neighbors, gen, u)


@jit
def misordered(graph, n, sig, gen):
    """The first row of ``0..n-1`` that its signature claims to be in search order but is not,
    or -1 (a check that trusts no signature; rows changed since their last ordering, whose
    signature no longer matches, are due to be reordered and do not count)."""
    graph = Graph(*graph)
    neighbors = graph.neighbors
    d = neighbors.shape[1]
    by_weight = np.empty(d, dtype=np.int64)
    kept = np.empty(d, dtype=np.int64)
    order = np.empty(d, dtype=np.int32)
    for u in range(n):
        if row_signature(neighbors, gen, u) != sig[u]:
            continue
        order_row(graph, u, by_weight, kept, order)
        for j in range(d):
            if order[j] != j:
                return u
    return -1


@jit
def pending(neighbors, n, sig, gen):
    """How many rows of ``0..n-1`` changed since their last ordering (due to be reordered)."""
    count = 0
    for u in range(n):
        count += row_signature(neighbors, gen, u) != sig[u]
    return count


@jit
def pending_rows(neighbors, n, sig, gen, out):
    """The rows of ``0..n-1`` whose signature is not ``sig``'s, into ``out`` (int64, length
    >= n); returns how many."""
    count = 0
    for u in range(n):
        if row_signature(neighbors, gen, u) != sig[u]:
            out[count] = u
            count += 1
    return count


@jit
def plain_signatures(neighbors, n, sig, gen, out):
    """The signatures a file stores: for each row of ``0..n-1`` in order (``sig`` matches),
    its hash with every generation 0, which a loaded index (generations 0) recomputes;
    ``EMPTY_SIG`` for a row due to be reordered."""
    zero = np.zeros(neighbors.shape[0], dtype=np.uint32)
    for u in range(n):
        if row_signature(neighbors, gen, u) == sig[u]:
            out[u] = row_signature(neighbors, zero, u)
        else:
            out[u] = EMPTY_SIG


@jit
def sign_rows(neighbors, n, sig):
    """Mark rows ``0..n-1`` as in search order, with every generation 0 (rows loaded from a
    file that keeps them so)."""
    zero = np.zeros(neighbors.shape[0], dtype=np.uint32)
    for u in range(n):
        sig[u] = row_signature(neighbors, zero, u)
