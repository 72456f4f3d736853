"""One serial task beside chunked parallel work, on Python threads running nogil kernels.

Construction uses it to overlap the wiring of one batch (sequential by nature) with the
candidate searches of the next: the calling thread wires, the others search, and the caller
joins the searches once its wiring is done, so neither core waits for the other.
"""

import itertools
import threading


def overlap(pool, first, chunk, n_chunks, threads):
    """Run ``first()`` and ``chunk(t, c)`` for every ``c`` in ``range(n_chunks)``.

    Thread 0 is the caller: it runs ``first`` (may be None), then takes chunks like the
    ``threads - 1`` others started on ``pool``. ``t`` tells a chunk which thread's scratch to
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
        for h in helpers:  # wait for every helper, even when the caller failed
            h.exception()
    for h in helpers:
        h.result()
