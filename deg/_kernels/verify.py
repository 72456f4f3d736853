"""Checks of a graph that comes from outside (a file, a pickle): what a checksum cannot vouch for.

A file written by a buggy or foreign writer, or edited with its checksum fixed, must not reach
the other kernels: they trust that ids are in range and rows hold no vertex twice (removal
sizes its arrays by d), and the repair after a removal needs an undirected, connected graph
whose weights are the distances of its vectors. Each check returns the first fault it finds
as ``(code, row, slot)`` so that the loader can say where the file is wrong.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.distances import COS, IP, distance
from deg._kernels.graph import find_slot
from deg._kernels.heap import float_bits
from deg._kernels.state import Graph
from deg._kernels.values import f32

OK = 0
OUT_OF_RANGE = 1  # a neighbour id outside 0..n-1
REPEATED = 2  # a row lists another vertex twice
EMPTY_SLOTS = 3  # a row has not max(0, d - (n - 1)) empty slots (slots holding the row's own id)
EMPTY_WEIGHT = 4  # an empty slot whose weight is not 0
ASYMMETRIC = 5  # u lists v but v does not list u
UNEQUAL = 6  # u-v and v-u carry different weights
NOT_FINITE = 7  # a vector coordinate is NaN or infinite
TOO_LONG = 8  # a vector's squared norm passes the bound that add enforces
NOT_UNIT = 9  # a cosine index's vector is not of unit length
WRONG_WEIGHT = 10  # a weight is not the distance of its two vectors
WEIGHT_NOT_FINITE = 11  # a weight is NaN or infinite
# Stored weights are the kernels' own distances of the stored vectors, equal bit for bit on
# the machine that wrote them; another CPU may sum them in another order. L2 and cosine
# distances are sums of squares, so two orders differ relative to the distance itself (by
# ~sqrt(dim) * 6e-8 in practice, 2e-6 at dim 1000); "ip" ones (1 - <a, b>) relative to
# |a| |b|. 1e-5 leaves room for that and refuses any wrong metric, row or weight beyond it.
RELATIVE = 1e-5
ABSOLUTE = 1e-5  # of |a| |b| ("ip" only)
FLOAT32_MAX = np.float32(3.4028235e38)
UNIT = 1e-3  # allowed |norm^2 - 1| of a cosine index's (normalised, maybe rotated) vectors
# float16 ones: each coordinate rounded by up to 2**-11 of itself moves norm^2 by up to
# ~2**-10 (9.8e-4) when all round one way; four times that leaves room for rotated rows
UNIT_HALF = 4e-3


@jit
def edge_mix(u, v, w, key):
    """A 64-bit hash of the directed edge (u, v) with the bits of its weight ``w``, keyed."""
    z = (
        (np.uint64(u) << np.uint64(32))
        ^ np.uint64(v)
        ^ (float_bits(w) * np.uint64(0x9E3779B97F4A7C15))
    )
    z = (z ^ key) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit
def structure_fault(neighbors, weights, n, seen, key):
    """Ids in range, finite weights, no repeats, the right number of empty slots (weight 0),
    every edge present at both ends with one weight. ``seen`` is int64 scratch of length >= n;
    ``key`` a random uint64.

    Symmetry is checked in one sequential pass: the keyed hashes of all edges (u, v, w) and
    of their reverses (v, u, w) sum to the same value when every edge has its twin; only when
    they do not does a scan of each edge's other end (a random row read per edge: 0.2 s on
    Fashion-MNIST) find the first one that has none. A file made to pass the sums would need
    the key, drawn anew for each load."""
    d = neighbors.shape[1]
    empty = max(0, d - (n - 1))
    for u in range(n):
        seen[u] = -1
    forward = np.uint64(0)
    backward = np.uint64(0)
    for u in range(n):
        n_empty = 0
        for j in range(d):
            v = neighbors[u, j]
            if v < 0 or v >= n:
                return OUT_OF_RANGE, u, j
            w = weights[u, j]
            if not abs(w) <= FLOAT32_MAX:  # NaN fails too; a compare, not a call
                return WEIGHT_NOT_FINITE, u, j
            if v == u:
                n_empty += 1
                if w != 0:
                    return EMPTY_WEIGHT, u, j
            elif seen[v] == u:
                return REPEATED, u, j
            else:
                seen[v] = u
                forward += edge_mix(u, v, w, key)
                backward += edge_mix(v, u, w, key)
        if n_empty != empty:
            return EMPTY_SLOTS, u, n_empty
    if forward == backward:
        return OK, -1, -1
    for u in range(n):  # every id is in range now
        for j in range(d):
            v = neighbors[u, j]
            if v != u:
                s = find_slot(neighbors, v, u)
                if s < 0:
                    return ASYMMETRIC, u, j
                if weights[v, s] != weights[u, j]:
                    return UNEQUAL, u, j
    return ASYMMETRIC, -1, -1  # the sums differ, yet every edge has its twin: cannot happen


@jit
def reached(neighbors, n, queue):
    """How many vertices a breadth-first search from vertex 0 reaches (``queue``: int64 of
    length >= n; the ids must be in range)."""
    if n == 0:
        return 0
    seen = np.zeros(n, dtype=np.bool_)
    seen[0] = True
    queue[0] = 0
    head, tail = 0, 1
    while head < tail:
        u = queue[head]
        head += 1
        for j in range(neighbors.shape[1]):
            v = neighbors[u, j]
            if not seen[v]:
                seen[v] = True
                queue[tail] = v
                tail += 1
    return tail


@jit
def vector_fault(vectors, metric, lo, hi, max_sq_norm, norms, unit):
    """Rows ``lo..hi-1`` finite, within add's norm bound (for ``COS`` of unit length, within
    ``unit`` in the squared norm); writes each row's norm into ``norms``."""
    for u in range(lo, hi):
        sq = 0.0
        for i in range(vectors.shape[1]):
            x = f32(vectors[u, i])  # half bits of inf/NaN never reach here (the loader)
            if not np.isfinite(x):
                return NOT_FINITE, u, i
            sq += np.float64(x) * np.float64(x)
        if metric == COS and abs(sq - 1.0) > unit:
            return NOT_UNIT, u, -1
        if sq > max_sq_norm:
            return TOO_LONG, u, -1
        norms[u] = np.sqrt(sq)
    return OK, -1, -1


@jit
def weight_fault(graph, lo, hi, norms):
    """Each edge u-v with u in ``lo..hi-1`` and u < v (the other end holds the same weight:
    ``structure_fault``) carries the distance of its vectors, within float32 rounding."""
    graph = Graph(*graph)
    vectors, neighbors, weights, metric = graph
    for u in range(lo, hi):
        for j in range(neighbors.shape[1]):
            v = neighbors[u, j]
            if v > u:
                w = np.float64(weights[u, j])
                exact = np.float64(distance(metric, vectors[u], vectors[v]))
                scale = norms[u] * norms[v] if metric == IP else 0.0
                if not abs(w - exact) <= RELATIVE * abs(exact) + ABSOLUTE * scale + 1e-30:
                    return WRONG_WEIGHT, u, j
    return OK, -1, -1
