"""Edge primitives on the sorted neighbour rows (DEG_SPEC 1.2, 5.3).

These leaves carry explicit signatures: callers pass ids as int32 or int64 and constants, and
without a fixed signature numba would compile a copy for every such combination.

Row ``u`` of ``neighbors`` lists u's d neighbours ascending, ``weights[u]`` their distances in
the same order. A slot holding ``u`` itself is an empty slot ("self-loop", weight 0).
"""

from deg._kernels._jit import jit


@jit("int64(int32[:, ::1], int64, int64)")
def find_slot(neighbors, u, x):
    """Slot of ``x`` in row ``u`` (binary search), or -1."""
    lo = 0
    hi = neighbors.shape[1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if neighbors[u, mid] < x:
            lo = mid + 1
        else:
            hi = mid
    if lo < neighbors.shape[1] and neighbors[u, lo] == x:
        return lo
    return -1


@jit("boolean(int32[:, ::1], int64, int64)")
def has_edge(neighbors, u, x):
    return find_slot(neighbors, u, x) >= 0


@jit("boolean(int32[:, ::1], float32[:, ::1], int64, int64, int64, float32)")
def change_edge(neighbors, weights, u, old, new, w):
    """Replace ``old`` by ``new`` (weight ``w``) in row ``u``, keeping the row sorted.

    Only row ``u`` changes; callers make the matching call on the other endpoint. Returns
    False (and changes nothing) when ``old`` is not in the row.
    """
    j = find_slot(neighbors, u, old)
    if j < 0:
        return False
    d = neighbors.shape[1]
    if new > old:
        while j + 1 < d and neighbors[u, j + 1] < new:
            neighbors[u, j] = neighbors[u, j + 1]
            weights[u, j] = weights[u, j + 1]
            j += 1
    else:
        while j > 0 and neighbors[u, j - 1] > new:
            neighbors[u, j] = neighbors[u, j - 1]
            weights[u, j] = weights[u, j - 1]
            j -= 1
    neighbors[u, j] = new
    weights[u, j] = w
    return True


@jit("boolean(int32[:, ::1], float32[:, ::1], int64, int64, float32)")
def rng_check(neighbors, weights, c, v, w_cv):
    """Is edge c-v conform to the relative neighbourhood graph, given the current graph?

    False when a common neighbour m of c and v is closer to both than they are to each other
    (strict >, DEG_SPEC 5.3). Absence is tested by slot search, not by a -1 weight, so negative
    inner-product weights are handled (the reference's -1 sentinel is not copied).
    """
    for j in range(neighbors.shape[1]):
        m = neighbors[c, j]
        if m == c or m == v:
            continue
        s = find_slot(neighbors, v, m)
        if s >= 0:
            w_mv = weights[v, s]
            w_cm = weights[c, j]
            if w_cv > (w_cm if w_cm > w_mv else w_mv):
                return False
    return True
