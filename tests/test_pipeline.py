"""The construction pipeline: its scheduler, and the rows the search copy takes after a wiring."""

import threading
import time

import numpy as np
import pytest

import deg
from deg import _construction as construction
from deg import _pipeline


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
    real = construction.wired_rows

    def checking(neighbors, lo, hi):
        rows = real(neighbors, lo, hi)
        if "before" in seen:
            changed = np.flatnonzero((neighbors[:hi] != seen["before"][:hi]).any(axis=1))
            assert np.isin(changed, rows).all(), (lo, hi, np.setdiff1d(changed, rows))
            checked.append(len(changed))
        seen["before"] = neighbors[:hi].copy()
        seen["before"].resize((neighbors.shape[0], neighbors.shape[1]), refcheck=False)
        return rows

    monkeypatch.setattr(construction, "wired_rows", checking)
    x = np.random.default_rng(5).normal(size=(2500, 16)).astype(np.float32)
    index = deg.Index.build(x, edges_per_vertex=10, progress=False, threads=2)
    assert len(checked) > 20 and sum(checked) > 2500
    assert np.array_equal(index.labels, np.arange(2500))


def test_pipelined_batches_see_the_graph_before_the_previous_batch(monkeypatch):
    """A batch searched beside the previous batch's wiring cannot reach that batch's vertices:
    its candidates are all older, which is what makes the build independent of timing. A
    short batch is searched after the previous wiring, on the current graph."""
    x = np.random.default_rng(6).normal(size=(2986, 8)).astype(np.float32)
    index = deg.Index.build(x[:2000], edges_per_vertex=8, progress=False)
    batches = construction.batches(2000, 2986)
    low, high = batches[-1][1] - batches[-1][0], batches[0][1] - batches[0][0]
    assert low < construction.OVERLAP_MIN <= high
    seen = []
    real = construction.Builder.candidates

    def spy(self, lo, hi, graph, visible, threads, first=None):
        out = real(self, lo, hi, graph, visible, threads, first)
        seen.append((lo, hi, visible, int(out[0].max()), first is not None))
        return out

    monkeypatch.setattr(construction.Builder, "candidates", spy)
    index.add(x[2000:], threads=2)
    assert [s[:2] for s in seen] == batches
    assert seen[0][2] == 2000
    for (lo, hi, visible, top, beside), (prev_lo, prev_hi) in zip(seen[1:], batches):
        overlapped = hi - lo >= construction.OVERLAP_MIN
        assert beside == overlapped
        assert visible == (prev_lo if overlapped else prev_hi) and top < visible


class _Batch:
    """Work for ``side_by_side`` shared out like ``search.search_shared``'s: each ``work(t)``
    claims items until none are left, counting each in ``done`` once processed."""

    def __init__(self, items):
        self.items = items
        self.done = np.zeros(1, dtype=np.int64)
        self.next = 0
        self.by = {}  # item -> thread
        self.lock = threading.Lock()

    def claim(self):
        with self.lock:
            item, self.next = self.next, self.next + 1
        return item if item < self.items else None

    def work(self, t):
        while (item := self.claim()) is not None:
            time.sleep(0.0005)
            with self.lock:
                self.by[item] = t
                self.done[0] += 1


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_side_by_side_runs_first_then_shares_the_work(threads):
    batch, order = _Batch(40), []

    def work(t):
        if t == 0:
            order.append("work 0")
        batch.work(t)

    _pipeline.side_by_side(lambda: order.append("first"), work, threads, batch.done, 40)
    assert order == ["first", "work 0"]
    assert sorted(batch.by) == list(range(40)) and set(batch.by.values()) <= set(range(threads))


def test_side_by_side_returns_once_the_work_is_counted_done():
    """The caller goes on as soon as the count is complete, without waiting for a helper's
    thread to come back through Python."""
    batch = _Batch(5)
    claimed, released, late = threading.Event(), threading.Event(), []

    def work(t):
        if t == 0:
            assert claimed.wait(10)  # the helper took everything
        else:
            batch.work(t)
            claimed.set()
            if not released.wait(10):
                late.append(t)  # the caller waited for this return
        batch.work(t)

    _pipeline.side_by_side(None, work, 2, batch.done, 5)
    released.set()
    assert not late and set(batch.by.values()) == {1}


@pytest.mark.parametrize("where", ["first", "work 1"])
def test_side_by_side_raises_once_the_work_is_done(where):
    batch = _Batch(30)
    helper_in = threading.Event()

    def first():
        if where == "first":
            assert helper_in.wait(10)
            raise ValueError("wiring failed")

    def work(t):
        if t == 1:
            helper_in.set()
            if where == "work 1":
                raise ValueError("helper failed")
        batch.work(t)

    with pytest.raises(ValueError, match="failed"):
        _pipeline.side_by_side(first, work, 2, batch.done, 30)
    assert sorted(batch.by) == list(range(30))  # nothing left running or undone


def test_side_by_side_runs_alone_while_the_crew_is_taken():
    """A call that finds the helpers busy with another call's batch does its own alone."""
    inner, outer = _Batch(10), _Batch(10)

    def outer_work(t):
        if t == 0:
            _pipeline.side_by_side(None, inner.work, 2, inner.done, 10)
        outer.work(t)

    _pipeline.side_by_side(None, outer_work, 2, outer.done, 10)
    assert set(inner.by.values()) == {0} and sorted(outer.by) == list(range(10))
