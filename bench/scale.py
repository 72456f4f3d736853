"""``python -m bench --scale``: how build time, memory and query speed grow with n.

The collections are Fashion-MNIST (60k) and its deformed growths (``deg._deformed``:
250k, 1M, optionally 2M rows, each a prefix of the next), queried by Fashion-MNIST's test
images with exact ground truth (``deg.datasets``, built locally and cached on first use).
Each (engine, n) runs in a process of its own, so its peak resident memory is its own:
build with ``--threads`` threads; index bytes (the engine's own count) and the RSS growth
over the loaded data; then its search sweep on one thread over the first ``--queries``
test queries, best of ``--runs``, recall@10 by ANN-Benchmarks' threshold rule; QPS at
recall 0.95 and 0.99 read off the frontier, and deg's distance computations per query.

The table, the growth exponents fitted to log(time) against log(n), JSON lines and a
log-log plot go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import metrics, report
from bench.engines import DEFAULT_PARAMS, ENGINES
from bench.measure import best_times
from bench.run import sweep

SIZES = {
    "60k": "fashion-mnist-784-euclidean",
    "250k": "fashion-mnist-250k-784-euclidean",
    "1m": "fashion-mnist-1m-784-euclidean",
    "2m": "fashion-mnist-2m-784-euclidean",
}
TARGETS = (0.95, 0.99)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench --scale", description=__doc__.split("\n")[0])
    p.add_argument("--scale", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sizes", default="60k,250k,1m", help=f"from {', '.join(SIZES)}")
    p.add_argument("--algorithms", default="deg,symphonyqg,svs,faiss-hnsw")
    p.add_argument("--threads", type=int, default=2, help="build threads (default: 2)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale"))
    p.add_argument("--child", nargs=2, metavar=("ENGINE", "SIZE"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def rss_bytes(field="VmRSS"):
    """This process's resident (``VmRSS``) or peak resident (``VmHWM``) bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(name, size, args):
    """One engine at one size, measured in this process; prints one JSON row."""
    from deg import datasets

    ds = datasets.load(SIZES[size], data_dir=args.data_dir, download=False, progress=False)
    x, q = ds.train, ds.test[: args.queries]
    gt_d = ds.distances[: args.queries]
    engine = ENGINES[name](ds.metric, args.threads, **DEFAULT_PARAMS[name])
    prepared = engine.prepare(x)
    engine.warmup(prepared[:2000], q[:10], 10)
    base = rss_bytes()
    start = time.perf_counter()
    engine.fit(prepared)
    build = time.perf_counter() - start
    peak = rss_bytes("VmHWM")
    engine.set_threads(1)
    points, dcs = [], []
    stopped = set()  # each group of settings (deg's max_degree) stops on its own
    for value, group in sweep(ENGINES[name], stopped):
        engine.set_query_arguments(value)
        [(ids, seconds)] = best_times([(None, lambda: engine.query(q, 10))], args.runs)
        dist = metrics.true_distances(x, q, np.asarray(ids), ds.metric)
        recall = metrics.threshold_recall(dist, gt_d, 10)
        points.append((recall, len(q) / seconds))
        dcs.append((recall, engine.last_dist_comps, str(value)))
        if recall > 0.999:
            stopped.add(group)
    row = {
        "engine": name,
        "size": size,
        "n": len(x),
        "dim": x.shape[1],
        "params": DEFAULT_PARAMS[name],
        "build_seconds": round(build, 2),
        "build_threads": args.threads,
        "index_bytes": int(engine.memory_bytes()),
        "floor_bytes": len(x) * x.shape[1] * 4,  # the float32 vectors
        "graph_floor_bytes": len(x) * 30 * 8,  # degree 30: an int32 id and a float32 weight
        "rss_before_build": base,
        "peak_rss": peak,
        "rss_after": rss_bytes(),
        "points": points,
        "dist_comps": dcs,
    }
    for target in TARGETS:
        row[f"qps@{target}"] = metrics.qps_at(points, target)
        reached = [d for r, d, _ in dcs if r >= target and d is not None]
        row[f"dc@{target}"] = min(reached) if reached else None
    print(json.dumps(row), flush=True)


def growth(rows, key):
    """The exponent b of key ~ n^b, least squares in log-log (None with fewer than 2)."""
    pts = [(r["n"], r[key]) for r in rows if r.get(key)]
    if len(pts) < 2:
        return None
    n, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(n, y, 1)[0])


def main(argv=None):
    args = parse(argv)
    if args.child:
        return child(*args.child, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = report.machine()
    print(json.dumps(machine), report.now(), report.commit(), flush=True)
    rows = []
    for size in args.sizes.split(","):
        for name in args.algorithms.split(","):
            why = ENGINES[name].unavailable()
            if why:
                print(f"{name}: skipped, {why}", flush=True)
                continue
            cmd = [sys.executable, "-m", "bench.scale", "--child", name, size]
            cmd += ["--threads", str(args.threads), "--queries", str(args.queries)]
            cmd += ["--runs", str(args.runs)]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            if done.returncode:
                print(f"{name} at {size} failed:\n{done.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row["load_after"] = report.load_now()
            rows.append(row)
            print(line(row), flush=True)
            with open(out / "scale.jsonl", "a") as f:  # row by row: a long run may be cut
                f.write(json.dumps(dict(row, machine=machine)) + "\n")
    for name in {r["engine"] for r in rows}:
        mine = [r for r in rows if r["engine"] == name]
        exps = {key: growth(mine, key) for key in ("build_seconds", "qps@0.95", "qps@0.99")}
        print(
            f"{name}: growth exponents " + ", ".join(f"{k} n^{v:.2f}" for k, v in exps.items() if v)
        )
    plot(rows, out / "scale.png")


def line(r):
    def cell(v):
        return "-" if v is None else f"{v:,.0f}"

    gib = 2.0**30
    return (
        f"{r['engine']:12} n={r['n']:>9,} build {r['build_seconds']:7.1f} s, index "
        f"{r['index_bytes'] / gib:5.2f} GiB (vectors + d=30 graph "
        f"{(r['floor_bytes'] + r['graph_floor_bytes']) / gib:5.2f}), RSS growth "
        f"{(r['rss_after'] - r['rss_before_build']) / gib:5.2f} GiB, peak "
        f"{(r['peak_rss'] - r['rss_before_build']) / gib:5.2f}, QPS@0.95 "
        f"{cell(r['qps@0.95'])} @0.99 {cell(r['qps@0.99'])}, dc@0.95 {cell(r['dc@0.95'])} "
        f"@0.99 {cell(r['dc@0.99'])}"
    )


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for name in sorted({r["engine"] for r in rows}):
        mine = sorted((r for r in rows if r["engine"] == name), key=lambda r: r["n"])
        n = [r["n"] for r in mine]
        for ax, key in zip(axes, ("build_seconds", "qps@0.95", "qps@0.99")):
            ax.loglog(n, [r[key] or np.nan for r in mine], "o-", label=name)
            ax.set_title(key.replace("_", " "))
            ax.set_xlabel("n")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
