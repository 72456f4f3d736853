"""The benchmark harness on hand-made cases and a tiny synthetic end-to-end run."""

import json

import numpy as np
import pytest

from bench import metrics
from bench.engines import ENGINES


def test_threshold_recall_forgives_ties_id_recall_does_not():
    gt_ids = np.array([[0, 1, 2]])
    gt_d = np.array([[1.0, 2.0, 3.0]])
    ids = np.array([[0, 1, 7]])  # 7 is not in the GT but as close as the 3rd neighbour
    dist = np.array([[1.0, 2.0, 3.0005]])
    assert metrics.threshold_recall(dist, gt_d, 3) == 1.0
    assert metrics.id_recall(ids, gt_ids, 3) == pytest.approx(2 / 3)
    assert metrics.threshold_recall(np.array([[1.0, 2.0, 3.1]]), gt_d, 3) == pytest.approx(2 / 3)


def test_true_distances_both_metrics_and_missing():
    x = np.array([[0, 0], [3, 4], [1, 0]], dtype=np.float32)
    q = np.array([[0, 0], [1, 0]], dtype=np.float32)
    d = metrics.true_distances(x, q, np.array([[1, -1], [2, 0]]), "euclidean")
    assert d[0, 0] == pytest.approx(5) and np.isinf(d[0, 1]) and d[1, 0] == pytest.approx(0)
    a = metrics.true_distances(x, q[1:], np.array([[2, 1]]), "angular")
    assert a[0, 0] == pytest.approx(0) and a[0, 1] == pytest.approx(1 - 3 / 5)


def test_pareto_and_qps_at_target():
    pts = [(0.80, 1000), (0.90, 900), (0.85, 500), (0.95, 400), (0.99, 100), (0.97, 50)]
    assert metrics.pareto(pts) == [(0.80, 1000), (0.90, 900), (0.95, 400), (0.99, 100)]
    assert metrics.qps_at(pts, 0.9) == 900 and metrics.qps_at(pts, 0.96) == 100
    assert metrics.qps_at(pts, 0.995) is None


def test_tiny_end_to_end_run(tmp_path, capsys):
    from bench.run import main
    from deg import datasets
    ds = datasets.synthetic(1500, 40, 16, seed=2)
    datasets.write_hdf5(tmp_path / "tiny.hdf5", ds)
    names = [n for n in ("deg", "faiss-hnsw") if ENGINES[n].available()]
    rows = main(["--dataset", str(tmp_path / "tiny.hdf5"), "--algorithms", ",".join(names),
                 "--queries", "40", "--explore", "30", "--latency-queries", "5", "--runs", "1",
                 "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "unindexed queries, k=10" in out and "indexed queries, k=10" in out
    folder = tmp_path / "out" / "tiny"
    lines = [json.loads(x) for f in folder.glob("run-*.jsonl") for x in f.read_text().split("\n")
             if x]
    assert len(lines) == len(rows) and {r["engine"] for r in lines} == set(names)
    assert {r["kind"] for r in lines} == {"unindexed", "indexed"}
    deg_rows = [r for r in lines if r["engine"] == "deg"]
    assert max(r["recall"] for r in deg_rows) > 0.95 and deg_rows[0]["dist_comps"] > 0
    for png in ("unindexed.png", "indexed.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "deg" in (folder / "summary.txt").read_text()


def test_ann_benchmarks_wrapper():
    from bench.ann_benchmarks.module import DEG
    x = np.random.default_rng(0).random((500, 8), dtype=np.float32)
    algo = DEG("euclidean", {"edges_per_vertex": 8})
    algo.fit(x)
    algo.set_query_arguments(0.2)
    assert algo.query(x[3], 5)[0] == 3
    algo.batch_query(x[:10], 5)
    assert [row[0] for row in algo.get_batch_results()] == list(range(10))
    assert algo.get_additional()["dist_comps"] > 0
    assert str(algo) == "DEG(edges_per_vertex=8,eps=0.2)"
    with pytest.raises(NotImplementedError):
        DEG("hamming", {})


def test_dynamic_benchmark_streams_end_with_the_first_half(tmp_path, capsys):
    from bench import dynamic
    from deg import datasets
    datasets.write_hdf5(tmp_path / "dyn.hdf5", datasets.synthetic(800, 30, 12, seed=4))
    rows = dynamic.main(["--dataset", str(tmp_path / "dyn.hdf5"), "--queries", "30",
                         "--eps", "0,0.2", "--out", str(tmp_path / "dyn.jsonl")])
    assert [r["stream"] for r in rows] == ["add-half", "add-all-remove-half", "interleaved"]
    assert all(r["graph_ok"] for r in rows)
    assert all(r["recall"][0.2] > 0.9 for r in rows)
    assert len((tmp_path / "dyn.jsonl").read_text().splitlines()) == 3
    assert "largest recall drop" in capsys.readouterr().out
