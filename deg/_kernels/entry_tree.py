"""The search's entry tree: a balanced random-projection tree over the leading coordinates.

A query descends the tree by the side of one hyperplane per level and enters the graph at a
few vertices of the leaf it reaches, which lie in its own region of the space. From there the
graph search needs fewer hops than from the nearest of ~1000 sampled pivots (Fashion-MNIST at
recall 0.95: ~162 distance computations, entries included, instead of ~177, and 13 hyperplane
tests instead of ~62 pivot distances); pynndescent seeds its search from such a tree too.

Layout: an implicit complete binary tree of depth D. Internal node ``i`` (``0 <= i < 2^D - 1``)
has children ``2i + 1`` (below its hyperplane) and ``2i + 2``; its hyperplane is
``planes[i] . x + offsets[i] = 0`` over the first ``planes.shape[1]`` coordinates. ``members``
lists the vertices ordered so that every node covers a contiguous range of it: the root covers
all, and a node covering ``[lo, hi)`` gives ``[lo, mid)`` to its lower child and ``[mid, hi)``
to the upper one, ``mid = (lo + hi) // 2``. Splitting at the median keeps the tree balanced,
so its size is known in advance and a leaf holds between half and all of the leaf size.
"""

import numpy as np

from deg._kernels._jit import jit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# a query enters at this many members of its leaf (leaves hold 4 to 8, ``deg._entries``): each
# entry's whole vector is read, as no radius bounds it yet, and on Fashion-MNIST 4 entries
# searched as fast as the deeper tree whose leaves hold 4, with half its hyperplanes
ENTRIES = 4


@jit("uint64(uint64)")
def mix(z):
    """splitmix64's output function: a well-spread 64-bit hash of ``z``."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit("void(float32[:, ::1], uint64, int32[::1], float32[:, ::1], float32[::1])")
def grow(vectors, seed, members, planes, offsets):
    """Fill ``planes``/``offsets`` (2^D - 1 rows) and order ``members`` (vertex ids, any order
    on entry) into the tree's layout.

    Each node's hyperplane is the perpendicular bisector direction of two of its vertices
    chosen by a hash of ``(seed, node)``, placed at the median projection of its vertices, so
    the tree is a function of the seed, the member set and the vectors. Equal projections
    (duplicates, or two identical chosen vectors) still split by position: balanced whatever
    the data.
    """
    width = planes.shape[1]
    n_inner = planes.shape[0]
    m = members.shape[0]
    lo_of = np.zeros(2 * n_inner + 1, np.int64)
    hi_of = np.zeros(2 * n_inner + 1, np.int64)
    hi_of[0] = m
    proj = np.empty(m, np.float32)
    spare = np.empty(m, np.int32)
    for i in range(n_inner):  # parents before children: node order is breadth-first
        lo = lo_of[i]
        hi = hi_of[i]
        size = hi - lo
        h = mix(seed + GOLDEN * np.uint64(i + 1))
        ia = np.int64(h % np.uint64(size))
        a = members[lo + ia]
        b = members[lo + (ia + 1 + np.int64(mix(h) % np.uint64(size - 1))) % size]  # not ia
        for j in range(width):
            planes[i, j] = vectors[a, j] - vectors[b, j]
        for r in range(size):
            v = members[lo + r]
            acc = np.float32(0.0)
            for j in range(width):
                acc += vectors[v, j] * planes[i, j]
            proj[r] = acc
        order = np.argsort(proj[:size], kind="mergesort")  # stable: ties keep their order
        for r in range(size):
            spare[r] = members[lo + order[r]]
        for r in range(size):
            members[lo + r] = spare[r]
        half = size // 2
        offsets[i] = -np.float32(0.5) * (proj[order[half - 1]] + proj[order[half]])
        lo_of[2 * i + 1] = lo
        hi_of[2 * i + 1] = lo + half
        lo_of[2 * i + 2] = lo + half
        hi_of[2 * i + 2] = hi


@jit("UniTuple(int64, 2)(float32[::1], float32[:, ::1], float32[::1], int64)")
def leaf_of(query, planes, offsets, m):
    """The range ``[lo, hi)`` of ``members`` (``m`` of them) in the leaf ``query`` descends
    to: at each node, the upper child when the query lies above the hyperplane."""
    width = planes.shape[1]
    node = 0
    lo = 0
    hi = m
    while node < planes.shape[0]:
        acc = offsets[node]
        for j in range(width):
            acc += query[j] * planes[node, j]
        mid = (lo + hi) // 2
        up = acc > 0
        lo = mid if up else lo
        hi = hi if up else mid
        node = 2 * node + 1 + up
    return lo, hi
