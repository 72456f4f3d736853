"""The candidates a quantized search re-ranks (``deg._quantizer``): the best of the code
distances its walk computed, taken from the walk's distance log."""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.heap import before, max_push, max_replace_top


@jit
def best_logged(ids, dists, counts, out):
    """Row q of ``out`` (int32, ``size`` columns): the ``size`` ids of least distance among
    the first ``counts[q]`` of row q of the log ``ids/dists`` (each vertex once: a search
    computes a vertex's distance once), in no order, padded with -1."""
    size = out.shape[1]
    res_d = np.empty(size + 1, np.float32)
    res_i = np.empty(size + 1, np.int32)
    for q in range(ids.shape[0]):
        n_res = 0
        for j in range(counts[q]):
            d = dists[q, j]
            v = ids[q, j]
            if n_res < size:
                n_res = max_push(res_d, res_i, n_res, d, v)
            elif before(d, v, res_d[0], res_i[0]):
                max_replace_top(res_d, res_i, n_res, d, v)
        for j in range(size):
            out[q, j] = res_i[j] if j < n_res else -1
