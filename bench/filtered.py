"""``python -m bench --filter``: filtered search, deg against the peers' own filters.

Each engine is built once on the dataset's train set; then for each allowed set it sweeps its
search parameter with the filter given its own way, and recall@10 is measured against brute
force over the allowed set (ANN-Benchmarks' threshold rule, as ``python -m bench``):

* random allowed sets of 50%, 10%, 1% and 0.1% of the labels, queries the first test vectors;
* a correlated one: the allowed set is one class of the dataset (Fashion-MNIST: class 0,
  "T-shirt/top", 10% of the items), queries are test images of the other classes, so the
  allowed items lie away from every query (where graph filtering collapses).

The filters: deg ``search(filter=deg.Filter)``; faiss ``IndexHNSWFlat.search`` with
``SearchParametersHNSW(sel=IDSelectorBitmap, efSearch=ef)``; hnswlib ``knn_query(filter=f)``
with ``f`` a Python callable (its API; called for every vertex the search meets, holding the
GIL, so it runs on one thread only); deglib ``graph.search(filter_labels=...)``.
pynndescent has no filter and is left out. All timings are single-thread, best of ``--runs``,
engines taking turns setting by setting as in ``python -m bench``.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np

from bench import metrics, report
from bench.engines import DEFAULT_PARAMS, ENGINES, HNSW_EF, cpu_count
from bench.measure import best_times
from bench.run import heartbeat

SHARES = (0.5, 0.1, 0.01, 0.001)
ENGINE_NAMES = ("deg", "faiss-hnsw", "hnswlib", "deglib")
# hnswlib calls the Python filter for every vertex it meets: a shorter sweep keeps its
# restrictive cases within minutes
SLOW_EF = [10, 24, 64, 192, 512]


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench --filter", description=__doc__.split("\n")[0])
    p.add_argument("--filter", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dataset", default="fashion-mnist-784-euclidean")
    p.add_argument("--algorithms", default=",".join(ENGINE_NAMES))
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--queries", type=int, default=200, help="queries per allowed set")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--min-time", type=float, default=0.2, help="as in python -m bench")
    p.add_argument("--threads", type=int, default=cpu_count(), help="build threads")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--crossover",
        action="store_true",
        help="instead: deg's graph search and exact scan each forced, per allowed share, to "
        "place the threshold between them (deg._filtering.prefers_scan)",
    )
    return p.parse_args(argv)


def scenarios(ds, n_queries, rng):
    """``[(name, allowed ids (sorted), queries), ...]``."""
    x, q = ds.train, ds.test
    out = []
    for share in SHARES:
        allowed = np.sort(rng.choice(len(x), size=max(1, round(share * len(x))), replace=False))
        out.append((f"random {share:g}", allowed, q[:n_queries]))
    classes = class_labels(ds)
    if classes is not None:
        train_cls, test_cls = classes
        allowed = np.flatnonzero(train_cls == 0)
        out.append(("correlated (class 0)", allowed, q[test_cls != 0][:n_queries]))
    return out


def class_labels(ds):
    """Fashion-MNIST's class of each train and test image, from the raw label files, or None
    where they are not found (other datasets have no classes)."""
    if not ds.name.startswith("fashion-mnist"):
        return None
    from deg import datasets

    for folder in datasets.raw_dirs("fashion-mnist"):
        train = Path(folder) / "train-labels-idx1-ubyte.gz"
        test = Path(folder) / "t10k-labels-idx1-ubyte.gz"
        if train.exists() and test.exists():
            return datasets.read_idx(train), datasets.read_idx(test)
    return None


def ground_truth(x, allowed, queries, k, metric):
    """Exact top-k among ``x[allowed]``: ids and distances in the dataset's metric."""
    from deg import datasets

    k = min(k, len(allowed))
    ids, dists = datasets.ground_truth(x[allowed], queries, k, metric=metric, progress=False)
    return allowed[ids], dists


def sweep(name):
    cls = ENGINES[name]
    if name == "deg":
        return [v for v in cls.sweep if v[1] is None]  # the whole graph
    if name == "hnswlib":
        return SLOW_EF
    if name == "faiss-hnsw":
        return HNSW_EF
    return list(cls.sweep)


def main(argv=None):
    args = parse(argv)
    from deg import datasets

    ds = datasets.load(args.dataset, data_dir=args.data_dir)
    if args.crossover:
        return crossover(ds, args)
    names = []
    for name in args.algorithms.split(","):
        why = ENGINES[name].unavailable()
        if why:
            print(f"{name}: skipped, {why}", flush=True)
        else:
            names.append(name)
    rng = np.random.default_rng(0)
    cases = scenarios(ds, args.queries, rng)
    truths = {c[0]: ground_truth(ds.train, c[1], c[2], args.k, ds.metric) for c in cases}
    built = {}
    for name in names:
        engine = ENGINES[name](ds.metric, args.threads, **DEFAULT_PARAMS[name])
        with heartbeat(f"{name}: building"):
            engine.warmup(ds.train, ds.test, args.k)
            start = time.perf_counter()
            engine.fit(ds.train)
        print(f"{name}: built in {time.perf_counter() - start:.1f} s", flush=True)
        engine.set_threads(1)
        built[name] = engine
    common = {
        "dataset": ds.name,
        "k": args.k,
        "date": report.now(),
        "commit": report.commit(),
        "machine": report.machine(),
    }
    out_dir = Path(args.out) / ds.name
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = common["date"].replace("-", "").replace(":", "").replace("T", "-")
    path = out_dir / f"filter-{stamp}.jsonl"
    rows = []
    with open(path, "w") as sink:
        for case, allowed, queries in cases:
            _, gt_d = truths[case]
            prepared = {n: e.prepare_filter(allowed, len(ds.train)) for n, e in built.items()}
            pending = {n: iter(sweep(n)) for n in built}
            while pending:  # engines take turns, setting by setting
                for name in list(pending):
                    value = next(pending[name], None)
                    if value is None:
                        del pending[name]
                        continue
                    row = measure(built[name], value, queries, prepared[name], args, ds, gt_d)
                    row.update(common, engine=name, case=case, allowed=len(allowed), param=value)
                    rows.append(row)
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
                    print(
                        f"  {case:22s} {name:11s} {value!s:12s} recall {row['recall']:.4f} "
                        f"qps {row['qps_1t']:9.0f}",
                        flush=True,
                    )
                    if row["recall"] > 0.999:
                        del pending[name]
    text = summary(rows, [c[0] for c in cases], common)
    print("\n" + text)
    (out_dir / f"filter-{stamp}-summary.txt").write_text(text + "\n")
    print(f"\nresults: {path}")
    return rows


CROSSOVER_SHARES = (0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01)


def crossover(ds, args):
    """Single-thread QPS, recall and distance computations of deg's two paths, each forced
    (the graph search without its fallback), on random allowed sets of each share and the
    correlated one, at eps 0.1."""
    import deg
    from deg import _filtering as filtering

    index = deg.Index.build(ds.train, metric=ds.deg_metric, progress=False, threads=args.threads)
    rng = np.random.default_rng(1)
    cases = []
    for share in CROSSOVER_SHARES:
        allowed = np.sort(
            rng.choice(len(ds.train), size=round(share * len(ds.train)), replace=False)
        )
        cases.append((f"random {share:g}", allowed, ds.test[: args.queries]))
    cases += [c for c in scenarios(ds, args.queries, rng) if c[0].startswith("correlated")]
    lines = [
        f"{ds.name}: deg's filtered paths forced, eps 0.1, k={args.k}, one thread; "
        f"{report.machine()['cpu']}; {report.now()}",
        f"{'case':22s}{'allowed':>9s}{'graph qps':>11s}{'recall':>8s}{'dc':>8s}"
        f"{'scan qps':>10s}{'dc':>8s}{'graph/scan':>11s}",
    ]
    for case, allowed, queries in cases:
        _, gt_d = ground_truth(ds.train, allowed, queries, args.k, ds.metric)
        f = deg.Filter(index, allowed)
        got = {}
        for path in ("graph", "scan"):
            call = functools.partial(
                index.search, queries, k=args.k, eps=0.1, threads=1, filter=f, return_stats=True
            )
            with filtering.forced(path):
                call()
                ((res, best),) = best_times([(None, call)], args.runs, args.min_time)
            dist = metrics.true_distances(ds.train, queries, res[0], ds.metric)
            got[path] = (
                len(queries) / best,
                metrics.threshold_recall(dist, gt_d, min(args.k, len(allowed))),
                float(res[2]["distance_computations"].mean()),
            )
        (gq, gr, gdc), (sq, _, sdc) = got["graph"], got["scan"]
        lines.append(
            f"{case:22s}{len(allowed):9d}{gq:11.0f}{gr:8.4f}{gdc:8.0f}{sq:10.0f}{sdc:8.0f}"
            f"{gq / sq:10.2f}x"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    return text


def measure(engine, value, queries, prepared, args, ds, gt_d):
    engine.set_query_arguments(value)
    call = lambda: engine.query_filtered(queries, args.k, prepared)  # noqa: E731
    call()  # untimed: cold caches
    cpu_start = report.cpu_sample()
    ((ids, best),) = best_times([(None, call)], args.runs, args.min_time)
    dist = metrics.true_distances(ds.train, queries, ids, ds.metric)
    return {
        "recall": metrics.threshold_recall(dist, gt_d, args.k),
        "qps_1t": len(queries) / best,
        "dist_comps": engine.last_dist_comps,
        "other_cores": report.others(cpu_start, report.cpu_sample()),
    }


def summary(rows, cases, common):
    m = common["machine"]
    lines = [
        f"{common['dataset']} filtered search, recall@{common['k']} against brute force over "
        f"the allowed set; single-thread QPS at the target (>= : a lower bound); "
        f"{m['cpu']}, {m['cores']} cores; {common['date']}; commit {common['commit']}",
    ]
    targets = (0.9, 0.95, 0.99)
    for case in cases:
        mine = [r for r in rows if r["case"] == case]
        if not mine:
            continue
        lines += ["", f"{case} ({mine[0]['allowed']} allowed)"]
        lines.append(
            f"{'engine':13s}"
            + "".join(f"{'@' + str(t):>10s}" for t in targets)
            + f"{'max recall':>12s}"
        )
        at = {}
        for e in sorted({r["engine"] for r in mine}, key=lambda e: (e != "deg", e)):
            pts = [(r["recall"], r["qps_1t"]) for r in mine if r["engine"] == e]
            at[e] = [(metrics.qps_at(pts, t), metrics.clamped(pts, t)) for t in targets]
            cells = "".join(report.cell(v, low) for v, low in at[e])
            lines.append(f"{e:13s}{cells}{max(p[0] for p in pts):12.4f}")
        if "deg" in at:
            for e in at:
                if e == "deg":
                    continue
                cells = "".join(
                    report.ratio(a, b, la, lb) for (a, la), (b, lb) in zip(at["deg"], at[e])
                )
                lines.append(f"{'deg / ' + e:13s}{cells}")
    busy = [r["other_cores"] for r in rows if r.get("other_cores") is not None]
    if busy:
        lines += [
            "",
            f"other processes' cores while measured: mean {np.mean(busy):.2f}, max {max(busy):.2f}",
        ]
    return "\n".join(lines)
