"""The readers-writer boundary: searches from many Python threads while the index changes."""

import contextlib
import threading
import time

import numpy as np

import deg
from deg._storage import Storage
from tests.conftest import assert_graph_ok, low_dim_data


def test_searches_run_safely_beside_adds_removes_and_optimize():
    x = low_dim_data(3000, dim=8, seed=11)
    index = deg.Index.build(x[:1000], edges_per_vertex=8, progress=False)
    stop = threading.Event()
    errors = []
    counts = []

    def reader(seed):
        rng = np.random.default_rng(seed)
        done = 0
        try:
            while not stop.is_set():
                q = x[rng.integers(0, 3000, 16)]
                labels, dists = index.search(q, k=5, eps=0.1, threads=1)
                assert ((labels >= 0) & (labels < 3000)).all()
                assert (np.diff(dists, axis=1) >= 0).all()
                np.testing.assert_allclose(
                    dists[:, 0], ((x[labels[:, 0]] - q) ** 2).sum(1), rtol=1e-4, atol=1e-4
                )
                # removed between the two calls: allowed, and must raise cleanly
                with contextlib.suppress(KeyError):
                    index.explore(labels[:2, 0], k=3, threads=1)
                done += 1
        except Exception as e:  # surfaced by the main thread
            errors.append(e)
        counts.append(done)

    readers = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in readers:
        t.start()
    for lo in range(1000, 3000, 250):
        index.add(x[lo : lo + 250], labels=np.arange(lo, lo + 250))
        index.remove(np.arange(lo - 1000, lo - 1000 + 50))
        index.optimize(tries=50)
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert sum(counts) > 0
    assert len(index) == 3000 - 8 * 50
    assert_graph_ok(index)


def test_many_python_threads_each_searching_with_several_threads():
    """Multi-threaded calls from several Python threads at once share one pool of helpers;
    every call must give what a one-thread call gives."""
    x = low_dim_data(3000, dim=8, seed=12)
    index = deg.Index.build(x, edges_per_vertex=8, progress=False)
    q = low_dim_data(400, dim=8, seed=13)
    want = index.search(q, k=5, threads=1)
    want_x = index.explore(np.arange(0, 3000, 10), k=5, threads=1)
    results, errors = [], []

    def caller(i):
        try:
            for _ in range(5):
                results.append(
                    (
                        index.search(q, k=5, threads=2),
                        index.explore(np.arange(0, 3000, 10), k=5, threads=2),
                    )
                )
        except Exception as e:
            errors.append(e)

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert not errors, errors
    assert len(results) == 20
    for (lab, dist), (xl, xd) in results:
        assert np.array_equal(lab, want[0]) and np.array_equal(dist, want[1])
        assert np.array_equal(xl, want_x[0]) and np.array_equal(xd, want_x[1])


def test_scratch_pool_lends_each_set_to_one_taker_and_reuses_it():
    from deg._concurrency import ScratchPool

    pool = ScratchPool()
    with pool.take(100, 1) as a, pool.take(100, 2) as b:
        assert a is not b and a.blocks >= 1 and b.blocks >= 2
        assert a.cand.shape == (1, 100) and b.cand.shape == (2, 100)
    with pool.take(50, 1) as c:  # a free set large enough is lent again, not allocated
        assert c is a or c is b
    with pool.take(200, 1) as d:  # too small ones are not
        assert d is not a and d is not b and d.capacity == 200
    with pool.take(200, 1) as e:
        assert e is d
    try:
        with pool.take(200, 1) as f:
            raise RuntimeError("the search failed")
    except RuntimeError:
        pass
    with pool.take(200, 1) as g:  # dropped when the work raised: a helper may still write it
        assert g is not f and g.capacity == 200


def test_a_waiting_writer_runs_once_the_last_reader_leaves():
    """Readers leaving wake a writer only when one waits; the last one must."""
    from deg._concurrency import ReadWriteLock

    lock = ReadWriteLock()
    events = []
    first, second = lock.reading(), lock.reading()
    first.__enter__()
    second.__enter__()

    def write():
        with lock.writing():
            events.append("wrote")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    while not lock._writers_waiting:  # the writer is queued behind the two readers
        time.sleep(0.001)
    first.__exit__(None, None, None)
    time.sleep(0.05)
    assert events == []  # one reader still holds the lock
    second.__exit__(None, None, None)
    writer.join(timeout=10)
    assert events == ["wrote"] and not writer.is_alive()
    with lock.reading():  # readers get in again once the writer is done
        pass


def test_a_large_add_lets_searches_through():
    """An add changes the index in short steps: searches from another thread keep finishing
    while it runs, and see it grow vertex group by vertex group (a lock held for the whole
    batch lets none through)."""
    x = low_dim_data(22_000, dim=8, seed=21)
    index = deg.Index.build(x[:2000], edges_per_vertex=8, progress=False)
    finished = threading.Event()
    seen = []

    def adder():
        try:
            index.add(x[2000:], labels=np.arange(2000, 22_000), threads=1)
        finally:
            finished.set()

    t = threading.Thread(target=adder)
    t.start()
    while not finished.is_set():
        labels, _ = index.search(x[:4], k=5, threads=1)
        assert (labels >= 0).all()
        if not finished.is_set():
            seen.append(len(index))
    t.join()
    during = [size for size in seen if 2000 < size < 22_000]  # part of the add wired in
    assert len(during) >= 20, f"only {len(during)} searches finished in the middle of the add"
    assert len(set(during)) >= 10 and seen == sorted(seen)  # each saw more of it wired in
    assert len(index) == 22_000
    assert_graph_ok(index)


def test_an_add_makes_room_while_searches_run(monkeypatch):
    """Growing the arrays copies the whole index: the add does it before its exclusive
    step, so a search made during the copy finishes (it waited for the copy before)."""
    x = low_dim_data(700, dim=8, seed=23)
    index = deg.Index.build(x[:300], edges_per_vertex=8, progress=False)
    store = index.internals().store
    assert store.capacity < 700
    copying, release = threading.Event(), threading.Event()
    grown = Storage.grown

    def held_copy(self, needed):
        room = grown(self, needed)
        if room is not None:
            copying.set()
            release.wait(30)
        return room

    monkeypatch.setattr(Storage, "grown", held_copy)
    adder = threading.Thread(
        target=index.add, args=(x[300:],), kwargs={"labels": np.arange(300, 700)}
    )
    adder.start()
    try:
        assert copying.wait(30)
        found = []
        searcher = threading.Thread(target=lambda: found.append(index.search(x[:5], k=3)))
        searcher.start()
        searcher.join(10)
        finished_during_copy = not searcher.is_alive()
    finally:
        release.set()
        adder.join()
    searcher.join()
    assert finished_during_copy, "a search waited for the add's copy of the arrays"
    assert (found[0][0][:, 0] == np.arange(5)).all()
    assert len(index) == 700 and store.capacity >= 700
    assert np.array_equal(index.get_vectors(np.arange(700)), x)  # nothing lost in the move
    assert_graph_ok(index)
