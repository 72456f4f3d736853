"""Binary heaps over parallel arrays ``(dist float32[], id int32[])``.

Ordering is lexicographic on ``(dist, id)`` (DEG_SPEC 3.1): equal distances pop the smaller id
first from the min-heap and the larger id first from the max-heap, which makes every search
deterministic. Each function takes the current size and returns the new size; the caller reads
the top at index 0 before popping. Explicit signatures: one compiled copy whatever the callers
pass (constants, int32 or int64 ids).
"""

from deg._kernels._jit import jit


@jit("boolean(float32, int64, float32, int64)")
def before(d1, i1, d2, i2):
    """``(d1, i1) < (d2, i2)`` lexicographically."""
    return d1 < d2 or (d1 == d2 and i1 < i2)


@jit("int64(float32[::1], int32[::1], int64, float32, int64)")
def min_push(hd, hi, size, dist, idx):
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if not before(dist, idx, hd[parent], hi[parent]):
            break
        hd[pos] = hd[parent]
        hi[pos] = hi[parent]
        pos = parent
    hd[pos] = dist
    hi[pos] = idx
    return size + 1


@jit("int64(float32[::1], int32[::1], int64)")
def min_pop(hd, hi, size):
    size -= 1
    dist = hd[size]
    idx = hi[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and before(hd[child + 1], hi[child + 1], hd[child], hi[child]):
            child += 1
        if not before(hd[child], hi[child], dist, idx):
            break
        hd[pos] = hd[child]
        hi[pos] = hi[child]
        pos = child
    if size > 0:
        hd[pos] = dist
        hi[pos] = idx
    return size


@jit("int64(float32[::1], int32[::1], int64, float32, int64)")
def max_push(hd, hi, size, dist, idx):
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if not before(hd[parent], hi[parent], dist, idx):
            break
        hd[pos] = hd[parent]
        hi[pos] = hi[parent]
        pos = parent
    hd[pos] = dist
    hi[pos] = idx
    return size + 1


@jit("int64(float32[::1], int32[::1], int64)")
def max_pop(hd, hi, size):
    size -= 1
    dist = hd[size]
    idx = hi[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and before(hd[child], hi[child], hd[child + 1], hi[child + 1]):
            child += 1
        if not before(dist, idx, hd[child], hi[child]):
            break
        hd[pos] = hd[child]
        hi[pos] = hi[child]
        pos = child
    if size > 0:
        hd[pos] = dist
        hi[pos] = idx
    return size


@jit("int64(float32[::1], int32[::1], int64, float32[::1], int32[::1])")
def max_drain_sorted(hd, hi, size, out_d, out_i):
    """Empty a max-heap into ``out_d/out_i`` in ascending ``(dist, id)`` order; returns size."""
    n = size
    while size > 0:
        out_d[size - 1] = hd[0]
        out_i[size - 1] = hi[0]
        size = max_pop(hd, hi, size)
    return n
