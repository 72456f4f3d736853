"""The construction pipeline: its scheduler, and the rows the search copy takes after a wiring."""

import threading
import time

import numpy as np
import pytest

import deg
from deg import _pipeline
from deg import index as dindex


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_overlap_runs_first_and_every_chunk_once(threads):
    done = []
    lock = threading.Lock()

    def chunk(t, c):
        assert 0 <= t < threads
        with lock:
            done.append(c)

    first = []
    _pipeline.overlap(lambda: first.append(1), chunk, 37, threads)
    assert first == [1] and sorted(done) == list(range(37))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("where", ["first", "chunk"])
def test_overlap_raises_the_first_error_and_stops(threads, where):
    done = []

    def first():
        if where == "first":
            raise ValueError("wiring failed")

    def chunk(t, c):
        if where == "chunk" and c == 3:
            raise ValueError("search failed")
        time.sleep(0.001)
        done.append(c)

    with pytest.raises(ValueError, match="failed"):
        _pipeline.overlap(first, chunk, 1000, threads)
    assert len(done) < 100  # the hand-out stopped soon after the failure


def test_wiring_changes_only_the_rows_the_search_copy_takes(monkeypatch):
    """After each batch the search copy (``shadow``) takes the rows of the batch and of their
    neighbours; every row the wiring changed must be among them, else later candidate searches
    would run on a stale graph."""
    seen = {}
    checked = []
    real = dindex._wired_rows

    def checking(neighbors, lo, hi):
        rows = real(neighbors, lo, hi)
        if "before" in seen:
            changed = np.flatnonzero((neighbors[:hi] != seen["before"][:hi]).any(axis=1))
            assert np.isin(changed, rows).all(), (lo, hi, np.setdiff1d(changed, rows))
            checked.append(len(changed))
        seen["before"] = neighbors[:hi].copy()
        seen["before"].resize((neighbors.shape[0], neighbors.shape[1]), refcheck=False)
        return rows

    monkeypatch.setattr(dindex, "_wired_rows", checking)
    x = np.random.default_rng(5).normal(size=(2500, 16)).astype(np.float32)
    index = deg.Index.build(x, edges_per_vertex=10, progress=False, threads=2)
    assert len(checked) > 20 and sum(checked) > 2500
    assert np.array_equal(index.labels, np.arange(2500))


def test_pipelined_batches_see_the_graph_before_the_previous_batch():
    """A batch searched beside the previous batch's wiring cannot reach that batch's vertices:
    its candidates are all older, which is what makes the build independent of timing. A
    short batch is searched after the previous wiring, on the current graph."""
    x = np.random.default_rng(6).normal(size=(2986, 8)).astype(np.float32)
    index = deg.Index.build(x[:2000], edges_per_vertex=8, progress=False)
    batches = index._batches(2000, 2986)
    assert batches[-1][1] - batches[-1][0] < dindex._OVERLAP_MIN <= batches[0][1] - batches[0][0]
    seen = []
    real = index._candidates

    def spy(lo, hi, graph, visible, threads, first=None):
        out = real(lo, hi, graph, visible, threads, first)
        seen.append((lo, hi, visible, int(out[0].max()), first is not None))
        return out

    index._candidates = spy
    index.add(x[2000:], threads=2)
    assert [s[:2] for s in seen] == batches
    assert seen[0][2] == 2000
    for (lo, hi, visible, top, beside), (prev_lo, prev_hi) in zip(seen[1:], batches):
        overlapped = hi - lo >= dindex._OVERLAP_MIN
        assert beside == overlapped
        assert visible == (prev_lo if overlapped else prev_hi) and top < visible


def _counting(threads, before=None):
    """A ``work`` for ``side_by_side`` that records its thread and counts itself done."""
    done = np.zeros(1, dtype=np.int64)
    ran = []
    lock = threading.Lock()

    def work(t):
        if before is not None:
            before(t)
        with lock:
            ran.append(t)
            done[0] += 1

    return work, done, ran


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_side_by_side_runs_first_then_work_on_every_thread(threads):
    order = []
    work, done, ran = _counting(threads, before=lambda t: t == 0 and order.append("work 0"))
    _pipeline.side_by_side(lambda: order.append("first"), work, threads, done)
    assert order == ["first", "work 0"]
    # a helper may be cancelled if the caller finished before it started (nothing left)
    assert 0 in ran and set(ran) <= set(range(threads)) and len(ran) == len(set(ran))


def test_side_by_side_returns_once_helpers_count_themselves_done():
    """The caller goes on as soon as every started helper has counted itself done, without
    waiting for the helper's thread to come back through Python."""
    started, released, late = threading.Event(), threading.Event(), []
    done = np.zeros(1, dtype=np.int64)

    def work(t):
        if t == 0:
            assert started.wait(10)  # the helper has started: it cannot be cancelled
        else:
            started.set()
        done[0] += 1
        if t == 1 and not released.wait(10):
            late.append(t)  # the caller waited for this return

    _pipeline.side_by_side(None, work, 2, done)
    released.set()
    assert not late


@pytest.mark.parametrize("where", ["first", "work 0", "work 1"])
def test_side_by_side_raises_after_the_helpers_finished(where):
    started = threading.Event()
    finished = []
    done = np.zeros(1, dtype=np.int64)

    def fail_once_helper_started():
        assert started.wait(10)  # a started helper cannot be cancelled
        raise ValueError("failed")

    def first():
        if where == "first":
            fail_once_helper_started()

    def work(t):
        if t == 1:
            started.set()
        if where == f"work {t}":
            if t == 1:
                raise ValueError("failed")
            fail_once_helper_started()
        time.sleep(0.05)
        finished.append(t)
        done[0] += 1

    with pytest.raises(ValueError, match="failed"):
        _pipeline.side_by_side(first, work, 2, done)
    assert 1 in finished or where == "work 1"  # the error waits for the helper's share
