"""Distance kernels, selected by an integer metric code (no functions passed as arguments).

Code ``L2`` returns the squared Euclidean distance; code ``IP`` returns ``1 - <a, b>``; code
``COS`` (the cosine metric, on vectors the Python layer has normalised) returns half the squared
Euclidean distance, which for unit vectors is ``1 - <a, b>``: summed like L2, its partial sums
only grow, so a far vector's distance can be abandoned (an inner product's cannot), and it has
no cancellation for near-duplicates.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.values import f32

L2 = 0
IP = 1
COS = 2
# the one metric table: names to kernel codes (files store the code: never renumber)
METRIC_CODES = {"l2": L2, "ip": IP, "cosine": COS}


@jit
def l2sq(a, b):
    """Squared L2 distance of two vectors of equal length (any stored type, ``values.f32``)."""
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        t = f32(a[i]) - f32(b[i])
        acc += t * t
    return acc


@jit
def inner(a, b):
    """Inner product of two vectors (any stored type), float32 accumulator (vectorises)."""
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        acc += f32(a[i]) * f32(b[i])
    return acc


CHUNK = 128  # floats per partial sum of a distance: 512 bytes, eight cache lines
# The first partial sum is shorter: in a rotated index (deg._basis) the first 64 coordinates
# carry most of a distance, so a far vector is rejected after its first 256 bytes.
FIRST_CHUNK = 64


@jit("int64(int64, int64)")
def chunk_end(lo, n):
    """End of the partial sum that starts at ``lo`` (of ``n`` coordinates): every exact
    distance kernel sums in these chunks, so all of them agree to the last bit (the query
    search's ``distance_rows_by_four`` alone may not). Vectors of at most CHUNK coordinates
    are one chunk (SIFT 128-D: two chunks of 64 were 7% slower)."""
    if lo == 0 and n > CHUNK:
        return FIRST_CHUNK
    return min(lo + CHUNK - lo % CHUNK, n)


@jit("float32(float32, float32)")
def half_past(acc, bound):
    """COS from a squared L2 sum ``acc`` bounded by ``2 * bound``: half of it, and for a sum
    abandoned past ``2 * bound`` a value still past ``bound`` (halving a subnormal sum can round
    it down to ``bound``, e.g. to 0 when the radius is 0)."""
    half = np.float32(0.5) * acc
    if acc > np.float32(2.0) * bound and half <= bound:
        return np.nextafter(bound, np.float32(np.inf))
    return half


@jit
def distance_rows(metric, query, vectors, ids, count, bound, lead, out):
    """``distance(metric, query, vectors[ids[r]])`` into ``out[r]`` for ``r < count``.

    The rows advance together, one chunk of each in turn, so the memory reads of several rows
    are in flight at once rather than one row's after another's (Fashion-MNIST search: +13-20%
    QPS over evaluating the rows one by one). Each row's sum is the same sequence of chunk sums
    as ``distance`` (the same bits). L2 and COS rows are no longer read once they pass
    ``bound`` (``out[r] > bound``); inner products are always complete.

    ``lead < 1`` (query search in a rotated index, whose first chunk holds the leading
    directions): an L2 or COS row of several chunks whose first chunk alone passes
    ``lead * bound`` is rejected there (``out[r] = inf``), as its whole distance most likely
    passes ``bound``. Heuristic, not exact: a row within ``bound`` can be lost, so it trades
    like ``eps``; 1 = exact.

    Every loop is in this body, none in a called function: a call taking arrays would make
    numba count references to them on each of the search's calls (with the search entry's
    row views at the time, 10% of a SIFT-small search).
    """
    n = query.shape[0]
    bound, lead = np.float32(bound), np.float32(lead)  # float32 whatever the caller passed
    for r in range(count):
        out[r] = 0.0
    # COS is half the squared L2 distance of unit vectors: sum L2 against twice the bound
    sq_bound = np.float32(2.0) * bound if metric == COS else bound
    lo = 0
    live = count
    while lo < n and live > 0:
        hi = chunk_end(lo, n)
        q = query[lo:hi]
        if metric == IP:
            for r in range(count):
                out[r] += inner(q, vectors[ids[r]][lo:hi])
        else:
            # past this after the first of several chunks, a row is dropped unread (lead < 1)
            cut = lead * sq_bound if lo == 0 and hi < n and lead < 1 else np.float32(np.inf)
            live = 0
            for r in range(count):
                if out[r] <= sq_bound:
                    out[r] += l2sq(q, vectors[ids[r]][lo:hi])
                    live += 1
                    if out[r] > cut:
                        out[r] = np.inf
        lo = hi
    for r in range(count):
        if metric == IP:
            out[r] = np.float32(1.0) - out[r]
        elif metric == COS:
            out[r] = half_past(out[r], bound)


@jit
def distance_rows_by_four(metric, query, vectors, ids, count, bound, out):
    """``distance_rows`` of an L2 or COS query whose rows are one chunk (dim <= ``CHUNK``),
    four rows summed in one pass: each query coordinate is loaded once for four rows instead
    of once per row (a search over in-cache rows waits on its loads: SIFT-small search 2-14%
    faster). Query search and exploration only: the vectoriser orders a four-row sum otherwise
    than ``distance``'s, so a value may differ from it in the last bits (about 1 in 10 on
    SIFT), where construction's distances become edge weights that must equal ``distance``.
    Rows of one chunk are read whole whatever ``bound``, as ``distance_rows`` reads them.
    """
    n = query.shape[0]
    bound = np.float32(bound)
    r = 0
    while r + 4 <= count:
        a = vectors[ids[r]]
        b = vectors[ids[r + 1]]
        c = vectors[ids[r + 2]]
        d = vectors[ids[r + 3]]
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        s3 = np.float32(0.0)
        for j in range(n):
            x = f32(query[j])
            t0 = x - f32(a[j])
            t1 = x - f32(b[j])
            t2 = x - f32(c[j])
            t3 = x - f32(d[j])
            s0 += t0 * t0
            s1 += t1 * t1
            s2 += t2 * t2
            s3 += t3 * t3
        out[r] = s0
        out[r + 1] = s1
        out[r + 2] = s2
        out[r + 3] = s3
        r += 4
    while r < count:
        out[r] = l2sq(query, vectors[ids[r]])
        r += 1
    if metric == COS:
        for r in range(count):
            out[r] = half_past(out[r], bound)


@jit
def distance_within(metric, a, b, bound):
    """``distance(metric, a, b)``, or for L2 and COS a value > ``bound`` as soon as a partial
    sum shows the distance exceeds it (inner products are always complete).

    Partial sums of squares only grow, so a candidate whose first chunks already pass the
    search's radius is rejected without reading the rest of its vector (fewer cache lines
    from memory). One exit and no break: either would keep numba's reference counting of
    ``a`` and ``b`` in every call (see ``graph``). A negative bound returns 0 unread.
    """
    n = a.shape[0]
    bound = np.float32(bound)
    # COS is half the squared L2 distance of unit vectors: sum L2 against twice the bound
    sq_bound = np.float32(2.0) * bound if metric == COS else bound
    acc = np.float32(0.0)
    lo = 0
    while lo < n and (metric == IP or acc <= sq_bound):  # not a break: see above
        hi = chunk_end(lo, n)
        if metric == IP:
            acc += inner(a[lo:hi], b[lo:hi])
        else:
            acc += l2sq(a[lo:hi], b[lo:hi])  # slices keep the inner loop vectorised
        lo = hi
    if metric == IP:
        acc = np.float32(1.0) - acc
    elif metric == COS:
        acc = half_past(acc, bound)
    return acc


@jit
def distance(metric, a, b):
    """Distance of ``a`` and ``b`` under ``metric`` (``L2``, ``IP`` or ``COS``), as float32.

    All distances are summed chunk by chunk (``chunk_end``), so ``distance_within`` and
    ``distance_rows`` agree with it to the last bit."""
    return distance_within(metric, a, b, np.float32(np.inf))


@jit("int64(float32[:, ::1], float32[:, ::1])")
def unit_rows(x, out):
    """``out[i] = x[i] / |x[i]|`` (the cosine metric's vectors and queries), the norm summed
    in float64; returns the first row of norm 0 (left unwritten, as are those after it), or -1.
    One pass in a kernel where numpy's einsum, division and cast cost ~25 us per call of 100
    SIFT queries (4% of the search). Stored vectors and queries both come through here, so a
    stored vector given as a query is at distance 0."""
    for i in range(x.shape[0]):
        sq = 0.0
        for j in range(x.shape[1]):
            sq += np.float64(x[i, j]) * np.float64(x[i, j])
        if sq == 0.0:
            return i
        norm = np.sqrt(sq)
        for j in range(x.shape[1]):
            out[i, j] = np.float32(np.float64(x[i, j]) / norm)
    return -1


@jit("boolean(float32[:, ::1], float32)")
def all_within(x, limit):
    """Is every value of ``x`` within ``[-limit, limit]`` (False for NaN)? Input validation's
    quick pass: 0.3 us for one query where numpy's ``abs``/``max`` cost 1.5-2.2 us."""
    ok = True
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = x[i, j]
            ok &= (v <= limit) & (v >= -limit)
    return ok


@jit("boolean(float32[:, ::1], float32, float32)")
def all_integers_in(x, lo, hi):
    """Is every value of ``x`` an integer within ``[lo, hi]`` (False for NaN)? The quick pass
    of an integer index's input check (``deg._dtypes``), as ``all_within`` is of finiteness:
    numpy's comparisons and rounding cost ~3.7 us for one 128-D query."""
    ok = True
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = x[i, j]
            ok &= (v >= lo) & (v <= hi) & (v == np.floor(v))
    return ok


@jit
def edge_distances(vectors, neighbors, metric, n):
    """Recompute the distance of every stored edge slot of vertices ``0..n-1``.

    Returns float32 ``(n, d)``; used by the analysis to check that weights are exact.
    """
    d = neighbors.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for u in range(n):
        for j in range(d):
            v = neighbors[u, j]
            out[u, j] = np.float32(0.0) if v == u else distance(metric, vectors[u], vectors[v])
    return out
