"""Sharded indices on a local Ray cluster (2 CPUs, started once for this module): recall
against a single index on real data, labels across shards, add/remove/save/load, and a shard
whose actor was killed."""

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import deg  # noqa: E402
from deg.distributed import ShardedIndex, ShardTimeout, ShardUnavailable, shard_of  # noqa: E402
from tests.conftest import brute_force, low_dim_data, recall, shared_file  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def sift():
    from deg.datasets import read_fvecs

    base = read_fvecs(shared_file("siftsmall", "siftsmall_base.fvecs"))
    query = read_fvecs(shared_file("siftsmall", "siftsmall_query.fvecs"))
    return base, query


def test_shard_of_spreads_labels_evenly_and_never_changes():
    keys = np.arange(100_000)
    counts = np.bincount(shard_of(keys, 4), minlength=4)
    assert counts.min() > 24_000  # each of 4 shards within 4% of a quarter
    # pinned: a change of the hash would move saved labels to other shards
    assert shard_of([0, 1, 2, 2**62, 12345], 7).tolist() == [2, 2, 4, 4, 5]
    assert (shard_of(keys, 1) == 0).all()


@pytest.mark.parametrize("shards", [2, 4])
def test_sharded_recall_matches_a_single_index(sift, shards):
    """SIFT-small (10k x 128): the merged top-10 of 2 or 4 shards has the recall of one index
    over all the data, within noise (each shard searches its quarter as well)."""
    base, query = sift
    truth, _ = brute_force(base, query, 10)
    single = deg.Index.build(base, progress=False)
    want = recall(single.search(query, k=10, eps=0.1)[0], truth)
    index = ShardedIndex.build(base, shards=shards, cpus_per_shard=0.5)
    try:
        labels, dists = index.search(query, k=10, eps=0.1)
        got = recall(labels, truth)
        assert abs(got - want) < 0.02, (got, want)
        assert labels.dtype == np.int64 and dists.dtype == np.float32
        assert (np.diff(dists, axis=1) >= 0).all()
        assert index.sizes == np.bincount(shard_of(np.arange(10_000), shards)).tolist()
        # explore: the entry's own shard and the others with its vector, merged
        ex, _ = index.explore(np.arange(50), k=10)
        exact, _ = brute_force(base, base[:50], 11)
        assert recall(ex, exact[:, 1:]) > 0.9 and not (ex == np.arange(50)[:, None]).any()
        filt = np.arange(0, 10_000, 3)
        fl, _ = index.search(query[:20], k=5, filter=filt)
        assert np.isin(fl, filt).all()
    finally:
        index.close()


def test_labels_routing_add_remove_save_load(tmp_path):
    x = low_dim_data(3000, dim=8, seed=1)
    index = ShardedIndex(8, shards=3, edges_per_vertex=8, cpus_per_shard=0.5)
    try:
        assert (index.add(x[:2000]) == np.arange(2000)).all()  # default labels, unique overall
        assert len(index) == 2000 and sum(index.sizes) == 2000
        keyed = index.add(
            x[2000:2100], labels=np.arange(5000, 5100), shard_keys=np.zeros(100, dtype=int)
        )
        assert (keyed == np.arange(5000, 5100)).all() and 5050 in index
        with pytest.raises(ValueError, match="already in the index"):
            index.add(x[:1], labels=[5050], shard_keys=[1])  # another shard: still refused
        with pytest.raises(ValueError, match="already in the index"):
            index.add(x[:1], labels=[7])
        assert len(index) == 2100
        np.testing.assert_array_equal(index.get_vectors([3, 5001]), x[[3, 2001]])
        index.remove([3, 5001])
        assert 3 not in index and 5001 not in index and len(index) == 2098
        with pytest.raises(KeyError, match="label 3 is not in the index"):
            index.remove([4, 3])
        assert 4 in index  # nothing removed
        labels, _ = index.search(x[:50], k=10)
        assert np.mean([i in row for i, row in enumerate(labels)]) > 0.95 and 3 not in labels
        index.save(tmp_path / "idx")
        want = index.search(x[2500:2600], k=5)
        index.close()
        loaded = ShardedIndex.load(tmp_path / "idx", cpus_per_shard=0.5)
        try:
            got = loaded.search(x[2500:2600], k=5)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            assert len(loaded) == 2098 and (loaded.add(x[:1]) == [5100]).all()
        finally:
            loaded.close()
    finally:
        index.close()
    with pytest.raises(ValueError, match="holds no sharded index"):
        ShardedIndex.load(tmp_path / "nothing")


def killed(actor):
    """``ray.kill`` the actor and wait until Ray reports it dead (the kill is asynchronous)."""
    ray.kill(actor)
    for _ in range(200):
        try:
            ray.get(actor.info.remote(), timeout=10)
        except ray.exceptions.ActorDiedError:
            return
    raise AssertionError("the actor did not die")


def test_a_killed_shard_is_named_and_recovered_from_its_save(tmp_path):
    x = low_dim_data(2000, dim=8, seed=2)
    index = ShardedIndex.build(x, shards=2, edges_per_vertex=8, cpus_per_shard=0.5)
    try:
        killed(index._actors[0])
        with pytest.raises(RuntimeError, match=r"shards \[0\] died and the index was never saved"):
            index.recover()
        index.close()
        index = ShardedIndex.build(x, shards=2, edges_per_vertex=8, cpus_per_shard=0.5)
        index.save(tmp_path / "idx")
        want = index.search(x[:20], k=5)
        killed(index._actors[1])
        with pytest.raises(ShardUnavailable, match="shard 1 is unavailable") as e:
            index.search(x[:20], k=5)
        assert e.value.shard == 1
        assert index.recover() == [1]
        got = index.search(x[:20], k=5)
        np.testing.assert_array_equal(got[0], want[0])
        assert index.recover() == []
    finally:
        index.close()


def test_bad_adds_change_no_shard_and_saves_are_tidy(tmp_path):
    x = low_dim_data(1000, dim=8, seed=3)
    index = ShardedIndex(8, shards=2, edges_per_vertex=np.int64(8), cpus_per_shard=0.5)
    try:
        index.add(x[:900])
        bad = x[900:1000].copy()
        bad[57, 3] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            index.add(bad)
        assert len(index) == 900
        assert (index.add(x[900:910]) == np.arange(900, 910)).all()
        # per-entry filters: cut to the entries each shard explores or searches
        entries = np.arange(6)
        allowed = [np.arange(100, 200)] * 6
        got, _ = index.explore(entries, k=5, filter=allowed)
        assert ((got >= 100) & (got < 200)).all()
        index.save(tmp_path / "idx")
        index.save(tmp_path / "idx")  # the first save's files go
        names = sorted(p.name for p in (tmp_path / "idx").iterdir())
        assert len(names) == 3 and names[0] == "manifest.json"
    finally:
        index.close()
    loaded = ShardedIndex.load(tmp_path / "idx", cpus_per_shard=0.5)
    try:
        assert len(loaded) == 910 and loaded.params["edges_per_vertex"] == 8
    finally:
        loaded.close()


def test_an_add_that_fails_on_one_shard_is_taken_back_from_the_others():
    x = low_dim_data(1200, dim=8, seed=4)
    index = ShardedIndex.build(x[:1000], shards=2, edges_per_vertex=8, cpus_per_shard=0.5)
    try:
        before = index.sizes
        new = np.arange(1000, 1200)
        assert set(shard_of(new, 2).tolist()) == {0, 1}  # both shards get rows
        killed(index._actors[1])
        with pytest.raises(ShardUnavailable, match="shard 1 is unavailable"):
            index.add(x[1000:], labels=new)
        held = ray.get(index._actors[0].contains.remote(new))
        assert not np.any(held)  # shard 0 took its rows and gave them back
        assert ray.get(index._actors[0].info.remote())["n"] == before[0]
    finally:
        index.close()


def test_a_call_past_its_timeout_names_the_shard():
    x = low_dim_data(500, dim=8, seed=5)
    with pytest.raises(ValueError, match="call_timeout must be >= "):
        ShardedIndex(8, shards=1, call_timeout=0, cpus_per_shard=0.5)
    with pytest.raises(TypeError, match="call_timeout must be a real number"):
        ShardedIndex(8, shards=1, call_timeout="1", cpus_per_shard=0.5)
    index = ShardedIndex.build(x, shards=2, edges_per_vertex=8, cpus_per_shard=0.5)
    try:
        want = index.search(x[:10], k=5)
        index.call_timeout = 1e-9  # no shard answers a search that fast
        with pytest.raises(ShardTimeout, match=r"shard 0 did not answer within 1e-09 s"):
            index.search(x[:10], k=5)
        index.call_timeout = 600.0
        np.testing.assert_array_equal(index.search(x[:10], k=5)[0], want[0])
    finally:
        index.close()


def test_a_recall_target_goes_to_every_shard():
    x = low_dim_data(3000, dim=8, seed=6)
    q = low_dim_data(100, dim=8, seed=7)
    index = ShardedIndex.build(x, shards=2, edges_per_vertex=8, cpus_per_shard=0.5)
    try:
        labels, _ = index.search(q, k=10, recall=0.95)
        assert recall(labels, brute_force(x, q, 10)[0]) >= 0.9
        got, _ = index.explore(np.arange(20), k=5, recall=0.95)
        assert recall(got, brute_force(x, x[:20], 6)[0][:, 1:]) >= 0.85
        with pytest.raises(ValueError, match="recall"):
            index.search(q, k=10, recall=0.95, eps=0.1)
    finally:
        index.close()
