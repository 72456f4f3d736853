"""Filtered search: only allowed (and not excluded) labels come back, for every kind of filter,
and recall against brute force over the allowed set holds at every selectivity, for random
and for query-correlated allowed sets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deg
from deg import _filtering as filtering
from deg.datasets import read_idx
from tests.conftest import assert_graph_ok, brute_force, low_dim_data, shared_file

N = 400


@pytest.fixture(scope="module")
def small():
    x = low_dim_data(N, dim=16, seed=3)
    labels = np.arange(N, dtype=np.int64) * 3 + 7  # labels are not ids
    return deg.Index.build(x, labels=labels, edges_per_vertex=8, progress=False), x, labels


forced = filtering.forced


PATHS = ("graph", "scan")


def exact_allowed(x, labels, queries, allowed, k):
    """Brute-force top-k labels among ``allowed`` (a set of labels)."""
    keep = np.array([lab in allowed for lab in labels])
    if not keep.any():
        return np.full((len(queries), 0), -1)
    ids, _ = brute_force(x[keep], queries, min(k, int(keep.sum())))
    return labels[keep][ids]


def kinds(index, allowed_labels, all_labels):
    """The same allowed set as each accepted kind."""
    mask = np.zeros(int(all_labels.max()) + 1, bool)
    known = [a for a in allowed_labels if 0 <= a < len(mask)]
    mask[known] = True
    return {
        "labels": np.asarray(allowed_labels, np.int64),
        "list": [int(a) for a in allowed_labels],
        "mask": mask,
        "Filter": deg.Filter(index, allowed_labels),
    }


label_sets = st.one_of(
    st.just([]),
    st.sets(st.sampled_from(range(7, 7 + 3 * N, 3)), min_size=1, max_size=1),
    st.just(list(range(7, 7 + 3 * N, 3))),  # everything
    st.sets(st.integers(0, 3 * N + 100), max_size=N),  # partly labels not in the index
    st.sets(st.sampled_from(range(7, 7 + 3 * N, 3)), min_size=20, max_size=380),
)


@settings(max_examples=30)
@given(allowed=label_sets, denied=st.sets(st.integers(0, 3 * N + 10), max_size=60))
def test_results_only_hold_allowed_labels_for_every_kind(small, allowed, denied):
    index, x, labels = small
    allowed = sorted(allowed)
    queries = x[:6] + 0.01
    ok = (set(allowed) & set(labels.tolist())) - denied
    for name, f, path in [
        (n, f, p) for n, f in kinds(index, allowed, labels).items() for p in PATHS
    ]:
        for exclude in (None, sorted(denied)):
            with forced(path):
                got, dist = index.search(queries, k=10, filter=f, exclude=exclude)
            want_ok = ok if exclude is not None else set(allowed) & set(labels.tolist())
            real = got[got >= 0]
            assert set(real.tolist()) <= want_ok, (name, path)
            # padding only where fewer are allowed than asked for, then inf distances
            n_ok = len(want_ok)
            assert ((got >= 0).sum(1) == min(10, n_ok)).all(), (name, path, n_ok)
            assert np.isinf(dist[got < 0]).all()


@pytest.mark.parametrize("path", PATHS)
def test_per_query_filters_and_exclusions(small, path):
    with forced(path):
        _per_query_filters_and_exclusions(small)


def _per_query_filters_and_exclusions(small):
    index, x, labels = small
    rng = np.random.default_rng(0)
    sets = [rng.choice(labels, size=s, replace=False) for s in (1, 5, 50, 300)]
    queries = x[:4]
    f = deg.Filter(index, sets[2])
    for per_query in (sets, [sets[0], sets[1], f, sets[3]], tuple(sets)):
        got, _ = index.search(queries, k=5, filter=per_query)
        for q in range(4):
            assert set(got[q][got[q] >= 0].tolist()) <= set(sets[q].tolist())
    denied = [labels[:200], labels[200:], labels[:0], labels]
    got, _ = index.search(queries, k=5, exclude=denied)
    for q in range(4):
        assert not set(got[q].tolist()) & set(denied[q].tolist())
    assert (got[3] == -1).all()  # everything excluded: padding
    masks = np.zeros((4, int(labels.max()) + 1), bool)
    masks[np.arange(4), labels[:4]] = True  # a 2-D mask: one row per query
    got, _ = index.search(queries, k=3, filter=masks)
    assert (got[:, 0] == labels[:4]).all() and (got[:, 1:] == -1).all()
    got, _ = index.search(queries, k=5, filter=[sets[0], None, None, sets[0]])
    unfiltered, _ = index.search(queries, k=5)
    assert (got[1:3] == unfiltered[1:3]).all() and (got[[0, 3], 0] == sets[0][0]).all()
    with pytest.raises(ValueError, match="one per query, for 4 queries"):
        index.search(queries, k=5, filter=sets[:3])


def test_filtered_results_are_exact_where_scanned_and_near_it_elsewhere(small):
    index, x, labels = small
    rng = np.random.default_rng(1)
    queries = x[rng.choice(N, 30, replace=False)] + 0.02
    for size in (3, 40, 200, N):
        allowed = set(rng.choice(labels, size=size, replace=False).tolist())
        got, _ = index.search(queries, k=10, eps=0.1, filter=sorted(allowed))
        want = exact_allowed(x, labels, queries, allowed, 10)
        hits = sum(len(set(g[g >= 0].tolist()) & set(w.tolist())) for g, w in zip(got, want))
        assert hits / want.size >= 0.95, size


def test_bad_filters_are_refused_and_leave_the_index_alone(small):
    index, x, labels = small
    other = deg.Index.build(x[:50], edges_per_vertex=4, progress=False)
    with pytest.raises(ValueError, match="another index"):
        index.search(x[:2], filter=deg.Filter(other, [1, 2]))
    with pytest.raises(TypeError, match="integer labels or a boolean mask"):
        index.search(x[:2], filter=[1.5, 2.5])
    with pytest.raises(ValueError, match="1-D array"):
        deg.Filter(index, np.zeros((2, 2, 2), np.int64))
    with pytest.raises(TypeError, match=r"needs the deg\.Index"):
        deg.Filter("index", [1])
    import pickle

    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(deg.Filter(index, labels[:3]))
    with pytest.raises(ValueError, match="one per query"):
        index.explore(labels[:3], filter=np.zeros((2, 5), bool))
    assert len(index) == N
    assert_graph_ok(index)


@pytest.mark.parametrize("path", PATHS)
def test_a_filter_follows_adds_and_removals(path):
    with forced(path):
        _a_filter_follows_adds_and_removals()


def _a_filter_follows_adds_and_removals():
    x = low_dim_data(300, dim=8, seed=5)
    index = deg.Index.build(x[:200], edges_per_vertex=6, progress=False)
    f = deg.Filter(index, np.arange(0, 300, 2))  # even labels, some not added yet
    got, _ = index.search(x[:20], k=10, filter=f)
    assert (got % 2 == 0).all()
    index.add(x[200:])  # labels 200..299: the even ones are allowed now
    got, _ = index.search(x[250:260], k=1, filter=f)
    assert (got % 2 == 0).all() and (got[::2, 0] == np.arange(250, 260, 2)).all()
    index.remove(np.arange(0, 100))  # renumbers: the last vertices move into freed ids
    for g in index.search(x[100:300], k=5, filter=f)[0]:
        assert (g % 2 == 0).all() and (g >= 100).all()
    again, _ = index.search(x[100:300], k=5, filter=np.arange(0, 300, 2))
    assert (index.search(x[100:300], k=5, filter=f)[0] == again).all()
    assert_graph_ok(index)


@pytest.mark.parametrize("size", [3, 5000])  # the scan, and the graph search
def test_explore_honours_include_entry_in_both_paths(size):
    x = low_dim_data(6000, dim=8, seed=2)
    index = deg.Index.build(x, edges_per_vertex=8, progress=False)
    allowed = np.arange(size)
    entries = np.array([0, 1, 2])
    got, _ = index.explore(entries, k=3, filter=allowed)
    assert not (got == entries[:, None]).any()
    got, dist = index.explore(entries, k=3, filter=allowed, include_entry=True)
    assert (got[:, 0] == entries).all() and (dist[:, 0] == 0).all()
    got, _ = index.explore(entries, k=3, filter=allowed, exclude=entries, include_entry=True)
    assert not np.isin(got, entries).any()  # excluded wins over include_entry
    assert np.isin(got[got >= 0], allowed).all()


def test_graph_path_spends_its_budget_then_scans():
    """Allowed items far from every query (one cluster, queries from the other): the graph
    search passes the whole near cluster first; the budget makes the scan answer, exactly."""
    rng = np.random.default_rng(7)
    near = rng.standard_normal((8000, 16)).astype(np.float32)
    far = (rng.standard_normal((8000, 16)) + 8).astype(np.float32)
    x = np.vstack([near, far])
    index = deg.Index.build(x, edges_per_vertex=10, progress=False)
    allowed = np.arange(8000, 16000)
    assert not filtering.prefers_scan(len(allowed), len(x))  # the graph search is tried
    queries = near[:40] + 0.01
    got, _, stats = index.search(queries, k=10, filter=allowed, return_stats=True)
    ids, _ = brute_force(far, queries, 10)
    assert (np.sort(got, 1) == np.sort(ids + 8000, 1)).all()
    # the budget spent, then every allowed row scanned
    spent = filtering.budget(len(allowed))
    assert (stats["distance_computations"] >= spent + len(allowed)).all()


@pytest.mark.parametrize("path", PATHS)
def test_thread_count_does_not_change_filtered_results(small, path):
    index, x, labels = small
    f = labels[::7]
    with forced(path):
        one = index.search(x[:64], k=5, filter=f, threads=1)
        two = index.search(x[:64], k=5, filter=f, threads=2)
    assert (one[0] == two[0]).all() and (one[1] == two[1]).all()


def test_a_batch_mixing_both_paths_and_plain_queries(small, monkeypatch):
    index, x, labels = small
    monkeypatch.setattr(filtering, "prefers_scan", lambda count, n: count < 100)
    monkeypatch.setattr(filtering, "FALLBACK", 1e12)
    rng = np.random.default_rng(4)
    sets = [rng.choice(labels, size=s, replace=False) for s in (5, 300, 50, 350)]
    queries = x[:6] + 0.01
    per_query = [sets[0], sets[1], None, sets[2], sets[3], None]
    got, _ = index.search(queries, k=5, filter=per_query)
    plain, _ = index.search(queries, k=5)
    for q, allowed in enumerate(per_query):
        if allowed is None:
            assert (got[q] == plain[q]).all()
        else:
            assert set(got[q].tolist()) <= set(allowed.tolist())
    for q, allowed in ((0, sets[0]), (3, sets[2])):  # scanned: the exact top 5
        want = exact_allowed(x, labels, queries[q : q + 1], set(allowed.tolist()), 5)
        assert (got[q] == want[0]).all()


def test_per_query_filters_are_planned_in_parts(small, monkeypatch):
    index, x, labels = small
    rng = np.random.default_rng(9)
    sets = [rng.choice(labels, size=30, replace=False) for _ in range(40)]
    whole = index.search(x[:40], k=5, filter=sets, exclude=[labels[:3]] * 40)
    monkeypatch.setattr(filtering, "PLAN_BYTES", 8)  # one query per part
    parts = index.search(x[:40], k=5, filter=sets, exclude=[labels[:3]] * 40)
    assert (whole[0] == parts[0]).all() and (whole[1] == parts[1]).all()


def test_the_callers_budget_bounds_filtered_queries(small):
    index, x, labels = small
    for allowed in (labels[:40], labels[:390]):
        _, _, stats = index.search(
            x[:20], k=5, filter=allowed, max_distance_computations=60, return_stats=True
        )
        assert (stats["distance_computations"] <= 60).all()


@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_other_metrics_filter_too(metric):
    x = low_dim_data(500, dim=12, seed=8) + 0.5
    index = deg.Index.build(x, metric=metric, edges_per_vertex=8, progress=False)
    allowed = np.arange(0, 500, 3)
    for path in PATHS:
        with forced(path):
            got, dist = index.search(x[:10], k=5, filter=allowed)
        assert np.isin(got, allowed).all() and (np.diff(dist, axis=1) >= 0).all()


def test_a_filter_belongs_to_its_index_object(small, tmp_path):
    index, x, labels = small
    f = deg.Filter(index, labels[:10])
    index.save(tmp_path / "a.deg")
    again = deg.Index.load(tmp_path / "a.deg")
    with pytest.raises(ValueError, match="another index"):
        again.search(x[:1], filter=f)
    got, _ = again.search(x[:1], k=3, filter=deg.Filter(again, labels[:10]))
    assert np.isin(got, labels[:10]).all()


def test_cost_choice():
    n = 60_000
    assert filtering.prefers_scan(60, n) and filtering.prefers_scan(6000, n)
    assert not filtering.prefers_scan(12_000, n)
    assert filtering.budget(1) >= 1


def _fashion_mnist(n_train=20_000, n_query=200):
    train = read_idx(shared_file("fashion-mnist", "train-images-idx3-ubyte.gz"))
    classes = read_idx(shared_file("fashion-mnist", "train-labels-idx1-ubyte.gz"))
    test = read_idx(shared_file("fashion-mnist", "t10k-images-idx3-ubyte.gz"))
    test_classes = read_idx(shared_file("fashion-mnist", "t10k-labels-idx1-ubyte.gz"))
    x = train[:n_train].reshape(n_train, -1).astype(np.float32)
    q = test[:n_query].reshape(n_query, -1).astype(np.float32)
    return x, classes[:n_train], q, test_classes[:n_query]


@pytest.fixture(scope="module")
def fmnist():
    x, cls, q, qcls = _fashion_mnist()
    return deg.Index.build(x, edges_per_vertex=30, progress=False), x, cls, q, qcls


@pytest.mark.parametrize("share", [0.5, 0.1, 0.01, 0.001])
def test_recall_at_every_selectivity_on_fashion_mnist(fmnist, share):
    index, x, _, q, _ = fmnist
    rng = np.random.default_rng(int(share * 1000))
    allowed = np.sort(rng.choice(len(x), size=max(1, int(share * len(x))), replace=False))
    got, _ = index.search(q, k=10, eps=0.1, filter=allowed)
    ids, _ = brute_force(x[allowed], q, min(10, len(allowed)))
    want = allowed[ids]
    hit = np.mean([len(set(g.tolist()) & set(w.tolist())) / len(w) for g, w in zip(got, want)])
    assert hit >= 0.95, (share, hit)


def test_recall_when_the_filter_is_correlated_with_the_query(fmnist):
    """Allowed: one class (10% of the items); queries: images of the other classes."""
    index, x, cls, q, qcls = fmnist
    allowed = np.flatnonzero(cls == 0)
    queries = q[qcls != 0]
    got, _ = index.search(queries, k=10, eps=0.1, filter=allowed)
    ids, _ = brute_force(x[allowed], queries, 10)
    want = allowed[ids]
    hit = np.mean([len(set(g.tolist()) & set(w.tolist())) / 10 for g, w in zip(got, want)])
    assert hit >= 0.95, hit
    # the same through explore: entries of other classes, allowed one class
    entries = np.flatnonzero(cls != 0)[:100]
    got, _ = index.explore(entries, k=10, eps=0.1, filter=allowed)
    ids, _ = brute_force(x[allowed], x[entries], 10)
    want = allowed[ids]
    hit = np.mean([len(set(g.tolist()) & set(w.tolist())) / 10 for g, w in zip(got, want)])
    assert hit >= 0.95, hit
