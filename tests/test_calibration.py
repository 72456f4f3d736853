"""Recall targets: ``Index.calibrate`` and ``search``/``explore(..., recall=)``."""

import pickle
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deg
from deg import _calibration as calibration
from deg import datasets
from tests.conftest import assert_graph_ok, brute_force, shared_file

PROJ = np.random.default_rng(0).standard_normal((8, 24)).astype(np.float32)


def data(n, seed):
    """Vectors of intrinsic dimension 8 in 24, from one distribution whatever the seed."""
    rng = np.random.default_rng(seed)
    z = rng.random((n, 8), dtype=np.float32)
    return (z @ PROJ + 0.01 * rng.standard_normal((n, 24))).astype(np.float32)


@pytest.fixture(scope="module")
def built():
    """An index, its vectors and fresh queries from the same distribution."""
    x = data(4000, seed=1)
    index = deg.Index.build(x, edges_per_vertex=12, progress=False)
    return index, x, data(1500, seed=2)


def id_recall(labels, truth):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(labels, truth)]))


def fresh_copy(index):
    """A copy of ``index`` without calibrations."""
    copy = pickle.loads(pickle.dumps(index))
    copy._calibrations.tables.clear()
    return copy


# ---------------------------------------------------------------- the pieces


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_exact_neighbour_distances_match_brute_force(metric):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((700, 20)).astype(np.float32)
    q = rng.standard_normal((40, 20)).astype(np.float32)
    if metric == "cosine":  # the index keeps unit vectors; exact() sees stored rows
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
    _, want = brute_force(x, q, 7, metric)
    got = calibration.exact(x, q, 7, metric)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5)
    # excluding a row per query (explore's own vertex): the rest shift up by one
    if metric == "l2":
        own = np.argsort(((x[None] - q[:, None]) ** 2).sum(-1), axis=1)[:, 0]
        got = calibration.exact(x, q, 7, metric, exclude=own)
        assert np.allclose(got[:, :6], want[:, 1:7], rtol=1e-5, atol=1e-5)


def test_recall_counts_ties_with_the_kth_neighbour():
    truth = np.array([[1.0, 2.0, 3.0]])
    assert calibration.recall_at(np.array([[1.0, 2.0, 3.0]]), truth, 3) == 1.0
    assert calibration.recall_at(np.array([[1.0, 3.0, 3.0]]), truth, 3) == 1.0  # a tie
    assert calibration.recall_at(np.array([[1.0, 2.0, 3.1]]), truth, 3) == pytest.approx(2 / 3)


def table_of(*curves_):
    points = tuple(
        calibration.Point(md, eps, None, recall, 100.0, seconds)
        for md, rows in curves_
        for eps, recall, seconds in rows
    )
    return calibration.Table("search", 10, "queries", 100, 0.2, points)


def test_choose_interpolates_and_takes_the_cheapest_curve():
    table = table_of(
        (8, [(0.0, 0.80, 1.0), (0.1, 0.90, 2.0), (0.2, 0.96, 3.0)]),
        (4, [(0.0, 0.70, 0.5), (0.1, 0.85, 1.0), (0.2, 0.94, 4.0)]),
    )
    s = calibration.choose(table, 0.85)
    assert (s.max_degree, s.eps) == (4, 0.1)  # 1.0 s against 8's 1.5 s
    s = calibration.choose(table, 0.93)
    assert s.max_degree == 8 and s.eps == pytest.approx(0.15) and s.expected_recall == 0.93
    s = calibration.choose(table, 0.5)  # below every point: the curve's first, cheapest
    assert (s.max_degree, s.eps, s.expected_recall) == (4, 0.0, 0.70)


def test_choose_warns_and_takes_the_best_when_no_setting_reaches_the_target():
    table = table_of((8, [(0.0, 0.80, 1.0), (0.1, 0.90, 2.0)]), (4, [(0.0, 0.9, 3.0)]))
    with pytest.warns(UserWarning, match=r"recall 0.99 is above every setting.*0.9000"):
        s = calibration.choose(table, 0.99)
    assert (s.max_degree, s.eps) == (8, 0.1)  # of the two at 0.9 the faster


@pytest.mark.parametrize(
    "value, error",
    [
        ("0.9", TypeError),
        (True, TypeError),
        (None, TypeError),
        (0, ValueError),
        (0.0, ValueError),
        (1.01, ValueError),
        (float("nan"), ValueError),
        (-0.5, ValueError),
    ],
)
def test_bad_targets_are_refused_before_anything_is_measured(built, value, error):
    index, _x, q = built
    before = dict(index._calibrations.tables)
    with pytest.raises(error, match="recall must be"):
        calibration.check_target(value)
    if value is not None:  # None means no target
        with pytest.raises(error, match="recall must be"):
            index.search(q[:2], recall=value)
        with pytest.raises(error, match="recall must be"):
            index.explore([0], recall=value)
    assert index._calibrations.tables == before


@pytest.mark.parametrize("given", [{"eps": 0.1}, {"max_degree": 6}, {"rerank": 20}, {"eps": 0.0}])
def test_a_target_with_its_own_setting_is_refused(built, given):
    index, _x, q = built
    with pytest.raises(ValueError, match=f"got {next(iter(given))} too: give either"):
        index.search(q[:2], recall=0.9, **given)
    if "rerank" not in given:
        with pytest.raises(ValueError, match="give either"):
            index.explore([0], recall=0.9, **given)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"method": "scan"}, ValueError, "method"),
        ({"k": 0}, ValueError, "k"),
        ({"sample": 0}, ValueError, "sample"),
        ({"refresh": -0.1}, ValueError, "refresh"),
        ({"queries": np.ones((3, 5))}, ValueError, "dim"),
        ({"queries": np.full((3, 24), np.nan)}, ValueError, "finite|NaN"),
        ({"queries": np.ones((0, 24))}, ValueError, "empty"),
        ({"queries": np.ones((3, 24)), "method": "explore"}, ValueError, "stored vectors"),
    ],
)
def test_bad_calibrate_arguments_are_refused(built, kwargs, error, match):
    index = built[0]
    before = dict(index._calibrations.tables)
    with pytest.raises(error, match=match):
        index.calibrate(**kwargs)
    assert index._calibrations.tables == before


def test_unknown_entries_raise_before_a_calibration(built):
    index = fresh_copy(built[0])
    with pytest.raises(KeyError):
        index.explore([10**9], recall=0.9)
    assert not index._calibrations.tables


def test_an_index_too_small_for_k_says_so():
    index = deg.Index.build(data(12, seed=5), edges_per_vertex=4, progress=False)
    with pytest.raises(ValueError, match=r"at k=12 needs more vectors: a search with 1"):
        index.search(data(2, seed=6), k=12, recall=0.9)
    with pytest.raises(ValueError, match=r"an exploration would search 11"):
        index.explore([0], k=12, recall=0.9)
    assert len(index) == 12 and not index._calibrations.tables
    assert_graph_ok(index)


# ---------------------------------------------------------------- targets met


@pytest.mark.parametrize("target", [0.9, 0.97])
def test_held_out_calibration_meets_targets_on_unseen_queries(built, target):
    index, x, q = built
    index = fresh_copy(index)
    n = len(index)
    labels, _, stats = index.search(q, recall=target, return_stats=True)
    table = index._calibrations.tables[("search", 10)]
    assert (table.source, table.n) == ("held-out", n) and len(index) == n
    truth, _ = brute_force(x, q, 10)
    got = id_recall(labels, truth)
    s = stats["setting"]
    # the expected recall is the target, or above it where the cheapest curve starts above
    assert s["expected_recall"] >= target - 1e-9 and 1 <= s["max_degree"] <= 12
    assert abs(got - s["expected_recall"]) <= 0.025, (got, s)
    assert_graph_ok(index)  # the index itself is untouched by the held-out copy


def test_caller_queries_calibrate_and_are_kept_for_refreshes(built):
    index, x, q = built
    index = fresh_copy(index)
    summary = index.calibrate(q[:700], sample=400, seed=3)
    assert summary["source"] == "queries" and summary["sample"] == 400
    assert {p["max_degree"] for p in summary["points"]} == set(calibration.degrees(12))
    kept = index._calibrations.tables[("search", 10)].queries
    assert kept.shape == (400, 24)
    labels, _, stats = index.search(q[700:], recall=0.95, return_stats=True)
    got = id_recall(labels, brute_force(x, q[700:], 10)[0])
    assert abs(got - stats["setting"]["expected_recall"]) <= 0.02
    # a refresh after the index grew by more than its share reuses those queries
    index.add(data(900, seed=7))
    index.search(q[:1], recall=0.95)
    table = index._calibrations.tables[("search", 10)]
    assert (table.source, table.n, table.queries.shape) == ("queries", 4900, (400, 24))


def test_explore_targets_are_met_on_other_stored_vectors(built):
    index, x, _ = built
    index = fresh_copy(index)
    entries = np.arange(3, len(x), 7)
    index.calibrate(method="explore", sample=400)
    labels, _, stats = index.explore(entries, recall=0.95, return_stats=True)
    table = index._calibrations.tables[("explore", 10)]
    assert table.source == "stored"
    d = ((x[entries, None, :] - x[None, :, :]) ** 2).sum(-1)
    d[np.arange(len(entries)), entries] = np.inf
    truth = np.argsort(d, axis=1)[:, :10]
    expected = stats["setting"]["expected_recall"]
    assert expected >= 0.95 - 1e-9
    assert abs(id_recall(labels, truth) - expected) <= 0.02


def test_quantized_index_sweeps_its_reranks():
    x = data(3000, seed=8)
    index = deg.Index.build(x, edges_per_vertex=12, quantize="sq8", progress=False)
    summary = index.calibrate(k=5, sample=250)
    assert {p["rerank"] for p in summary["points"]} == {10, 20}
    q = data(500, seed=9)
    labels, _, stats = index.search(q, k=5, recall=0.9, return_stats=True)
    assert stats["setting"]["rerank"] in (10, 20)
    got = id_recall(labels, brute_force(x, q, 5)[0])
    assert abs(got - stats["setting"]["expected_recall"]) <= 0.03


def test_an_edge_coded_index_meets_a_target_without_reranks():
    x = data(3000, seed=8)
    index = deg.Index.build(x, edges_per_vertex=12, quantize="rabitq", progress=False)
    summary = index.calibrate(k=5, sample=250)
    assert {p["rerank"] for p in summary["points"]} == {None}  # every expansion is exact
    q = data(500, seed=9)
    labels, _, stats = index.search(q, k=5, recall=0.9, return_stats=True)
    got = id_recall(labels, brute_force(x, q, 5)[0])
    assert abs(got - stats["setting"]["expected_recall"]) <= 0.03


@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_other_metrics_meet_a_target(metric):
    x = data(3000, seed=10)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # ip on unit vectors, as advised
    q = data(400, seed=11)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    index = deg.Index.build(x, metric=metric, edges_per_vertex=12, progress=False)
    labels, _, stats = index.search(q, recall=0.95, return_stats=True)
    got = id_recall(labels, brute_force(x, q, 10, metric)[0])
    assert abs(got - stats["setting"]["expected_recall"]) <= 0.03


def test_real_data_held_out_target_on_sift_small():
    shared_file("siftsmall")
    ds = datasets.load("siftsmall-128-euclidean", data_dir=str(shared_file()))
    index = deg.Index.build(ds.train, edges_per_vertex=30, progress=False)
    for target in (0.9, 0.95, 0.99):
        labels, _, stats = index.search(ds.test, recall=target, return_stats=True)
        got = id_recall(labels, ds.neighbors[:, :10])
        # 100 queries: one query's miss moves recall by up to 0.01
        assert abs(got - stats["setting"]["expected_recall"]) <= 0.025, (target, got)


# ---------------------------------------------------------------- kept, refreshed, saved


def test_refresh_follows_the_changed_share(built):
    index, _x, q = built
    index = fresh_copy(index)
    index.calibrate(refresh=0.2, sample=300)
    first = index._calibrations.tables[("search", 10)]
    index.add(data(400, seed=12))  # 10%: kept
    index.search(q[:1], recall=0.9)
    assert index._calibrations.tables[("search", 10)] is first
    index.remove(index.labels[:500])  # 900 changed of 4000: stale
    index.search(q[:1], recall=0.9)
    second = index._calibrations.tables[("search", 10)]
    assert second is not first and (second.n, second.sample) == (3900, 300)


def test_calibrations_survive_save_load_and_pickle(built, tmp_path):
    index, _x, q = built
    index = fresh_copy(index)
    index.calibrate(sample=200)
    index.calibrate(method="explore", k=5, sample=200)
    index.add(data(100, seed=13))
    path = tmp_path / "c.deg"
    index.save(path)
    unpickled = pickle.loads(pickle.dumps(index))
    for other in (deg.Index.load(path), deg.Index.load(path, mmap=True), unpickled):
        mine = {key: t.summary() for key, t in index._calibrations.tables.items()}
        theirs = {key: t.summary() for key, t in other._calibrations.tables.items()}
        assert mine == theirs
        assert not other._calibrations.tables[("search", 10)].stale(100)  # 100 of 4000 changed
        assert other._calibrations.tables[("search", 10)].stale(701)
        before = {key: id(t) for key, t in other._calibrations.tables.items()}
        a = other.search(q[:50], recall=0.9, return_stats=True)
        b = index.search(q[:50], recall=0.9, return_stats=True)
        assert a[2]["setting"] == b[2]["setting"]  # the same table, not measured again
        assert {key: id(t) for key, t in other._calibrations.tables.items()} == before


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda c: c.update(method="scan"), "calibration method"),
        (lambda c: c.pop("points"), "'points' is missing"),
        (lambda c: c.update(points=[]), "1 to 512 points"),
        (lambda c: c["points"][0].__setitem__(0, 99), "max_degree"),
        (lambda c: c["points"][0].__setitem__(3, 1.5), "recall"),
        (lambda c: c["points"][0].__setitem__(5, float("inf")), "seconds must be finite"),
        (lambda c: c["points"][0].pop(), "list of 6 values"),
        (lambda c: c.update(k="ten"), "k"),
        (lambda c: c.update(changed=-1), "changed"),
    ],
)
def test_a_damaged_calibration_is_refused(built, spoil, match):
    index = fresh_copy(built[0])
    index.calibrate(sample=100)
    fn, (metric, params, arrays) = index.__reduce__()
    spoil(params["calibration"][0])
    with pytest.raises(ValueError, match=f"invalid parameters: .*{match}"):
        fn(metric, params, arrays)


def test_two_tables_for_one_key_are_refused(built):
    index = fresh_copy(built[0])
    index.calibrate(sample=100)
    fn, (metric, params, arrays) = index.__reduce__()
    params["calibration"] *= 2
    with pytest.raises(ValueError, match="two tables for one method and k"):
        fn(metric, params, arrays)


def test_concurrent_first_searches_calibrate_once(built, monkeypatch):
    index, _x, q = built
    index = fresh_copy(index)
    calls = []
    measure = calibration.measure

    def counted(*args, **kwargs):
        calls.append(1)
        return measure(*args, **kwargs)

    monkeypatch.setattr(calibration, "measure", counted)
    out = []
    threads = [
        threading.Thread(target=lambda: out.append(index.search(q[:20], recall=0.9)[0]))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 3
    assert all(np.array_equal(o, out[0]) for o in out)


@settings(max_examples=6, deadline=None)
@given(target=st.floats(0.5, 1.0), k=st.sampled_from([1, 10]))
def test_any_target_gets_a_measured_setting(built, target, k):
    """Whatever the target, the setting is one the sweep measured or lies between two."""
    index = built[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a target above every point warns (tested above)
        _, _, stats = index.search(built[2][:5], k=k, recall=target, return_stats=True)
    s = stats["setting"]
    table = index._calibrations.tables[("search", k)]
    curve = [p for p in table.points if p.max_degree == s["max_degree"]]
    assert curve and min(p.eps for p in curve) <= s["eps"] <= max(p.eps for p in curve)
