"""``python -m bench``: build every engine on one dataset, sweep its search parameter, print
the recall/QPS table and write JSON lines and plots under ``bench/results/<dataset>/``.

Per setting and query kind (unindexed: the test queries; indexed: neighbours of stored
vectors, themselves excluded) it measures recall@k by the ANN-Benchmarks threshold rule and by
id overlap, single-thread QPS (all queries in one call, best of ``--runs``), per-query latency
p50/p99 (one call per query), batch QPS on ``--threads`` threads, and distance computations per
query where the engine reports them; per build, build seconds and index bytes.
"""

import argparse
import datetime
import json
import platform
import resource
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from bench import metrics
from bench.engines import DEFAULT_PARAMS, ENGINES, cpu_count
from bench.plot import plot

TARGETS = (0.90, 0.95, 0.99)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist-784-euclidean",
                   help="a registered name (deg.datasets.REGISTRY) or an .hdf5 file")
    p.add_argument("--algorithms", default=",".join(ENGINES))
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=cpu_count(),
                   help="build threads and batch-query threads (default: all cores)")
    p.add_argument("--queries", type=int, default=1000, help="test queries used (first N)")
    p.add_argument("--explore", type=int, default=1000, help="stored vertices used as queries")
    p.add_argument("--latency-queries", type=int, default=200)
    p.add_argument("--runs", type=int, default=3, help="timed runs per setting (best kept)")
    p.add_argument("--stop-recall", type=float, default=0.999,
                   help="end a sweep once recall exceeds this")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), "?")
    except OSError:
        pass
    return {"cpu": cpu, "cores": cpu_count(), "python": platform.python_version()}


def version(engine):
    dist = {"deg": "deg", "faiss-hnsw": "faiss-cpu", "hnswlib": "hnswlib", "deglib": "deglib",
            "pynndescent": "pynndescent"}[engine]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def timed(call, runs):
    best = np.inf
    out = None
    for _ in range(runs):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return out, best


def measure(engine, kind, ctx, args):
    """All measurements of one (engine, setting, query kind)."""
    if kind == "unindexed":
        queries, gt_ids, gt_d = ctx["q"], ctx["gt_ids"], ctx["gt_d"]
        call = lambda: engine.query(queries, args.k)  # noqa: E731
        one = lambda i: engine.query(queries[i:i + 1], args.k)  # noqa: E731
    else:
        entries = ctx["entries"]
        queries, gt_ids, gt_d = ctx["x"][entries], ctx["egt_ids"], ctx["egt_d"]
        call = lambda: engine.explore(entries, args.k)  # noqa: E731
        one = lambda i: engine.explore(entries[i:i + 1], args.k)  # noqa: E731
    engine.set_threads(1)
    call()  # warm: lazy setup and caches are not timed
    ids, best = timed(call, args.runs)
    dist_comps = engine.last_dist_comps
    dist = metrics.true_distances(ctx["x"], queries, ids, ctx["metric"])
    lat = []
    for i in range(min(args.latency_queries, len(queries))):
        start = time.perf_counter()
        one(i)
        lat.append(time.perf_counter() - start)
    engine.set_threads(args.threads)
    _, batch = timed(call, 1)
    return {"kind": kind, "recall": metrics.threshold_recall(dist, gt_d, args.k),
            "id_recall": metrics.id_recall(ids, gt_ids, args.k),
            "qps_1t": len(queries) / best, "qps_batch": len(queries) / batch,
            "latency_p50_us": float(np.percentile(lat, 50) * 1e6),
            "latency_p99_us": float(np.percentile(lat, 99) * 1e6),
            "dist_comps": dist_comps}


def run_engine(name, ctx, args, sink):
    cls = ENGINES[name]
    params = DEFAULT_PARAMS[name]
    if name == "pynndescent":  # numba compiles on first use: do it on a small set first
        warm = cls(ctx["metric"], args.threads, **params)
        warm.fit(ctx["x"][:2000])
        warm.set_query_arguments(cls.sweep[0])
        warm.query(ctx["q"][:5], args.k)
    engine = cls(ctx["metric"], args.threads, **params)
    start = time.perf_counter()
    engine.fit(ctx["x"])
    build = time.perf_counter() - start
    build_info = {"engine": name, "engine_str": str(engine), "version": version(name),
                  "build_s": build, "memory_bytes": int(engine.memory_bytes()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(f"{name}: built in {build:.1f} s, {build_info['memory_bytes'] / 2**20:.0f} MiB",
          flush=True)
    rows = []
    for kind in ("unindexed", "indexed"):
        stopped = ()  # groups (a tuple setting's last element) whose sweep reached the stop
        for value in cls.sweep:
            group = value[-1] if isinstance(value, tuple) else None
            if group in stopped:
                continue
            engine.set_query_arguments(value)
            row = {**ctx["common"], **build_info, "param_name": cls.param_name,
                   "param": value, **measure(engine, kind, ctx, args)}
            rows.append(row)
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            dc = "" if row["dist_comps"] is None else f" dc {row['dist_comps']:.0f}"
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}"
            print(f"  {kind:9s} {cls.param_name}={shown:<9s} recall {row['recall']:.4f} "
                  f"qps {row['qps_1t']:8.0f} (batch {row['qps_batch']:8.0f}) "
                  f"p50 {row['latency_p50_us']:7.0f} us{dc}", flush=True)
            if row["recall"] > args.stop_recall:
                stopped += (group,)
    return rows


def table(rows, kind, k):
    """QPS (one thread) at recall targets per engine, and deg's ratio to each peer."""
    engines = sorted({r["engine"] for r in rows}, key=lambda e: (e != "deg", e))
    best = {}
    lines = [f"{kind} queries, k={k}: single-thread QPS at recall >= target "
             "(best setting reaching it)",
             f"{'engine':13s}{'build s':>9s}{'MiB':>8s}" + "".join(f"{'@' + str(t):>10s}"
                                                               for t in TARGETS)
             + f"{'max recall':>12s}"]
    for e in engines:
        pts = [(r["recall"], r["qps_1t"]) for r in rows if r["engine"] == e and r["kind"] == kind]
        if not pts:
            continue
        first = next(r for r in rows if r["engine"] == e)
        best[e] = [metrics.qps_at(pts, t) for t in TARGETS]
        cells = "".join(f"{v:10.0f}" if v else f"{'n/a':>10s}" for v in best[e])
        lines.append(f"{e:13s}{first['build_s']:9.1f}{first['memory_bytes'] / 2**20:8.0f}"
                     f"{cells}{max(p[0] for p in pts):12.4f}")
    if "deg" in best:
        for e in engines:
            if e == "deg" or e not in best:
                continue
            cells = "".join(f"{a / b:9.2f}x" if a and b else f"{'n/a':>10s}"
                            for a, b in zip(best["deg"], best[e]))
            lines.append(f"{'deg / ' + e:30s}{cells}")
    return "\n".join(lines)


def main(argv=None):
    args = parse(argv)
    from deg import datasets
    import deg
    if args.dataset.endswith(".hdf5"):  # any file in the ANN-Benchmarks layout
        ds = datasets.read_hdf5(args.dataset)
    else:
        ds = datasets.load(args.dataset, data_dir=args.data_dir)
    x = ds.train
    q = ds.test[:args.queries]
    entries = np.linspace(0, len(x) - 1, min(args.explore, len(x))).astype(np.int64)
    egt_ids, egt_d = ds.explore_groundtruth(entries, args.k)
    ctx = {"x": x, "q": q, "metric": ds.metric, "entries": entries,
           "gt_ids": ds.neighbors[:args.queries], "gt_d": ds.distances[:args.queries],
           "egt_ids": egt_ids, "egt_d": egt_d,
           "common": {"dataset": ds.name, "k": args.k, "threads": args.threads,
                      "date": datetime.datetime.now().isoformat(timespec="seconds"),
                      **machine()}}
    compile_s = deg.warmup()
    print(f"{ds.name}: train {x.shape}, {len(q)} queries, {len(entries)} explore entries, "
          f"k={args.k}, {args.threads} threads; deg kernels ready in {compile_s:.1f} s")
    out_dir = Path(args.out) / ds.name
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = []
    with open(out_dir / f"run-{stamp}.jsonl", "w") as sink:
        for name in args.algorithms.split(","):
            if name not in ENGINES:
                raise SystemExit(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
            if not ENGINES[name].available():
                print(f"{name}: not installed, skipped ({ENGINES[name].package})")
                continue
            rows += run_engine(name, ctx, args, sink)
    text = "\n\n".join(table(rows, kind, args.k) for kind in ("unindexed", "indexed"))
    header = (f"{ds.name}  ({len(x)} x {x.shape[1]}, {ds.metric}); {machine()['cpu']}, "
              f"{cpu_count()} cores; {ctx['common']['date']}")
    print("\n" + header + "\n\n" + text)
    (out_dir / "summary.txt").write_text(header + "\n\n" + text + "\n")
    for kind in ("unindexed", "indexed"):
        plot(rows, kind, f"{ds.name}: {kind} queries, k={args.k}", out_dir / f"{kind}.png")
    print(f"\nresults: {out_dir}/run-{stamp}.jsonl, summary.txt, unindexed.png, indexed.png")
    return rows
