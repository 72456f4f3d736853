"""The search's entry tree: a balanced random-projection tree over the leading coordinates.

A query descends the tree by the side of one hyperplane per level and enters the graph at a
few vertices of the leaf it reaches, which lie in its own region of the space. From there the
graph search needs fewer hops than from the nearest of ~1000 sampled pivots (Fashion-MNIST at
recall 0.95: ~162 distance computations, entries included, instead of ~177, and 13 hyperplane
tests instead of ~62 pivot distances); pynndescent seeds its search from such a tree too.

Layout: an implicit complete binary tree of depth D. Internal node ``i`` (``0 <= i < 2^D - 1``)
has children ``2i + 1`` (below its hyperplane) and ``2i + 2``. ``members`` lists the vertices
ordered so that every node covers a contiguous range of it: the root covers all, and a node
covering ``[lo, hi)`` gives ``[lo, mid)`` to its lower child and ``[mid, hi)`` to the upper one,
``mid = (lo + hi) // 2``. Splitting at the median keeps the tree balanced, so its size is known
in advance and a leaf holds between half and all of the leaf size.

Node ``i``'s hyperplane is ``(x_a - x_b) . y + offsets[i] = 0`` over the first ``width``
coordinates, where ``a = members[pairs[i, 0]]`` and ``b = members[pairs[i, 1]]`` are two of its
vertices. The upper levels also keep the difference itself, ``planes[i]`` for
``i < planes.shape[0]`` (a complete tree of its own): a few nodes that every query tests,
read from one contiguous row. Below them the descent reads the two vertices' rows: 8 bytes per
node instead of ``4 width`` (SIFT-small: 1.05 MB of hyperplanes next to 7.5 MB of vectors and
edges before), at ~35 ns per level while the rows are in cache (SIFT-small) and a memory
read's latency where they are not (Fashion-MNIST's deepest level). Naming the vertices by
their place in ``members`` makes them follow removals for free: ``members`` is renumbered
(``deg._entries.renumber``), and a removed vertex's place goes to a vertex of the same or the
neighbouring leaf, so a hyperplane below the stored ones tilts a little and the tree still
routes.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.values import f32

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


@jit  # lazy (one caller, ``_entries.draw``, fixes the types): compiled by ``deg.warmup``'s
#       first share instead of on import, beside the second process (2.4 s)
def grow(vectors, seed, members, pairs, planes, offsets):
    """Fill ``pairs``/``offsets`` (2^D - 1 rows) and ``planes`` (its first rows, width
    ``planes.shape[1]``) and order ``members`` (vertex ids below ``vectors.shape[0]``, any
    order on entry) into the tree's layout.

    Each node's hyperplane is the perpendicular bisector direction of two of its vertices
    chosen by a hash of ``(seed, node)``, placed at the median projection of its vertices, so
    the tree is a function of the seed, the member set and the vectors. Equal projections
    (duplicates, or two identical chosen vectors) still split by position: balanced whatever
    the data.
    """
    n_inner = pairs.shape[0]
    width = planes.shape[1]
    m = members.shape[0]
    lo_of = np.zeros(2 * n_inner + 1, np.int64)
    hi_of = np.zeros(2 * n_inner + 1, np.int64)
    hi_of[0] = m
    proj = np.empty(m, np.float32)
    spare = np.empty(m, np.int32)
    plane = np.empty(width, np.float32)
    for i in range(n_inner):  # parents before children: node order is breadth-first
        lo = lo_of[i]
        hi = hi_of[i]
        size = hi - lo
        h = mix(seed + GOLDEN * np.uint64(i + 1))
        ia = np.int64(h % np.uint64(size))
        a = members[lo + ia]
        b = members[lo + (ia + 1 + np.int64(mix(h) % np.uint64(size - 1))) % size]  # not ia
        pairs[i, 0] = a  # vertex ids until every place is known (below)
        pairs[i, 1] = b
        for j in range(width):
            plane[j] = f32(vectors[a, j]) - f32(vectors[b, j])
        if i < planes.shape[0]:  # a loop: ``planes[i] = plane`` compiles a shape check (2 s)
            for j in range(width):
                planes[i, j] = plane[j]
        for r in range(size):
            v = members[lo + r]
            acc = np.float32(0.0)
            for j in range(width):
                acc += f32(vectors[v, j]) * plane[j]
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
    place = np.empty(vectors.shape[0], np.int32)
    for r in range(m):
        place[members[r]] = r
    for i in range(n_inner):
        pairs[i, 0] = place[pairs[i, 0]]
        pairs[i, 1] = place[pairs[i, 1]]


@jit
def leaf_of(query, vectors, members, pairs, planes, offsets):
    """The range ``[lo, hi)`` of ``members`` in the leaf ``query`` descends to: at each node,
    the upper child when the query lies above the hyperplane."""
    width = planes.shape[1]
    node = 0
    lo = 0
    hi = members.shape[0]
    while node < pairs.shape[0]:
        acc = offsets[node]
        if node < planes.shape[0]:
            for j in range(width):
                acc += f32(query[j]) * planes[node, j]
        else:
            a = members[pairs[node, 0]]
            b = members[pairs[node, 1]]
            for j in range(width):
                acc += f32(query[j]) * (f32(vectors[a, j]) - f32(vectors[b, j]))
        mid = (lo + hi) // 2
        up = acc > 0
        lo = mid if up else lo
        hi = hi if up else mid
        node = 2 * node + 1 + up
    return lo, hi


@jit
def leaf_entries(queries, vectors, members, pairs, planes, offsets, out):
    """Row q of ``out`` (``ENTRIES`` columns): the first members of the leaf query q descends
    to, as ``search.search_block`` enters the graph (a leaf of fewer repeats its first)."""
    for q in range(queries.shape[0]):
        lo, hi = leaf_of(queries[q], vectors, members, pairs, planes, offsets)
        for e in range(out.shape[1]):
            out[q, e] = members[lo + e] if lo + e < hi else members[lo]


@jit
def chain_members(members, first, after):
    """Index the places of ``members`` by vertex for ``renumber_removal``: ``first[v]`` is a
    place holding v (-1: none; ``first`` covers every member id) and ``after[p]`` the next
    place holding the vertex at p (-1: none)."""
    for v in range(first.shape[0]):
        first[v] = -1
    for p in range(members.shape[0] - 1, -1, -1):
        v = members[p]
        after[p] = first[v]
        first[v] = p


@jit
def renumber_removal(members, first, after, vid, last, places):
    """The members after the removal of vertex ``vid``, the last vertex ``last`` taking its id
    (``deg._entries.renumber``), in place: ``last`` becomes ``vid``, and each place of ``vid``
    goes to the member before it (the first member left, for places before any). Visits only
    the places of ``vid`` and ``last`` (their chains, see ``chain_members``, kept up to date;
    ``places``: scratch of ``members``' size), not every member: a pass over a million
    members took ~1 ms of each removal's exclusive step. Returns False when no member is
    left (the chains are then of no use)."""
    m = 0
    if vid < first.shape[0]:
        p = first[vid]
        while p >= 0:
            places[m] = p
            m += 1
            p = after[p]
        first[vid] = -1
    mine = places[:m]
    mine.sort()  # ascending: each place then takes a member already final
    if last != vid and last < first.shape[0]:
        p = first[last]
        while p >= 0:
            members[p] = vid
            p = after[p]
        first[vid] = first[last]
        first[last] = -1
    lead = 0
    while lead < m and mine[lead] == lead:
        lead += 1
    if lead == members.shape[0]:
        return False
    for i in range(m):
        p = mine[i]
        v = members[lead] if i < lead else members[p - 1]
        members[p] = v
        after[p] = first[v]
        first[v] = p
    return True
