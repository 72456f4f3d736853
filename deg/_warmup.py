"""Compile (or load from numba's cache) every kernel once, on a tiny graph."""

import time

import numpy as np


def warmup(verbose=False):
    """Compile or load every numba kernel; returns the seconds it took.

    The first call in a fresh environment compiles (tens of seconds); later processes load the
    machine code from numba's on-disk cache (about a second). Benchmarks call it before timing.
    """
    from deg import analysis
    from deg.index import Index

    start = time.perf_counter()
    x = np.random.default_rng(0).random((80, 4), dtype=np.float32)
    for metric in ("l2", "ip"):
        for scheme in ("low-lid", "high-lid", "stream"):
            index = Index(4, metric=metric, edges_per_vertex=4, scheme=scheme, improve_tries=1)
            index.add(x, threads=1)
            index.add(x + 1, threads=2)
        index.search(x, k=3, threads=1)
        index.search(x, k=3, threads=2, max_distance_computations=50)
        index.explore([0, 1], k=3)
        index.optimize(tries=20)
        index.remove(index.labels[:30])
        analysis.check(index, gq_sample=8)
    big = Index(4, edges_per_vertex=4, rotate=True)  # adopts its rotated basis on the 2nd add
    data = np.random.default_rng(1).random((1100, 4), dtype=np.float32)
    big.add(data[:600], threads=1)
    big.add(data[600:], threads=1)
    big.search(x, k=3, threads=1)
    seconds = time.perf_counter() - start
    if verbose:
        print(f"deg.warmup: kernels ready in {seconds:.1f} s")
    return seconds
