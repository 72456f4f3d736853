"""One serial task beside parallel work, on Python threads running nogil kernels.

Construction uses it to overlap the wiring of one batch (sequential by nature) with the
candidate searches of the next: the calling thread wires, the others search, and the caller
joins the searches once its wiring is done, so neither core waits for the other. ``overlap``
hands out chunks of work through Python (view refreshes); ``side_by_side`` starts one kernel
per thread and lets the kernels share the work out among themselves (searches).
"""

import concurrent.futures
import itertools
import os
import threading

from deg._kernels import atomic as katomic

# reads of a counter before a waiting thread blocks: ~0.1-1 ms, about one chunk of queries
_SPINS = 1 << 18

_pool = None
_pool_size = 0
_pool_lock = threading.Lock()


def shared_pool(threads):
    """The process's helper threads, at least ``threads - 1`` of them (None for one thread).

    Kept between calls: starting threads per search would cost more than a small search.
    """
    global _pool, _pool_size
    if threads <= 1:
        return None
    with _pool_lock:
        if _pool is None or _pool_size < threads - 1:
            old = _pool
            _pool = concurrent.futures.ThreadPoolExecutor(threads - 1, "deg")
            _pool_size = threads - 1
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _forget_pool():
    """A forked child has none of the parent's threads: start a pool of its own on demand."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def overlap(first, chunk, n_chunks, threads):
    """Run ``first()`` and ``chunk(t, c)`` for every ``c`` in ``range(n_chunks)``.

    Thread 0 is the caller: it runs ``first`` (may be None), then takes chunks like the
    ``threads - 1`` helpers of ``shared_pool``. ``t`` tells a chunk which thread's scratch to
    use; chunks are handed out in order as threads free up, so any thread may take any chunk
    and ``chunk`` must give the same result wherever it runs. Returns when everything is done;
    the first exception stops the hand-out and is raised.
    """
    counter = itertools.count()  # next() on it is atomic under the GIL
    failed = threading.Event()

    def pull(t):
        try:
            for c in counter:
                if c >= n_chunks or failed.is_set():
                    return
                chunk(t, c)
        except BaseException:
            failed.set()
            raise

    pool = shared_pool(threads)
    helpers = [pool.submit(pull, t) for t in range(1, threads)] if threads > 1 else []
    try:
        if first is not None:
            try:
                first()
            except BaseException:
                failed.set()
                raise
        pull(0)
    finally:
        for h in helpers:  # a helper not started yet holds no chunk: drop it, wait for the rest
            if not h.cancel():
                h.exception()
    for h in helpers:
        if not h.cancelled():
            h.result()


def side_by_side(first, work, threads, done):
    """Run ``work(t)`` once on each of ``threads`` threads, and ``first()`` (may be None) on
    the calling thread before its own ``work(0)``.

    For kernels that share their work out among themselves (``search.search_shared``): a
    helper that starts late finds less left to do, so nothing waits for a thread to wake. Each
    ``work`` adds 1 to ``done`` (int64[1]) when its results are written. A helper that has not
    started by the time the caller is done is cancelled (there is nothing left for it); the
    caller spins briefly for the started ones to count themselves done, and only then blocks
    on them (a wake-up through Python costs ~30 us, a tenth of a small batch). Returns once
    every started ``work`` has counted itself done or returned; the first exception is raised.
    """
    pool = shared_pool(threads)
    helpers = [pool.submit(work, t) for t in range(1, threads)] if threads > 1 else []
    try:
        if first is not None:
            first()
        work(0)
    finally:
        started = [h for h in helpers if not h.cancel()]
        if not katomic.wait_until(done, 1 + len(started), _SPINS):
            for h in started:
                h.exception()
    for h in started:
        if h.done():
            h.result()
