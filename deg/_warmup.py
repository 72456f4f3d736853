"""Compile (or load from numba's cache) every kernel once, on tiny graphs.

From an empty cache most of the time is LLVM optimising the larger kernels, one at a time on
one core. So when this process had to compile the kernels that ``import deg`` loads (a cold
cache), a second process compiles the repair half (streaming insertion, removal) while this
one compiles the rest (insertion, search, optimisation); both save to numba's cache, and a last
pass over everything then loads the other half from it (and compiles whatever is still missing,
e.g. when the second process could not start).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from deg import _dtypes
from deg import _validation as check

# the two shares take about as long to compile; both compile the search and the edge
# improvement kernels, which each needs
_INSERT = "insert"  # LowLID/HighLID construction, search, exploration, optimisation, checks,
#                     the rotated basis, edge codes
_REPAIR = "repair"  # streaming construction and removal (both repair the graph)
_ALL = "all"
_HELPER_TIMEOUT = 600  # seconds; its share takes ~20 s on a slow machine
_warmed = False  # this process ran warmup: every kernel is compiled or loaded


def warmup(verbose: bool = False, processes: int = 2, dtypes: tuple | str = ("float32",)) -> float:
    """Compile or load every numba kernel; returns the seconds it took.

    The first call in a fresh environment compiles (tens of seconds; in two processes when
    ``processes`` > 1 and the cache was cold); later processes load the machine code from
    numba's on-disk cache (about a second). Benchmarks call it before timing.

    ``dtypes`` names the storage types (``Index(dtype=)``, one or a tuple) to prepare: float32
    always, and each other one listed with its quantizers (the kernels are compiled per type:
    10-20 s more each from an empty cache, in this process).
    """
    global _warmed
    if isinstance(dtypes, (str, type, np.dtype)):  # one type (a string: not its letters)
        dtypes = (dtypes,)
    # named as Index(dtype=) takes them (np.float16 too), refused as it refuses them
    dtypes = [
        check.check_choice("each of dtypes", _dtypes.name_of(t), _dtypes.DTYPES) for t in dtypes
    ]
    start = time.perf_counter()
    helper = _start_helper() if processes > 1 and not _warmed and _cold_cache() else None
    how = ""
    if helper is not None:
        try:
            _exercise(_INSERT)
            code = helper.wait(timeout=_HELPER_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = "timed out"
        finally:  # after an interrupt or a timeout too: never leave it running
            helper.kill()
        how = " (two processes)" if code == 0 else f" (the second process failed: {code})"
    _exercise(_ALL)  # with a helper: its kernels come from the cache now
    for dtype in dict.fromkeys(dtypes):
        if dtype != "float32":
            _exercise_type(dtype)
    _warmed = True
    seconds = time.perf_counter() - start
    if verbose:
        print(f"deg.warmup: kernels ready in {seconds:.1f} s{how}")
    return seconds


def _cold_cache():
    """Did ``import deg`` compile any kernel instead of loading it? (The kernels with explicit
    signatures compile or load on import; a miss there means the cache is empty or stale.)
    Never when caching is off: a second process would then save nothing to share."""
    from numba.core.registry import CPUDispatcher

    from deg._kernels import _jit

    if not _jit.CACHE:
        return False
    kernels = [
        obj
        for name, module in list(sys.modules.items())
        if name.startswith("deg._kernels.")
        for obj in vars(module).values()
        if isinstance(obj, CPUDispatcher)
    ]
    return any(sum(k.stats.cache_misses.values()) for k in kernels)


def _start_helper():
    """A second Python process running the repair share against the same ``deg``; None when
    it cannot be started (then this process compiles everything itself)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    try:
        return subprocess.Popen(
            [sys.executable, "-c", f"from deg import _warmup; _warmup._exercise({_REPAIR!r})"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None


def _exercise(share):
    """Run every public path of ``share`` on tiny indices (``_ALL``: every path, both metrics
    that reach different code)."""
    from deg import analysis
    from deg.index import Index

    x = np.random.default_rng(0).random((80, 4), dtype=np.float32)
    schemes = {
        _INSERT: ("low-lid", "high-lid"),
        _REPAIR: ("stream",),
        _ALL: ("low-lid", "high-lid", "stream"),
    }[share]
    for metric in ("l2", "ip") if share == _ALL else ("l2",):
        for scheme in schemes:
            index = Index(
                4,
                metric=metric,
                edges_per_vertex=4,
                scheme=scheme,
                improve_tries=int(share == _ALL),
            )
            index.add(x, threads=1)
            index.add(x + 1, threads=2)
        if share != _REPAIR:
            index.search(x, k=3, threads=1)
            index.search(x, k=3, threads=2, max_distance_computations=50)
            index.explore([0, 1], k=3)
            index.search(x, k=3, filter=np.arange(40), threads=2)  # filtered: the exact scan
            index.explore([0, 1], k=3, exclude=[5])
            index.optimize(tries=20)
        if share != _INSERT:
            index.remove(index.labels[:30])
        if share != _REPAIR:
            analysis.check(index, gq_sample=8)
    data = np.random.default_rng(1).random((1100, 4), dtype=np.float32)
    if share != _REPAIR:  # edge codes (fitted at 1000 vectors): the lighter share takes them
        coded = Index(4, edges_per_vertex=4, quantize="rabitq")
        coded.add(data, threads=1)
        coded.search(x, k=3, threads=1)
        coded.search(x, k=3, threads=2, max_distance_computations=50, max_degree=2)
        coded.add(data[:8] + 0.5, threads=1)  # a small write encodes its edited rows at its end
        coded.remove(coded.labels[-8:])
    if share == _REPAIR:
        return
    big = Index(4, edges_per_vertex=4, rotate=True)  # adopts its rotated basis on the 2nd add
    big.add(data[:600], threads=1)
    big.add(data[600:], threads=1)
    big.search(x, k=3, threads=1)
    big.search(x, k=3, threads=1, filter=[3, 4, 5])  # the scan rotates its queries
    with tempfile.TemporaryDirectory() as folder:  # saving and the checks of a load
        path = os.path.join(folder, "warm.deg")
        big.save(path)
        Index.load(path)


def _exercise_type(dtype):
    """The paths an index of storage type ``dtype`` compiles of its own: construction, search
    (whole and pruned), exploration, optimisation and removal, plain and with each
    quantizer."""
    from deg.index import Index

    rng = np.random.default_rng(2)
    if _dtypes.is_integer(dtype):
        low = -50 if dtype == "int8" else 0
        data = rng.integers(low, low + 100, (1100, 4)).astype(np.float32)
    else:
        data = rng.random((1100, 4), dtype=np.float32)
    x = data[:80]
    for quantize in (None, "rabitq", "sq8"):
        index = Index(4, edges_per_vertex=4, dtype=dtype, quantize=quantize)
        index.add(data[:600], threads=1)
        index.add(data[600:], threads=2)  # past 1000 vectors: the quantizers are fitted
        index.search(x, k=3, threads=1)
        index.search(x, k=3, threads=2, max_degree=2, max_distance_computations=50)
        index.explore([0, 1], k=3)
        index.optimize(tries=20)
        index.remove(index.labels[:30])
