"""``python -m bench.distributed``: a sharded index on a local Ray cluster against one index.

Fashion-MNIST by default: build time, recall@10 and batch QPS (all test queries in one call)
of a plain ``deg.Index`` and of ``ShardedIndex`` with 1, 2 and 4 shards, at a few eps; and
the fan-out overhead per query: one-query latency of a 1-shard ``ShardedIndex`` against the
plain index. Prints JSON lines and writes them to
``bench/results/<dataset>/distributed-<time>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import deg
import deg.datasets
from bench import report


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench.distributed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--dataset", default="fashion-mnist-784-euclidean")
    p.add_argument("--shards", default="1,2,4")
    p.add_argument("--eps", default="0.0,0.05,0.1,0.2")
    p.add_argument("--latency-queries", type=int, default=500)
    return p.parse_args(argv)


def recall_at(labels, truth, k=10) -> float:
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(labels, truth)]))


def sweep(search, ds, eps_list):
    out = []
    for eps in eps_list:
        search(ds.test[:100], eps)  # warm
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            labels = search(ds.test, eps)
            best = min(best, time.perf_counter() - start)
        out.append(
            {
                "eps": eps,
                "recall": round(recall_at(labels, ds.neighbors), 4),
                "qps": round(len(ds.test) / best, 1),
            }
        )
    return out


def latency(search, queries) -> dict:
    lat = []
    for q in queries:
        start = time.perf_counter()
        search(q)
        lat.append(time.perf_counter() - start)
    lat = np.asarray(lat[10:]) * 1e3
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }


def main(argv=None) -> int:
    import ray

    from deg.distributed import ShardedIndex

    args = parse(argv)
    ds = deg.datasets.load(args.dataset, download=False, progress=False)
    eps_list = [float(e) for e in args.eps.split(",")]
    lines = [{"kind": "machine", **report.machine(), "commit": report.commit()}]

    def record(**fields):
        line = {**fields, "load": os.getloadavg()[0]}
        lines.append(line)
        print(json.dumps(line), flush=True)

    deg.warmup()
    start = time.perf_counter()
    single = deg.Index.build(ds.train, metric=ds.deg_metric, progress=False)
    build = time.perf_counter() - start
    rows = sweep(lambda q, e: single.search(q, k=10, eps=e)[0], ds, eps_list)
    record(kind="single", build_s=round(build, 1), nbytes=single.nbytes, sweep=rows)
    queries = ds.test[: args.latency_queries]
    plain = latency(lambda q: single.search(q, k=10, eps=0.1, threads=1), queries)

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        for shards in (int(s) for s in args.shards.split(",")):
            start = time.perf_counter()
            cores = os.cpu_count() or 1  # the machine's cores shared out, as the plain build
            index = ShardedIndex.build(
                ds.train,
                shards=shards,
                metric=ds.deg_metric,
                threads=max(1, cores // shards),
                cpus_per_shard=min(1, cores / shards),
            )
            build = time.perf_counter() - start
            rows = sweep(lambda q, e, index=index: index.search(q, k=10, eps=e)[0], ds, eps_list)
            fields = {"kind": "sharded", "shards": shards, "build_s": round(build, 1)}
            fields.update(nbytes=index.nbytes, sizes=index.sizes, sweep=rows)
            if shards == 1:
                fan = latency(lambda q, index=index: index.search(q, k=10, eps=0.1), queries)
                fields.update(one_query=fan, plain_one_query=plain)
            record(**fields)
            index.close()
    finally:
        ray.shutdown()
    out = Path(f"bench/results/{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"distributed-{time.strftime('%Y%m%d-%H%M%S')}.jsonl", "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
