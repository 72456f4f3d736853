"""Edge primitives on the neighbour rows (algorithm.md §1.2, 5.3).

These leaves carry explicit signatures: callers pass ids as int32 or int64 and constants, and
without a fixed signature numba would compile a copy for every such combination.

Row ``u`` of ``neighbors`` lists u's d neighbours, ``weights[u]`` their distances in the same
order. A slot holding ``u`` itself is an empty slot ("self-loop", weight 0). The order within a
row is the search view's (``view.py``) once refreshed: the primitives below work on any order,
and an edit keeps its slot, so a row changes order only when the view reorders it.

Each has one exit and reads its arrays unconditionally where it can: numba counts references
to an array a kernel receives, and its pruning pass removes that count only from simple
control flow; an early return or a conditional read after a loop left two or three atomic
updates in every call (16% of a SIFT-small build).
"""

from deg._kernels._jit import jit


@jit("int64(int32[:, ::1], int64, int64)")
def find_slot(neighbors, u, x):
    """First slot of ``x`` in row ``u``, or -1. A scan of the whole row without a branch (a
    minimum over the matching slots), which the compiler turns into a few vector compares."""
    d = neighbors.shape[1]
    first = d
    for j in range(d):
        first = min(first, j if neighbors[u, j] == x else d)
    return first if first < d else -1


@jit("boolean(int32[:, ::1], int64, int64)")
def has_edge(neighbors, u, x):
    return find_slot(neighbors, u, x) >= 0


@jit("boolean(int32[:, ::1], float32[:, ::1], int64, int64, int64, float32)")
def change_edge(neighbors, weights, u, old, new, w):
    """Replace ``old`` by ``new`` (weight ``w``) in row ``u``, in ``old``'s slot.

    Only row ``u`` changes; callers make the matching call on the other endpoint. Returns
    False (and changes nothing) when ``old`` is not in the row.
    """
    j = find_slot(neighbors, u, old)
    found = j >= 0
    j = max(j, 0)
    keep_id = neighbors[u, j]
    keep_w = weights[u, j]
    neighbors[u, j] = new if found else keep_id
    weights[u, j] = w if found else keep_w
    return found


@jit("boolean(int32[:, ::1], float32[:, ::1], int64, int64, float32)")
def rng_check(neighbors, weights, c, v, w_cv):
    """Is edge c-v conform to the relative neighbourhood graph, given the current graph?

    False when a common neighbour m of c and v is closer to both than they are to each other
    (strict >, algorithm.md §5.3). Absence is tested by slot search, not by a -1 weight, so negative
    inner-product weights are handled (the reference's -1 sentinel is not copied).
    """
    conform = True
    j = 0
    while conform and j < neighbors.shape[1]:
        m = neighbors[c, j]
        s = find_slot(neighbors, v, m) if m != c and m != v else -1
        w_mv = weights[v, max(s, 0)]
        w_cm = weights[c, j]
        conform = s < 0 or w_cv <= (w_cm if w_cm > w_mv else w_mv)
        j += 1
    return conform
