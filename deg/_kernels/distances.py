"""Distance kernels, selected by an integer metric code (no functions passed as arguments).

Code ``L2`` returns the squared Euclidean distance; code ``IP`` returns ``1 - <a, b>``. The
cosine metric is ``IP`` on vectors the Python layer has normalised.
"""

import numpy as np

from deg._kernels._jit import jit

L2 = 0
IP = 1


@jit
def l2sq(a, b):
    """Squared L2 distance of two float32 vectors of equal length."""
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        t = a[i] - b[i]
        acc += t * t
    return acc


@jit
def inner(a, b):
    """Inner product of two float32 vectors, float32 accumulator (vectorises)."""
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@jit("float32(int64, float32[::1], float32[::1])")
def distance(metric, a, b):
    """Distance of ``a`` and ``b`` under ``metric`` (``L2`` or ``IP``), as float32."""
    if metric == L2:
        return l2sq(a, b)
    return np.float32(1.0) - inner(a, b)


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
