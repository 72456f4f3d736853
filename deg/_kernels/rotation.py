"""The rotation into the index's stored basis (see ``deg._basis``).

The basis is ``Q = I - Y T Y^T``, a product of r Householder reflections: ``yt`` holds the
reflection vectors as rows (r, dim) and ``tt`` the lower-triangular ``T^T`` (r, r). A vector
``x`` is stored as ``Q^T x = x - Y (T^T (Y^T x))``: about 2*r*dim multiply-adds, rather than
the dim*dim of a general rotation. With r = 0 the basis is the input one.
"""

import numpy as np
from numba import types
from numba.extending import overload

from deg._kernels._jit import jit
from deg._kernels.distances import inner


@jit("void(float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1])")
def rotate_four(x, yt, tt, s, out):
    """``out[b] = Q^T x[b]`` for the four rows of ``x``; ``s`` is (4, >= r) scratch.

    Four rows against four reflection vectors at a time: each element loaded serves four
    multiply-adds, where one row at a time needs about one load per multiply-add (Fashion-MNIST,
    r = 64: 3.6 us per vector, 6.1 one row at a time). Each row's sums run through the same
    instructions whatever its place among the four, so a row's result does not depend on its
    block-mates (``rotate_rows`` pads the last block with zeros).
    """
    r, dim = yt.shape
    x0, x1, x2, x3 = x[0], x[1], x[2], x[3]
    j = 0
    while j + 4 <= r:  # s = Y^T x
        y0, y1, y2, y3 = yt[j], yt[j + 1], yt[j + 2], yt[j + 3]
        a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = np.float32(0.0)
        a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = np.float32(0.0)
        for i in range(dim):
            v0, v1, v2, v3 = x0[i], x1[i], x2[i], x3[i]
            w0, w1, w2, w3 = y0[i], y1[i], y2[i], y3[i]
            a00 += v0 * w0
            a01 += v0 * w1
            a02 += v0 * w2
            a03 += v0 * w3
            a10 += v1 * w0
            a11 += v1 * w1
            a12 += v1 * w2
            a13 += v1 * w3
            a20 += v2 * w0
            a21 += v2 * w1
            a22 += v2 * w2
            a23 += v2 * w3
            a30 += v3 * w0
            a31 += v3 * w1
            a32 += v3 * w2
            a33 += v3 * w3
        s[0, j], s[0, j + 1], s[0, j + 2], s[0, j + 3] = a00, a01, a02, a03
        s[1, j], s[1, j + 1], s[1, j + 2], s[1, j + 3] = a10, a11, a12, a13
        s[2, j], s[2, j + 1], s[2, j + 2], s[2, j + 3] = a20, a21, a22, a23
        s[3, j], s[3, j + 1], s[3, j + 2], s[3, j + 3] = a30, a31, a32, a33
        j += 4
    while j < r:  # fewer than four reflections left
        for b in range(4):
            s[b, j] = inner(yt[j], x[b])
        j += 1
    for b in range(4):  # s = T^T s in place: row j reads s[:j+1], not yet overwritten
        sb = s[b]
        for j in range(r - 1, -1, -1):
            sb[j] = inner(tt[j, : j + 1], sb[: j + 1])
    o0, o1, o2, o3 = out[0], out[1], out[2], out[3]
    for i in range(dim):  # not out[:] = x: its shape-check error path costs ~2.5 s of compile
        o0[i], o1[i], o2[i], o3[i] = x0[i], x1[i], x2[i], x3[i]
    j = 0
    while j + 4 <= r:  # out = x - Y s
        y0, y1, y2, y3 = yt[j], yt[j + 1], yt[j + 2], yt[j + 3]
        u00, u01, u02, u03 = s[0, j], s[0, j + 1], s[0, j + 2], s[0, j + 3]
        u10, u11, u12, u13 = s[1, j], s[1, j + 1], s[1, j + 2], s[1, j + 3]
        u20, u21, u22, u23 = s[2, j], s[2, j + 1], s[2, j + 2], s[2, j + 3]
        u30, u31, u32, u33 = s[3, j], s[3, j + 1], s[3, j + 2], s[3, j + 3]
        for i in range(dim):
            w0, w1, w2, w3 = y0[i], y1[i], y2[i], y3[i]
            o0[i] -= u00 * w0 + u01 * w1 + u02 * w2 + u03 * w3
            o1[i] -= u10 * w0 + u11 * w1 + u12 * w2 + u13 * w3
            o2[i] -= u20 * w0 + u21 * w1 + u22 * w2 + u23 * w3
            o3[i] -= u30 * w0 + u31 * w1 + u32 * w2 + u33 * w3
        j += 4
    while j < r:
        v = yt[j]
        for b in range(4):
            u = s[b, j]
            ob = out[b]
            for i in range(dim):
                ob[i] -= u * v[i]
        j += 1


@jit("void(float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1])")
def rotate_rows(x, yt, tt, out):
    """``out[i] = Q^T x[i]`` for every row, four at a time (the last block padded)."""
    m, dim = x.shape
    s = np.empty((4, max(yt.shape[0], 1)), dtype=np.float32)
    i = 0
    while i + 4 <= m:
        rotate_four(x[i : i + 4], yt, tt, s, out[i : i + 4])
        i += 4
    if i < m:
        pad = np.zeros((4, dim), dtype=np.float32)
        pad_out = np.empty((4, dim), dtype=np.float32)
        for b in range(m - i):
            for c in range(dim):
                pad[b, c] = x[i + b, c]
        rotate_four(pad, yt, tt, s, pad_out)
        for b in range(m - i):
            for c in range(dim):
                out[i + b, c] = pad_out[b, c]


def rotate_queries(x, yt, tt, out):
    """``rotate_rows`` for a batch's queries: float32 queries (a search's) are rotated; rows of
    any other type are stored rows (construction, exploration), already in the stored basis,
    which the caller never asks to rotate (this compiles to nothing for them)."""
    rotate_rows(x, yt, tt, out)


@overload(rotate_queries)
def _rotate_queries(x, yt, tt, out):
    if x.dtype == types.float32:
        return lambda x, yt, tt, out: rotate_rows(x, yt, tt, out)
    return lambda x, yt, tt, out: None
