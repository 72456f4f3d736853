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

import numpy as np

from deg._kernels import atomic as katomic

# reads of a counter before a waiting caller blocks (~0.07 ms here): the last chunks of a small
# batch end within that, a large batch's wait is worth a wake-up
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
    """A forked child has none of the parent's threads: start a pool and crew of its own on
    demand."""
    global _pool, _pool_size, _pool_lock, _crew, _crew_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()
    _crew, _crew_lock = None, threading.Lock()


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


def side_by_side(first, work, threads, done, total):
    """Run ``work(t)`` on each of ``threads`` threads, and ``first()`` (may be None) on the
    calling thread before its own ``work(0)``; return once ``done[0]`` (int64[1]) reaches
    ``total``.

    For kernels that share their work out among themselves (``search.search_shared``) and
    count what they finished in ``done``: a helper that starts late, or not at all, finds less
    or nothing left, so nothing waits for a thread to wake, and once ``done`` is complete no
    ``work`` touches its arguments again. The helpers are the process's crew (``_Crew``); while
    another call has it, this one runs alone. If ``first`` raises, the batch is still finished
    before the error is raised; so is a helper's error, which only a helper that claimed nothing
    can raise.
    """
    crew = _crew_for(threads) if threads > 1 else None
    if crew is not None and not crew.busy.acquire(blocking=False):
        crew = None  # another call has it: work(0) alone claims everything
    try:
        errors = crew.post(work, threads) if crew is not None else []
        try:
            if first is not None:
                first()
        finally:
            work(0)
            if crew is not None:
                crew.join(done, total)
        if errors:
            raise errors[0]
    finally:
        if crew is not None:
            crew.busy.release()


# A helper that has finished a job spins this many reads of the job counter (~0.4 ms here) before
# it blocks: back-to-back calls then find it awake (SIFT-small, 100 queries on 2 threads: a
# helper woken from sleep started ~50 us late, a sixth of the batch).
_IDLE_SPINS = 1 << 20


class _Crew:
    """The helper threads of ``side_by_side``, numbered from 1, kept for the process's life.

    A job is posted by bumping ``posted[0]``. An idle helper spins on that counter for a while
    (``_IDLE_SPINS``, in a kernel that holds no GIL), as OpenMP runtimes do, then sleeps on
    ``cond``; either way it runs the newest job when the count moves. A helper late enough to
    see a finished job finds nothing left to claim in it.
    """

    def __init__(self):
        self.busy = threading.Lock()  # held by the call whose job this is
        self.cond = threading.Condition()
        self.posted = np.zeros(16, dtype=np.int64)
        self.job = None
        self.size = 0

    def grow(self, helpers):
        with self.cond:
            while self.size < helpers:
                self.size += 1
                threading.Thread(
                    target=self._serve,
                    args=(self.size,),
                    daemon=True,
                    name=f"deg-helper-{self.size}",
                ).start()

    def post(self, work, threads):
        errors = []
        with self.cond:
            self.job = (work, threads, errors)
            self.posted[0] += 1
            self.cond.notify_all()
        return errors

    def join(self, done, total):
        if katomic.wait_until(done, total, _SPINS):
            return
        with self.cond:
            while done[0] < total:
                self.cond.wait(0.01)

    def _serve(self, t):
        seen = 0
        while True:
            if not katomic.wait_until(self.posted, seen + 1, _IDLE_SPINS):
                with self.cond:
                    while self.posted[0] <= seen:
                        self.cond.wait()
            with self.cond:
                seen = int(self.posted[0])
                work, threads, errors = self.job
            if t < threads:
                try:
                    work(t)
                except BaseException as error:
                    errors.append(error)
                with self.cond:
                    self.cond.notify_all()  # a caller blocked in join


_crew = None
_crew_lock = threading.Lock()


def _crew_for(threads):
    """The process's crew, with at least ``threads - 1`` helpers."""
    global _crew
    with _crew_lock:
        if _crew is None:
            _crew = _Crew()
        _crew.grow(threads - 1)
        return _crew
