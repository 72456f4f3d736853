"""The readers-writer boundary around an index and the pool of search scratch buffers.

Searches, explorations and saves are readers and run side by side (the kernels release the
GIL); add, remove and optimize are writers: one at a time, each in short exclusive steps
between which the readers run (``Steps``). Each concurrent reader takes its own scratch set
from the pool, so no two searches share visited tags or heaps, and nothing is allocated per
query.
"""

import contextlib
import threading
import time

import numba
import numpy as np

from deg import _validation as check
from deg._aligned import CACHE_LINE


class ReadWriteLock:
    """Many readers or one writer, phase-fair: a waiting writer blocks new readers (no writer
    starvation), and the readers that waited for a writer go in before the next writer (no
    reader starvation when a writer takes the lock step after step, see ``Steps``)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._readers_waiting = 0
        self._readers_turn = False  # set by a writer leaving with readers waiting

    def reading(self):
        """Context manager for a reader (a plain object: a search pays ~1 us for it, where a
        generator-based one costs a few)."""
        return _Reading(self)

    def _enter_reading(self):
        with self._cond:
            if self._writer or (self._writers_waiting and not self._readers_turn):
                self._readers_waiting += 1
                try:  # an interrupt while waiting must not leave the counts behind
                    while self._writer or (self._writers_waiting and not self._readers_turn):
                        self._cond.wait()
                finally:
                    self._readers_waiting -= 1
                    if not self._readers_waiting and self._readers_turn:
                        self._readers_turn = False  # every reader that waited is in
                        self._cond.notify_all()
            self._readers += 1

    def _exit_reading(self):
        with self._cond:
            self._readers -= 1
            if not self._readers and self._writers_waiting:  # only a writer waits for none
                self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self):
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers or self._readers_turn:
                    self._cond.wait()
            except BaseException:
                self._writers_waiting -= 1
                self._cond.notify_all()  # readers held back for this writer go on
                raise
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                if self._readers_waiting:
                    self._readers_turn = True
                self._cond.notify_all()


# a writer's exclusive step aims at this long: searches wait at most about this for a write
STEP_SECONDS = 0.25e-3
STEP_MAX = 1 << 16


class Steps:
    """A writer's work in exclusive steps of about ``STEP_SECONDS``, so that searches run
    between them: one large ``add`` no longer holds the lock for its whole batch.

    The step size of each kind of work (vertices wired, labels removed, improvement tries)
    adapts to the time its last step took, so it suits any vector size and CPU. Between two
    steps the graph is whole (even-regular, undirected, connected) and every vertex in it
    counted; the writer keeps other writers out for its whole operation (the index's writer
    mutex). Nothing may take the read lock inside a step, nor twice in one thread: a writer
    waiting between the two would wait for ever.
    """

    def __init__(self, lock: ReadWriteLock):
        self.lock = lock
        self.sizes: dict = {}

    def step(self):
        """One exclusive step of no fixed size (placing an add's rows, the final renewals)."""
        return self.lock.writing()

    def run(self, work, total: int, kind: str) -> None:
        """``work(lo, hi)`` over ``0..total`` in steps, each under the write lock; ``kind``
        names the work whose step size is kept."""
        done, size = 0, self.sizes.get(kind, 1)
        while done < total:
            hi = min(total, done + size)
            with self.lock.writing():
                start = time.perf_counter()
                work(done, hi)
                took = time.perf_counter() - start
            if took < STEP_SECONDS / 4 and hi - done == size and size < STEP_MAX:
                size *= 2
            elif took > STEP_SECONDS and size > 1:
                size = max(1, int(size * STEP_SECONDS / took))
            self.sizes[kind] = size
            done = hi


class _Reading:
    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        self.lock._enter_reading()

    def __exit__(self, *exc):
        self.lock._exit_reading()


class Scratch:
    """Per-thread-block search buffers for graphs of up to ``capacity`` vertices."""

    def __init__(self, capacity, blocks):
        self.capacity = capacity
        self.blocks = blocks
        self.visited = np.zeros((blocks, capacity), dtype=np.uint16)
        # a thread's tag is written by every search: each row spans cache lines of its own
        self.tags = np.zeros((blocks, 16), dtype=np.int64)
        # every vertex enters the candidate heap (packed keys) at most once: capacity bounds it
        self.cand = np.empty((blocks, capacity), dtype=np.uint64)
        # graph repair (RESTORE_GRAPH): which group claimed a vertex (-1: none), and the undo list
        self.owner = np.full(capacity, -1, dtype=np.int64)
        self.touched = np.empty(capacity, dtype=np.int64)
        self._widths = (0, 0)

    def rows(self, heap, d):
        """Each thread's result heap (``heap`` slots, float32 and int32) and fresh-neighbour
        slots (``d``, int32), kept with the set rather than allocated per search (1.4 us of a
        one-query call)."""
        if self._widths[0] < heap or self._widths[1] != d:
            self.res_d = thread_rows(self.blocks, heap, np.float32)
            self.res_i = thread_rows(self.blocks, heap, np.int32)
            self.fresh = thread_rows(self.blocks, d, np.int32)
            self._widths = (heap, d)
        return self.res_d, self.res_i, self.fresh


def thread_rows(blocks, width, dtype):
    """Per-thread scratch rows of ``width`` items, no two of them on one cache line: threads
    writing to one line pass it back and forth between their cores (SIFT-small, 2 threads:
    each thread's search ran ~25% slower while the candidate slots of both shared lines)."""
    item = np.dtype(dtype).itemsize
    stride = -(-(width * item + CACHE_LINE) // CACHE_LINE) * CACHE_LINE // item
    return np.empty((blocks, stride), dtype=dtype)


class ScratchPool:
    """Hands out scratch sets; one is created only when all are in use or too small."""

    def __init__(self):
        self._free = []
        self._lock = threading.Lock()

    def take(self, capacity, blocks):
        """Context manager lending a scratch set of at least this capacity and block count
        (a plain object, as ``ReadWriteLock.reading``: ~2 us less per search than a generator)."""
        return _Taken(self, capacity, blocks)

    def _acquire(self, capacity, blocks):
        with self._lock:
            free = self._free
            for i in range(len(free) - 1, -1, -1):  # the most recently returned first
                if free[i].capacity >= capacity and free[i].blocks >= blocks:
                    return free.pop(i)
        return Scratch(capacity, blocks)

    def _release(self, scratch, capacity):
        with self._lock:
            if scratch.capacity >= capacity:  # a set that no longer fits the graph is dropped
                self._free.append(scratch)
                if len(self._free) > 4:  # at most a few: the oldest goes
                    del self._free[0]

    def clear(self):
        with self._lock:
            self._free = []


class _Taken:
    __slots__ = ("blocks", "capacity", "pool", "scratch")

    def __init__(self, pool, capacity, blocks):
        self.pool = pool
        self.capacity = capacity
        self.blocks = blocks

    def __enter__(self):
        self.scratch = self.pool._acquire(self.capacity, self.blocks)
        return self.scratch

    def __exit__(self, exc_type, *exc):
        # after an error (an interrupt while helpers still run) the set may still be written
        # by a helper thread's kernel: it is dropped rather than lent to the next search
        if exc_type is None:
            self.pool._release(self.scratch, self.capacity)


def resolve_threads(threads) -> int:
    """``None``: all cores (``NUMBA_NUM_THREADS``, which defaults to the core count and lets
    users cap every library at once); more than that is capped."""
    if threads is None:
        return numba.config.NUMBA_NUM_THREADS
    return min(check.check_int("threads", threads, minimum=1), numba.config.NUMBA_NUM_THREADS)
