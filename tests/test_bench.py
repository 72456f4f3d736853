"""The benchmark harness on hand-made cases and a tiny synthetic end-to-end run."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from bench import metrics, report
from bench.engines import ENGINES, FaissHNSW


def test_threshold_recall_forgives_ties_id_recall_does_not():
    gt_ids = np.array([[0, 1, 2]])
    gt_d = np.array([[1.0, 2.0, 3.0]])
    ids = np.array([[0, 1, 7]])  # 7 is not in the GT but as close as the 3rd neighbour
    dist = np.array([[1.0, 2.0, 3.0005]])
    assert metrics.threshold_recall(dist, gt_d, 3) == 1.0
    assert metrics.id_recall(ids, gt_ids, 3) == pytest.approx(2 / 3)
    assert metrics.threshold_recall(np.array([[1.0, 2.0, 3.1]]), gt_d, 3) == pytest.approx(2 / 3)


def test_recall_rules_agree_on_exact_answers_and_count_missing_results_as_misses():
    gt_ids = np.array([[4, 5], [6, 7]])
    gt_d = np.array([[0.5, 1.0], [0.2, 0.4]])
    ids = np.array([[5, 4], [6, -1]])  # order within the top k does not matter; -1 is missing
    dist = np.array([[1.0, 0.5], [0.2, np.inf]])
    assert metrics.threshold_recall(dist, gt_d, 2) == pytest.approx(3 / 4)
    assert metrics.id_recall(ids, gt_ids, 2) == pytest.approx(3 / 4)
    # only the first k columns count, whatever follows
    assert metrics.threshold_recall(np.array([[0.5, 9.0, 1.0]]), gt_d[:1], 1) == 1.0


def test_true_distances_both_metrics_and_missing():
    x = np.array([[0, 0], [3, 4], [1, 0]], dtype=np.float32)
    q = np.array([[0, 0], [1, 0]], dtype=np.float32)
    d = metrics.true_distances(x, q, np.array([[1, -1], [2, 0]]), "euclidean")
    assert d[0, 0] == pytest.approx(5) and np.isinf(d[0, 1]) and d[1, 0] == pytest.approx(0)
    a = metrics.true_distances(x, q[1:], np.array([[2, 1]]), "angular")
    assert a[0, 0] == pytest.approx(0) and a[0, 1] == pytest.approx(1 - 3 / 5)


def test_pareto_keeps_only_undominated_points():
    pts = [
        (0.80, 1000),
        (0.90, 900),
        (0.85, 500),
        (0.95, 400),
        (0.99, 100),
        (0.97, 50),
        (0.95, 300),
    ]
    assert metrics.pareto(pts) == [(0.80, 1000), (0.90, 900), (0.95, 400), (0.99, 100)]
    assert metrics.pareto([]) == []


def test_qps_at_interpolates_log_qps_linearly_in_logit_recall():
    pts = [(0.8, 1000), (0.9, 900), (0.85, 500), (0.99, 100), (0.97, 50)]
    assert metrics.qps_at(pts, 0.9) == pytest.approx(900)  # a frontier point: its own QPS
    assert metrics.qps_at(pts, 0.5) == pytest.approx(1000)  # below the frontier: fastest point
    assert metrics.qps_at(pts, 0.995) is None  # never reached
    assert metrics.qps_at([], 0.9) is None
    # halfway between logit(0.9) and logit(0.99) in logit space is the geometric mean of QPS
    mid = 1 / (1 + np.exp(-(metrics.logit(0.9) + metrics.logit(0.99)) / 2))
    assert metrics.qps_at(pts, mid) == pytest.approx(np.sqrt(900 * 100))
    q95 = metrics.qps_at(pts, 0.95)
    assert 100 < q95 < 900 and q95 > np.sqrt(900 * 100)  # 0.95 lies before that midpoint
    # the dominated (0.97, 50) does not drag the interpolation down
    assert metrics.qps_at(pts, 0.97) > 100


def test_qps_at_handles_perfect_recall():
    pts = [(0.99, 400), (1.0, 100)]
    assert metrics.qps_at(pts, 1.0) == pytest.approx(100)
    assert 100 < metrics.qps_at(pts, 0.999) < 400


def test_table_reports_na_and_deg_ratios():
    def row(engine, kind, recall, qps):
        return {
            "engine": engine,
            "kind": kind,
            "recall": recall,
            "qps_1t": qps,
            "build_s": 1.0,
            "memory_bytes": 2**20,
        }

    rows = [
        row("deg", "unindexed", 0.9, 200),
        row("deg", "unindexed", 0.99, 100),
        row("peer", "unindexed", 0.95, 100),
        row("peer", "indexed", 0.9, 10),
    ]
    text = report.table(rows, "unindexed", 10)
    deg_line, peer_line, ratio = text.splitlines()[2:]
    mid = metrics.qps_at([(0.9, 200), (0.99, 100)], 0.95)
    assert deg_line.split() == ["deg", "1.0", "1", "200", f"{mid:.0f}", "100", "0.9900"]
    # the peer's fastest setting passes 0.9: a lower bound there, and deg's ratio an upper one
    assert peer_line.split() == ["peer", "1.0", "1", ">=100", "100", "n/a", "0.9500"]
    assert ratio.split() == ["deg", "/", "peer", "<=2.00x", f"{mid / 100:.2f}x", "n/a"]
    assert "peer" in report.table(rows, "indexed", 10) and "deg /" not in report.table(
        rows, "indexed", 10
    )


def test_compare_takes_the_best_peer_per_target_and_the_median_over_runs(tmp_path, capsys):
    from bench import compare

    def row(engine, kind, recall, qps, build=1.0):
        return {
            "engine": engine,
            "kind": kind,
            "recall": recall,
            "qps_1t": qps,
            "qps_batch": 1.8 * qps,
            "build_s": build,
            "threads": 2,
        }

    rows = [
        row("deg", "unindexed", 0.89, 300),
        row("deg", "unindexed", 0.999, 100, 3.0),
        row("a", "unindexed", 0.89, 400),
        row("a", "unindexed", 0.96, 50),
        row("deglib", "unindexed", 0.89, 100, 2.0),
        row("deglib", "unindexed", 0.999, 90, 2.0),
    ]
    got = compare.ratios(rows)

    def at(e, t):
        return metrics.qps_at([(r["recall"], r["qps_1t"]) for r in rows if r["engine"] == e], t)

    best = max(("a", "deglib"), key=lambda e: at(e, 0.95))
    assert got["unindexed@0.95"] == pytest.approx((at("deg", 0.95) / at(best, 0.95), best, ""))
    # "a" never reached 0.99: the best peer there is deglib
    assert got["unindexed@0.99"] == pytest.approx(
        (at("deg", 0.99) / at("deglib", 0.99), "deglib", "")
    )
    assert got["build/deglib"] == (1.5, "deglib", "") and got["batch speed-up"][0] == 1.8
    # every engine's fastest setting (0.89) is below 0.9: no bound there; raise deg's and
    # its 0.9 cell becomes a lower bound, the ratio too
    faster = [{**r, "recall": 0.91} if r is rows[0] else r for r in rows]
    assert compare.ratios(faster)["unindexed@0.9"][2] == ">="
    both = [{**r, "recall": 0.91} if r["recall"] == 0.89 else r for r in rows]
    assert "unindexed@0.9" not in compare.ratios(both)  # both bounded: unknown
    paths = []
    for i, scale in enumerate((1.0, 2.0, 4.0)):
        paths.append(tmp_path / f"run-{i}.jsonl")
        paths[-1].write_text(
            "\n".join(
                json.dumps({**r, "qps_1t": r["qps_1t"] * (scale if r["engine"] == "deg" else 1)})
                for r in rows
            )
        )
    compare.main(paths)
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("unindexed@0.99")]
    median = 2 * at("deg", 0.99) / at("deglib", 0.99)  # deg's QPS scaled by 1, 2 and 4
    assert line[0].split()[-1] == f"{median:.2f}x"


def _tiny_run(tmp_path, algorithms, capsys):
    from bench.run import main
    from deg import datasets

    path = tmp_path / "tiny.hdf5"
    if not path.exists():
        datasets.write_hdf5(path, datasets.synthetic(1500, 40, 16, seed=2))
    rows = main(
        [
            "--dataset",
            str(path),
            "--algorithms",
            ",".join(algorithms),
            "--queries",
            "40",
            "--explore",
            "30",
            "--latency-queries",
            "5",
            "--runs",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    return rows, capsys.readouterr().out, tmp_path / "out" / "tiny"


def test_tiny_end_to_end_run(tmp_path, capsys):
    names = [n for n in ("deg", "faiss-hnsw") if ENGINES[n].available()]
    rows, out, folder = _tiny_run(tmp_path, names, capsys)
    assert "unindexed queries, recall@10" in out and "indexed queries, recall@10" in out
    if "faiss-hnsw" in names:
        assert "deg / faiss-hnsw" in out
    lines = [
        json.loads(x) for f in folder.glob("run-*.jsonl") for x in f.read_text().split("\n") if x
    ]
    assert len(lines) == len(rows) and {r["engine"] for r in lines} == set(names)
    assert {r["kind"] for r in lines} == {"unindexed", "indexed"}
    for r in lines:
        for key in (
            "recall",
            "id_recall",
            "qps_1t",
            "qps_batch",
            "latency_p50_us",
            "latency_p99_us",
            "build_s",
            "compile_s",
            "memory_bytes",
            "rss_delta_bytes",
            "build_params",
            "param",
            "version",
            "date",
        ):
            assert r[key] is not None, key
        assert r["machine"]["cores"] >= 1 and r["versions"]["numpy"] == np.__version__
        assert r["latency_p50_us"] <= r["latency_p99_us"]
    deg_rows = [r for r in lines if r["engine"] == "deg"]
    assert max(r["recall"] for r in deg_rows) > 0.95 and deg_rows[0]["dist_comps"] > 0
    assert deg_rows[0]["build_params"] == {"edges_per_vertex": 30}
    # a sweep ends once recall passes 0.999: no setting after the first such one
    for kind in ("unindexed", "indexed"):
        recalls = [r["recall"] for r in deg_rows if r["kind"] == kind and r["param"][1] is None]
        assert all(r <= 0.999 for r in recalls[:-1])
    for kind in ("unindexed", "indexed"):
        (png,) = folder.glob(f"run-*-{kind}.png")  # this run's own plot
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (summary,) = folder.glob("run-*-summary.txt")
    assert "deg" in summary.read_text() and "commit " in summary.read_text()
    assert all(r["commit"] and r["load_start"] is not None for r in lines)
    # every line written carries how busy the machine was (the file, not only the summary)
    assert all("load_1min" in r and "other_cores" in r and "cpu_mhz" in r for r in lines)
    assert "while measured" in summary.read_text()
    # the engines take turns setting by setting: each kind's first lines come one per engine
    if len(names) > 1:
        for kind in ("unindexed", "indexed"):
            first = [r["engine"] for r in lines if r["kind"] == kind][: len(names)]
            assert sorted(first) == sorted(names), first


def test_missing_engine_is_skipped_with_a_note(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(FaissHNSW, "package", "no_such_package_for_deg_tests")
    rows, out, folder = _tiny_run(tmp_path, ["faiss-hnsw"], capsys)
    assert rows == [] and "faiss-hnsw: skipped" in out
    assert list(folder.glob("run-*-unindexed.png"))  # an empty run still writes its outputs
    with pytest.raises(SystemExit, match="unknown engine"):
        _tiny_run(tmp_path, ["no-such-engine"], capsys)


def test_peer_explore_drops_the_vertex_itself():
    if not FaissHNSW.available():
        pytest.skip("faiss is not installed")
    x = np.random.default_rng(3).random((300, 8), dtype=np.float32)
    engine = FaissHNSW("euclidean", 1, M=8, efConstruction=40)
    engine.fit(x)
    engine.set_query_arguments(64)
    entries = np.array([0, 150, 299])
    ids = engine.explore(entries, 5)
    assert ids.shape == (3, 5) and not (ids == entries[:, None]).any()


def test_ann_benchmarks_wrapper():
    from bench.ann_benchmarks.module import DEG

    x = np.random.default_rng(0).random((500, 8), dtype=np.float32)
    algo = DEG("euclidean", {"edges_per_vertex": 8})
    algo.fit(x)
    algo.set_query_arguments(0.2)
    assert algo.query(x[3], 5)[0] == 3
    one = algo.get_additional()["dist_comps"]
    assert one > 0
    algo.batch_query(x[:10], 5)
    assert [row[0] for row in algo.get_batch_results()] == list(range(10))
    # ANN-Benchmarks divides by run_count * queries: a total, reset per query setting
    assert algo.get_additional()["dist_comps"] > one
    algo.set_query_arguments(0.0)
    assert algo.get_additional()["dist_comps"] == 0
    assert str(algo) == algo.name == "DEG(edges_per_vertex=8,eps=0.0)"
    assert algo.get_memory_usage() > 0
    algo.done()
    with pytest.raises(NotImplementedError):
        DEG("hamming", {})


def test_ann_benchmarks_config_has_the_run_groups_shape():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "bench" / "ann_benchmarks" / "config.yml").read_text()
    for key in (
        "float:",
        "base_args: ['@metric']",
        "constructor: DEG",
        "module: ann_benchmarks.algorithms.deg",
        "run_groups:",
        "arg_groups:",
        "query_args:",
    ):
        assert key in text


def test_dynamic_benchmark_streams_end_with_the_first_half(tmp_path, capsys):
    from bench import dynamic
    from deg import datasets

    datasets.write_hdf5(tmp_path / "dyn.hdf5", datasets.synthetic(800, 30, 12, seed=4))
    rows = dynamic.main(
        [
            "--dataset",
            str(tmp_path / "dyn.hdf5"),
            "--queries",
            "30",
            "--eps",
            "0,0.2",
            "--out",
            str(tmp_path / "dyn.jsonl"),
        ]
    )
    assert [r["stream"] for r in rows] == ["add-half", "add-all-remove-half", "interleaved"]
    assert all(r["graph_ok"] for r in rows)
    assert all(r["recall"][0.2] > 0.9 for r in rows)
    assert len((tmp_path / "dyn.jsonl").read_text().splitlines()) == 3
    assert "largest recall drop" in capsys.readouterr().out


def test_limits_interpolates_and_imports_a_deglib_graph_faithfully():
    """bench.limits: interpolation at a recall target, and deglib's graph in deg's storage
    (same neighbour sets, exact weights, all invariants), searchable by deg's kernel."""
    from bench import limits
    from tests.conftest import assert_graph_ok, low_dim_data

    pts = [(0.90, 100.0, 1e-4), (0.96, 160.0, 2e-4), (0.99, 300.0, 4e-4)]
    assert limits.at(pts, 0.95, 1) == pytest.approx(150.0)
    assert limits.at(pts, 0.99, 2) == pytest.approx(4e-4)
    assert np.isnan(limits.at(pts, 0.999, 1))
    deglib = pytest.importorskip("deglib")
    x = low_dim_data(1500, dim=12, seed=3)
    graph = deglib.builder.build_from_data(
        x, metric=deglib.Metric.FP32_L2, edges_per_vertex=8, thread_count=1
    )
    index = limits.deglib_as_index(graph, x, "l2")
    assert_graph_ok(index)
    for v in (0, 700, 1499):
        assert sorted(np.asarray(graph.get_neighbors(v)).tolist()) == sorted(
            index.internals().store.neighbors[v]
        )
    # internal ids are rows of x only if the imported graph is a good graph over those rows
    from tests.conftest import brute_force, recall

    q = low_dim_data(50, dim=12, seed=4)
    labels, _ = index.search(q, k=5, eps=0.2)
    assert recall(labels, brute_force(x, q, 5)[0]) >= 0.9


def test_best_times_repeat_short_calls_until_the_minimum_time():
    from bench import measure

    calls = []

    def call():
        calls.append(1)
        return len(calls)

    [(out, best)] = measure.best_times([(None, call)], 3)  # no minimum: the runs asked for
    assert (out, len(calls)) == (3, 3) and best >= 0
    calls.clear()
    [(out, best)] = measure.best_times([(None, call)], 3, min_seconds=3600)  # capped
    assert out == len(calls) == measure.MAX_RUNS

    def slow():
        calls.append(1)
        time.sleep(0.02)

    calls.clear()
    measure.best_times([(None, slow)], 1, min_seconds=0.05)  # 0.02 s a call: 1 too few, 3 enough
    assert 2 <= len(calls) <= 3


def test_best_times_take_turns_until_each_call_has_its_runs():
    from bench import measure

    log = []
    calls = [
        (lambda: log.append("set 1"), lambda: log.append("one") or "a"),
        (lambda: log.append("set 2"), lambda: log.append("two") or "b"),
    ]
    (a, best_a), (b, best_b) = measure.best_times(calls, 2)
    assert (a, b) == ("a", "b") and best_a >= 0 and best_b >= 0
    assert log == ["set 1", "one", "set 2", "two"] * 2  # alternating, each after its set-up
    log.clear()

    def slow():
        log.append("slow")
        time.sleep(0.02)

    calls = [(None, slow), (None, lambda: log.append("fast"))]
    measure.best_times(calls, 1, min_seconds=0.05)  # the fast call goes on alone once slow is done
    assert 2 <= log.count("slow") <= 3 and log.count("fast") == measure.MAX_RUNS
    assert log[:2] == ["slow", "fast"]


def test_cells_a_sweep_did_not_reach_down_to_are_marked_lower_bounds():
    """A peer whose fastest setting already passes 0.9: its QPS there is a lower bound
    (>=), and deg's ratio to it an upper bound (<=)."""
    rows = [
        {
            "engine": e,
            "kind": "unindexed",
            "recall": r,
            "qps_1t": q,
            "build_s": 1.0,
            "memory_bytes": 2**20,
        }
        for e, pts in (
            ("deg", [(0.85, 3000), (0.93, 2000), (0.995, 500)]),
            ("peer", [(0.96, 1000), (0.995, 250)]),
        )
        for r, q in pts
    ]
    text = report.table(rows, "unindexed", 10)
    peer = next(line for line in text.splitlines() if line.startswith("peer"))
    ratio = next(line for line in text.splitlines() if line.startswith("deg / peer"))
    assert peer.split()[3:5] == [">=1000", ">=1000"] and peer.split()[5].isdigit()
    assert ratio.split()[3].startswith("<=") and not ratio.split()[5].startswith(("<", ">"))


def test_busy_machine_is_warned_about():
    rows = [{"engine": "deg", "other_cores": 0.3}, {"engine": "hnswlib", "other_cores": 1.7}]
    warning = report.busy_warning(rows, 2)
    assert warning.startswith("WARNING") and "hnswlib 1.70" in warning
    assert report.busy_warning(rows[:1], 2) is None


def test_own_work_is_not_counted_as_other_processes():
    """The benchmark's own threads keep the cores busy: only other processes' time counts."""
    start = report.cpu_sample()
    if start is None:
        pytest.skip("no /proc/stat here")
    time.sleep(0.5)  # a window without our own work: what other processes do anyway
    idle = report.others(start, report.cpu_sample())
    start = report.cpu_sample()
    end = time.process_time() + 0.5
    while time.process_time() < end:  # half a second of our own work, on one core
        pass
    # counted, our work would add a whole core; excluded, only the others' drift remains
    assert report.others(start, report.cpu_sample()) < idle + 0.6


def test_ann_benchmarks_index_size_is_the_index():
    """ANN-Benchmarks reports the resident memory grown over fit() as the index size: deg's
    import and kernels are loaded when the adapter module is imported, not in fit(). In a new
    process, as ANN-Benchmarks runs each algorithm."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from bench.ann_benchmarks.module import DEG\n"
        "x = np.random.default_rng(1).random((20000, 32), dtype=np.float32)\n"
        "algo = DEG('euclidean', {'edges_per_vertex': 16})\n"
        "before = algo.get_memory_usage()\n"
        "algo.fit(x)\n"
        "print((algo.get_memory_usage() - before) * 1024, algo.index.nbytes)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[1],
    )
    grown, nbytes = (float(v) for v in out.stdout.split())
    assert grown < 2 * nbytes + 32 * 2**20, (grown, nbytes, out.stderr[-500:])


def test_sweep_skips_a_stopped_group_from_then_on():
    from bench.run import sweep

    class Fake:
        sweep = ((0.0, None), (0.1, None), (0.0, 20), (0.1, 20))

    stopped = set()
    settings = sweep(Fake, stopped)
    assert next(settings) == ((0.0, None), None)
    stopped.add(None)  # the whole-graph group passed the stop recall
    assert list(settings) == [((0.0, 20), 20), ((0.1, 20), 20)]


def test_surroundings_name_each_engine_with_its_load_and_clock():
    rows = [
        {"engine": "hnswlib", "other_cores": 0.2, "cpu_mhz": 2600, "build_other_cores": 0.1},
        {"engine": "deg", "other_cores": 0.4, "cpu_mhz": 2600, "build_other_cores": 1.5},
        {"engine": "deg", "other_cores": 0.2, "cpu_mhz": 2700, "build_other_cores": 1.5},
    ]
    lines = report.surroundings(rows).splitlines()
    assert lines[1].split() == ["deg", "0.30/0.40,", "build", "1.50;", "2600-2700", "MHz"]
    assert lines[2].split()[0] == "hnswlib"
    # a busy build alone is enough for the warning
    assert "deg 1.50" in report.busy_warning(rows, 2)
    assert report.cpu_mhz() is None or report.cpu_mhz() > 0


@pytest.mark.parametrize(
    "name,params,value",
    [
        ("symphonyqg", {"max_degree": 32, "ef_construction": 100}, 64),
        ("svs", {"graph_max_degree": 32, "window_size": 64, "max_candidate_pool_size": 128}, 64),
        ("faiss-hnswsq", {"M": 8, "efConstruction": 64}, 64),
        ("usearch-f16", {"connectivity": 8, "expansion_add": 64}, 64),
    ],
)
def test_compact_and_quantized_peers_answer_queries(name, params, value):
    cls = ENGINES[name]
    if not cls.available():
        pytest.skip(cls.unavailable())
    rng = np.random.default_rng(5)
    x = rng.random((800, 64), dtype=np.float32)  # SymphonyQG's rotation takes only some dims
    engine = cls("euclidean", 2, **params)
    engine.fit(x)
    engine.set_threads(1)
    engine.set_query_arguments(value)
    q = x[:20] + 0.001
    ids = engine.query(q, 5)
    exact = np.argsort(((q[:, None] - x[None]) ** 2).sum(-1), axis=1)[:, :5]
    hits = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, exact)])
    assert ids.shape == (20, 5) and ids.dtype == np.int64 and hits > 0.8
    entries = np.array([0, 400, 799])
    assert not (engine.explore(entries, 5) == entries[:, None]).any()
    assert engine.memory_bytes() > x.nbytes / 4


def test_textset_reads_package_descriptions(tmp_path):
    from bench import textset

    text = (
        "Package: alpha\nVersion: 1\nDescription: first tool\nTag: a,\n b::c\n\n"
        "Package: beta\nDescription: second: with a colon\n Long text line\n\n"
        "Package: gamma\nVersion: 2\n\n"  # no description: left out
        "Package: alpha\nDescription: first tool\n"  # the same text again: once
    )
    path = tmp_path / "x_Packages"
    path.write_text(text)
    assert textset.descriptions(textset.read_list(str(path))) == [
        "alpha: first tool",
        "beta: second: with a colon",
    ]


def test_svs_lvq_is_skipped_with_its_reason_off_intel_cpus(monkeypatch):
    """scalable-vs exits the whole process when LVQ data is loaded on another vendor's CPU,
    so the bench must not start it there."""
    from bench import engines

    lvq = ENGINES["svs-lvq4x8"]
    monkeypatch.setattr(engines, "cpu_vendor", lambda: "AuthenticAMD")
    assert "Intel CPUs only" in lvq.unavailable() and "AuthenticAMD" in lvq.unavailable()
    assert not lvq.available()
    monkeypatch.setattr(engines, "cpu_vendor", lambda: "GenuineIntel")
    assert lvq.unavailable() == ENGINES["svs"].unavailable()  # then only the package counts
    monkeypatch.setattr(engines, "cpu_vendor", lambda: None)
    assert lvq.unavailable() == ENGINES["svs"].unavailable()
