"""``python -m bench.targets``: searches that ask for a recall (``search(..., recall=)``).

For each dataset deg is built on the train set, calibrated (``Index.calibrate``), and each
target recall is asked of queries the calibration never saw; the table shows asked against
achieved recall@10 (ANN-Benchmarks' threshold rule against the dataset's ground truth, and
the share of the true ids returned) and
the 1-thread QPS of the chosen setting (best of ``--runs``). Calibrations:

* ``held-out``: no caller queries; a copy of the index holds out a sample of its vectors
  and searches them. Checked on every test query.
* ``queries``: calibrated on the first ``--calibrate`` test queries, checked on the rest.
* ``explore``: explorations calibrated on stored vectors; checked on ``--explore`` other
  stored vectors (evenly spaced, against the dataset's explore ground truth).

The calibration's own cost (seconds, 2 cores) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import deg
from bench import metrics, report

TARGETS = (0.9, 0.95, 0.99)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__.split("\n")[0])
    p.add_argument(
        "--datasets",
        default="fashion-mnist-784-euclidean,siftsmall-128-euclidean",
        help="comma-separated registered names (default: %(default)s)",
    )
    p.add_argument("--quantize", default="", help="also a quantized index, e.g. sq8")
    p.add_argument("--calibrate", type=int, default=1000, help="test queries to calibrate on")
    p.add_argument("--explore", type=int, default=2000, help="stored vectors to check explore on")
    p.add_argument("--runs", type=int, default=3, help="timed runs, the best is kept")
    p.add_argument("--data-dir", default=None, help="where datasets are cached")
    p.add_argument("--out", default=None, help="also write the rows as JSON lines here")
    return p.parse_args(argv)


def best_seconds(call, runs):
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return best, out


def check_search(index, ds, queries, gt_ids, gt_d, target, runs):
    """Achieved recall and QPS of ``search(queries, recall=target)`` on one thread."""
    seconds, (ids, _, stats) = best_seconds(
        lambda: index.search(queries, k=10, recall=target, threads=1, return_stats=True), runs
    )
    dist = metrics.true_distances(ds.train, queries, ids, ds.metric)
    achieved = metrics.threshold_recall(dist, gt_d, 10), metrics.id_recall(ids, gt_ids, 10)
    return achieved, len(queries) / seconds, stats["setting"]


def check_explore(index, ds, entries, target, runs):
    gt_ids, gt_d = ds.explore_groundtruth(entries, 10)
    seconds, (ids, _, stats) = best_seconds(
        lambda: index.explore(entries, k=10, recall=target, threads=1, return_stats=True), runs
    )
    dist = metrics.true_distances(ds.train, ds.train[entries], ids, ds.metric)
    achieved = metrics.threshold_recall(dist, gt_d, 10), metrics.id_recall(ids, gt_ids, 10)
    return achieved, len(entries) / seconds, stats["setting"]


def run_dataset(name, quantize, args, sink):
    ds = deg.datasets.load(name, data_dir=args.data_dir)
    q, gt_ids, gt_d = ds.test, ds.neighbors, ds.distances
    start = time.perf_counter()
    index = deg.Index.build(ds.train, metric=ds.deg_metric, quantize=quantize, progress=False)
    built = time.perf_counter() - start
    label = name + (f" quantize={quantize}" if quantize else "")
    print(f"\n{label}: n={len(index)}, {len(q)} test queries, built in {built:.1f} s")
    m = min(args.calibrate, len(q) // 2)
    entries = np.linspace(0, len(ds.train) - 1, min(args.explore, len(ds.train))).astype(np.int64)
    modes = [
        ("held-out", {}, q, gt_ids, gt_d),
        ("queries", {"queries": q[:m]}, q[m:], gt_ids[m:], gt_d[m:]),
        ("explore", {"method": "explore"}, None, None, None),
    ]
    for mode, kwargs, check_q, check_ids, check_d in modes:
        start = time.perf_counter()
        table = index.calibrate(**kwargs)
        cost = time.perf_counter() - start
        for target in TARGETS:
            if mode == "explore":
                achieved, qps, setting = check_explore(index, ds, entries, target, args.runs)
                checked = len(entries)
            else:
                achieved, qps, setting = check_search(
                    index, ds, check_q, check_ids, check_d, target, args.runs
                )
                checked = len(check_q)
            row = {
                "dataset": label,
                "mode": mode,
                "sample": table["sample"],
                "source": table["source"],
                "calibration_seconds": round(cost, 2),
                "checked": checked,
                "asked": target,
                "achieved": round(achieved[0], 4),
                "achieved_ids": round(achieved[1], 4),
                "qps": round(qps),
                "eps": round(setting["eps"], 4),
                "max_degree": setting["max_degree"],
                "rerank": setting["rerank"],
            }
            sink.append(row)
            print(
                f"  {mode:9} (calibrated in {cost:5.1f} s) asked {target:.2f} achieved "
                f"{achieved[0]:.4f} ({achieved[0] - target:+.4f}; ids {achieved[1]:.4f}) on "
                f"{checked} at {qps:8.0f} QPS: "
                f"eps={setting['eps']:.3f} max_degree={setting['max_degree']} "
                f"rerank={setting['rerank']}"
            )


def main(argv=None):
    args = parse(argv)
    print(json.dumps(report.machine()), report.now(), report.commit())
    rows = []
    for name in args.datasets.split(","):
        run_dataset(name, None, args, rows)
        if args.quantize:
            run_dataset(name, args.quantize, args, rows)
    print("load at the end:", report.load_now())
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
