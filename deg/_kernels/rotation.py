"""The rotation into the index's stored basis (see ``deg._basis``).

The basis is ``Q = I - Y T Y^T``, a product of r Householder reflections: ``yt`` holds the
reflection vectors as rows (r, dim) and ``tt`` the lower-triangular ``T^T`` (r, r). A vector
``x`` is stored as ``Q^T x = x - Y (T^T (Y^T x))``: about 2*r*dim multiply-adds, rather than
the dim*dim of a general rotation. With r = 0 the basis is the input one.
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.distances import inner


@jit("void(float32[::1], float32[:, ::1], float32[:, ::1], float32[::1], float32[::1])")
def rotate(x, yt, tt, s, out):
    """``out = Q^T x``; ``s`` is scratch of length >= r. ``out`` must not overlap ``x``.

    The reflection vectors are taken four at a time, so each element of ``x`` (first pass)
    or ``out`` (last pass) is loaded once per four of them: 25-30% faster than one at a time
    (Fashion-MNIST, r = 64: 7.0 -> 5.3 us per vector).
    """
    r, dim = yt.shape
    j = 0
    while j < r:  # s = Y^T x
        if j + 4 <= r:
            y0, y1, y2, y3 = yt[j], yt[j + 1], yt[j + 2], yt[j + 3]
            a0 = a1 = a2 = a3 = np.float32(0.0)
            for i in range(dim):
                xi = x[i]
                a0 += y0[i] * xi
                a1 += y1[i] * xi
                a2 += y2[i] * xi
                a3 += y3[i] * xi
            s[j], s[j + 1], s[j + 2], s[j + 3] = a0, a1, a2, a3
            j += 4
        else:
            s[j] = inner(yt[j], x)
            j += 1
    for j in range(r - 1, -1, -1):  # s = T^T s in place: row j reads s[:j+1], not yet overwritten
        s[j] = inner(tt[j, :j + 1], s[:j + 1])
    for i in range(dim):  # not out[:] = x: its shape-check error path costs ~2.5 s of compile
        out[i] = x[i]
    j = 0
    while j < r:  # out = x - Y s
        if j + 4 <= r:
            y0, y1, y2, y3 = yt[j], yt[j + 1], yt[j + 2], yt[j + 3]
            u0, u1, u2, u3 = s[j], s[j + 1], s[j + 2], s[j + 3]
            for i in range(dim):
                out[i] -= u0 * y0[i] + u1 * y1[i] + u2 * y2[i] + u3 * y3[i]
            j += 4
        else:
            u = s[j]
            v = yt[j]
            for i in range(dim):
                out[i] -= u * v[i]
            j += 1


@jit("void(float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1])")
def rotate_rows(x, yt, tt, out):
    """``out[i] = Q^T x[i]`` for every row."""
    s = np.empty(max(yt.shape[0], 1), dtype=np.float32)
    for i in range(x.shape[0]):
        rotate(x[i], yt, tt, s, out[i])
