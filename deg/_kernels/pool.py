"""The candidates a quantized search re-ranks (``deg._quantizer``): the best of the code
distances its walk computed, taken from the walk's distance log."""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.heap import before, max_drain_sorted, max_push, max_replace_top


@jit
def offer(res_d, res_i, n_res, d, v):
    """Offer ``(d, v)`` to the max-heap of the ``len(res_d) - 1`` least; returns its size."""
    if n_res < res_d.shape[0] - 1:
        return max_push(res_d, res_i, n_res, d, v)
    if before(d, v, res_d[0], res_i[0]):
        max_replace_top(res_d, res_i, n_res, d, v)
    return n_res


@jit
def best_logged(ids, dists, counts, walk_i, walk_d, out):
    """Row q of ``out`` (int32, ``size`` columns): the ``size`` ids of least distance among
    the first ``counts[q]`` of row q of the log ``ids/dists`` (each vertex once: a search
    computes a vertex's distance once), nearest first, padded with -1. A full log row may
    have missed the walk's last (and best) distances: then the walk's own results
    ``walk_i/walk_d`` (-1: padding) are offered too, those not in the pool already."""
    size = out.shape[1]
    res_d = np.empty(size + 1, np.float32)
    res_i = np.empty(size + 1, np.int32)
    sorted_d = np.empty(size, np.float32)
    for q in range(ids.shape[0]):
        n_res = 0
        for j in range(counts[q]):
            n_res = offer(res_d, res_i, n_res, dists[q, j], ids[q, j])
        if counts[q] >= ids.shape[1]:
            for r in range(walk_i.shape[1]):
                v = walk_i[q, r]
                known = v < 0
                for j in range(n_res):
                    known |= res_i[j] == v
                if not known:
                    n_res = offer(res_d, res_i, n_res, walk_d[q, r], v)
        got = max_drain_sorted(res_d, res_i, n_res, sorted_d, out[q])
        for j in range(got, size):
            out[q, j] = -1
