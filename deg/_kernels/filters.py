"""Bitsets over internal ids, as filtered search reads them (docs/algorithm.md §3.6): bit
``v & 63`` of word ``v >> 6`` says whether vertex ``v`` may be a result."""

import numpy as np

from deg._kernels._jit import jit


@jit("boolean(uint64[::1], int64)")
def allowed(words, v):
    """Whether ``v`` may be a result: no words mean no filter (every vertex may)."""
    if words.shape[0] == 0:
        return True
    return (words[v >> 6] >> np.uint64(v & 63)) & np.uint64(1) != 0


@jit("void(uint64[::1], int64[::1])")
def set_bits(words, ids):
    """Set the bits of ``ids`` (each below ``64 * len(words)``, checked by the caller)."""
    for i in range(ids.shape[0]):
        v = ids[i]
        words[v >> 6] |= np.uint64(1) << np.uint64(v & 63)


@jit("int64(uint64[::1], int64)")
def count_below(words, n):
    """Set bits among the first ``n`` (``n <= 64 * len(words)``)."""
    total = 0
    for w in range((n + 63) >> 6):
        x = words[w]
        if w == n >> 6:  # the last, partial word: only its bits below n
            x &= (np.uint64(1) << np.uint64(n & 63)) - np.uint64(1)
        while x:
            x &= x - np.uint64(1)
            total += 1
    return total


@jit("int64(uint64[::1], int64, int32[::1])")
def ids_below(words, n, out):
    """The set ids below ``n``, ascending, into ``out`` (long enough: ``count_below``);
    returns how many."""
    m = 0
    for v in range(n):
        if (words[v >> 6] >> np.uint64(v & 63)) & np.uint64(1):
            out[m] = v
            m += 1
    return m
