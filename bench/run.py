"""``python -m bench``: build every engine on one dataset, sweep its search parameter, print
the recall/QPS table and write JSON lines and plots under ``bench/results/<dataset>/``.

Per setting and query kind (unindexed: the test queries; indexed: neighbours of stored
vectors, themselves excluded) it measures recall@k by the ANN-Benchmarks threshold rule and by
id overlap, single-thread QPS (all queries in one call, best of ``--runs``), per-query latency
p50/p99 (one call per query, one thread), batch QPS on ``--threads`` threads, and distance
computations per query where the engine reports them; per build, build seconds (JIT compile
counted apart) and index bytes.
"""

import argparse
import contextlib
import json
import threading
import time
from pathlib import Path

import numpy as np

from bench import measure, report
from bench.engines import DEFAULT_PARAMS, ENGINES, cpu_count
from bench.plot import plot

KINDS = ("unindexed", "indexed")


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Build deg and its peers on one dataset, sweep their search parameters, "
        "print QPS at recall 0.90/0.95/0.99 and write JSON lines and plots.",
    )
    p.add_argument(
        "--dataset",
        default="fashion-mnist-784-euclidean",
        help="a registered name (deg.datasets.REGISTRY) or an .hdf5 file in the "
        "ANN-Benchmarks layout (default: %(default)s)",
    )
    p.add_argument(
        "--algorithms", default=",".join(ENGINES), help="comma-separated, from: %(default)s"
    )
    p.add_argument("--k", type=int, default=10, help="neighbours per query (default: 10)")
    p.add_argument(
        "--threads",
        type=int,
        default=cpu_count(),
        help="build threads and batch-query threads (default: all cores)",
    )
    p.add_argument(
        "--queries", type=int, default=1000, help="test queries used, the first N (default: 1000)"
    )
    p.add_argument(
        "--explore",
        type=int,
        default=1000,
        help="stored vertices used as indexed queries (default: 1000)",
    )
    p.add_argument(
        "--latency-queries",
        type=int,
        default=None,
        help="queries timed one call each for p50/p99 (default: all)",
    )
    p.add_argument(
        "--runs", type=int, default=3, help="timed runs per setting, the best is kept (default: 3)"
    )
    p.add_argument(
        "--min-time",
        type=float,
        default=0.2,
        help="repeat a setting's runs until they took this many seconds (at most "
        "1000 runs), so short calls get as many chances (default: 0.2)",
    )
    p.add_argument(
        "--stop-recall",
        type=float,
        default=0.999,
        help="end a sweep once recall exceeds this (default: 0.999)",
    )
    p.add_argument(
        "--out",
        default=str(Path(__file__).parent / "results"),
        help="results folder; a subfolder per dataset (default: bench/results)",
    )
    p.add_argument("--data-dir", default=None, help="where datasets are cached")
    return p.parse_args(argv)


def load(args):
    """The dataset, the query subsets and both ground truths."""
    from deg import datasets

    if args.dataset.endswith(".hdf5"):
        ds = datasets.read_hdf5(args.dataset)
    else:
        ds = datasets.load(args.dataset, data_dir=args.data_dir)
    x = ds.train
    # evenly spaced ids over the train set, so every region of insertion order is explored
    entries = np.linspace(0, len(x) - 1, min(args.explore, len(x))).astype(np.int64)
    egt_ids, egt_d = ds.explore_groundtruth(entries, args.k)
    return ds, {
        "x": x,
        "q": ds.test[: args.queries],
        "metric": ds.metric,
        "entries": entries,
        "gt_ids": ds.neighbors[: args.queries],
        "gt_d": ds.distances[: args.queries],
        "egt_ids": egt_ids,
        "egt_d": egt_d,
    }


def build_engine(name, ctx, common, args):
    """Warm up and build one engine; returns it with the facts every one of its lines carries."""
    cls = ENGINES[name]
    engine = cls(ctx["metric"], args.threads, **DEFAULT_PARAMS[name])
    load_start = report.load_now()
    cpu_start = report.cpu_sample()
    with heartbeat(f"{name}: warming up and building"):
        built = measure.build(engine, ctx["x"], ctx["q"], args.k)
    info = {
        **common,
        "load_start": load_start,
        "build_other_cores": report.others(cpu_start, report.cpu_sample()),
        "build_cpu_mhz": report.cpu_mhz(),
        "engine": name,
        "engine_str": str(engine),
        "version": report.version(cls.distribution),
        "build_params": engine.params,
        **built,
    }
    warm = f" (JIT warm-up {built['compile_s']:.1f} s apart)" if built["compile_s"] else ""
    print(
        f"{name}: built in {built['build_s']:.1f} s{warm}, {built['memory_bytes'] / 2**20:.0f} MiB",
        flush=True,
    )
    return engine, info


def sweep(cls, stopped):
    """The engine's settings in order, skipping a group once it is in ``stopped`` (a tuple
    setting's last element names its group: deg's max_degree; each group's sweep stops on its
    own). Lazy, so a group stopped after one setting skips the rest."""
    for value in cls.sweep:
        group = value[-1] if isinstance(value, tuple) else None
        if group not in stopped:
            yield value, group


def measure_setting(engine, info, value, kind, ctx, args):
    """One JSON line: one setting of one engine on one query kind, with how busy the machine
    was while it was measured (other processes' cores, load) and the CPU clock the OS
    reports."""
    engine.set_query_arguments(value)
    cpu_start = report.cpu_sample()
    row = {
        **info,
        "param_name": type(engine).param_name,
        "param": value,
        "kind": kind,
        **measure.setting(
            engine,
            kind,
            ctx,
            args.k,
            args.threads,
            args.runs,
            args.latency_queries,
            args.min_time,
        ),
    }
    row["load_1min"] = report.load_now()
    row["other_cores"] = report.others(cpu_start, report.cpu_sample())
    row["cpu_mhz"] = report.cpu_mhz()
    return row


def interleaved(built, ctx, args, sink):
    """Sweep every built engine on both query kinds, taking turns: each round measures the next
    setting of every engine whose sweep goes on, so a slow spell of the shared machine (a few
    seconds to minutes) falls on all engines alike instead of on one engine's whole turn.
    Lines are written as they come, so a run cut short keeps what it measured."""
    rows = []
    for kind in KINDS:
        turns = {}
        for name, (engine, info) in built.items():
            stopped = set()
            turns[name] = (engine, info, sweep(type(engine), stopped), stopped)
        while turns:
            for name in list(turns):
                engine, info, settings, stopped = turns[name]
                nxt = next(settings, None)
                if nxt is None:
                    del turns[name]
                    continue
                value, group = nxt
                row = measure_setting(engine, info, value, kind, ctx, args)
                rows.append(row)
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                _print_row(name, row)
                if row["recall"] > args.stop_recall:
                    stopped.add(group)
    return rows


def _print_row(name, row):
    value = row["param"]
    dc = "" if row["dist_comps"] is None else f" dc {row['dist_comps']:.0f}"
    shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else f"{value:g}"
    print(
        f"  {name:12s}{row['kind']:9s} {row['param_name']}={shown:<9s} "
        f"recall {row['recall']:.4f} qps {row['qps_1t']:8.0f} (batch {row['qps_batch']:8.0f}) "
        f"p50 {row['latency_p50_us'] or 0:7.0f} us{dc}",
        flush=True,
    )


@contextlib.contextmanager
def heartbeat(label, every=30.0):
    """Print a line every ``every`` seconds while the block runs (builds and JIT warm-ups can
    take minutes and print nothing)."""
    done = threading.Event()
    start = time.monotonic()

    def beat():
        while not done.wait(every):
            print(f"{label}: still running ({time.monotonic() - start:.0f} s)", flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def main(argv=None):
    """Run the benchmark; returns the result rows (also written as JSON lines)."""
    args = parse(argv)
    names = args.algorithms.split(",")
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engine(s) {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    ds, ctx = load(args)
    x = ctx["x"]
    common = {
        "dataset": ds.name,
        "metric": ds.metric,
        "n": len(x),
        "dim": x.shape[1],
        "k": args.k,
        "threads": args.threads,
        "queries": len(ctx["q"]),
        "explore_entries": len(ctx["entries"]),
        "runs": args.runs,
        "min_time": args.min_time,
        "date": report.now(),
        "commit": report.commit(),
        "machine": report.machine(),
        "versions": {
            "numpy": report.version("numpy"),
            "numba": report.version("numba"),
            "deg": report.version("dynamic-exploration-graph"),
        },
    }
    print(
        f"{ds.name}: train {x.shape}, {len(ctx['q'])} queries, {len(ctx['entries'])} explore "
        f"entries, k={args.k}, {args.threads} threads",
        flush=True,
    )
    out_dir = Path(args.out) / ds.name
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = common["date"].replace("-", "").replace(":", "").replace("T", "-")
    jsonl = out_dir / f"run-{stamp}.jsonl"
    # every engine is built first (one after another: a build cannot be split), then all
    # are swept together, taking turns setting by setting
    built = {}
    for name in names:
        why = ENGINES[name].unavailable()
        if why:
            print(f"{name}: skipped, {why}", flush=True)
            continue
        try:
            built[name] = build_engine(name, ctx, common, args)
        except Exception as e:  # a peer that cannot run here
            print(f"{name}: skipped, its build failed: {type(e).__name__}: {e}", flush=True)
    with open(jsonl, "w") as sink:
        rows = interleaved(built, ctx, args, sink)
    m = common["machine"]
    header = (
        f"{ds.name}  ({len(x)} x {x.shape[1]}, {ds.metric}); {m['cpu']}, {m['cores']} "
        f"cores, load {m['load_1min']}; {common['date']}; commit {common['commit']}"
    )
    text = header + "\n\n" + "\n\n".join(report.table(rows, kind, args.k) for kind in KINDS)
    if rows:
        text += "\n\n" + report.surroundings(rows)
    warning = report.busy_warning(rows, m["cores"])
    if warning:
        text += "\n\n" + warning
    print("\n" + text)
    summary = out_dir / f"run-{stamp}-summary.txt"
    summary.write_text(text + "\n")
    where = f"{m['cpu']}, {m['cores']} cores, load {m['load_1min']}, {common['date']}"
    for kind in KINDS:
        title = f"{ds.name}: {kind} queries, k={args.k}\n{where}"
        plot(rows, kind, title, out_dir / f"run-{stamp}-{kind}.png")
    print(f"\nresults: {jsonl}, and its -summary.txt, -unindexed.png, -indexed.png next to it")
    return rows
