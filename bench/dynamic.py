"""The dynamic benchmark of algorithm.md §13.4: does a graph that saw adds and removals search as
well as one that only saw the surviving vectors?

Three streams over the train set (N vectors, first half H1, second half H2), all ending with
exactly H1 in the index:

(a) ``add-half``: add H1.
(b) ``add-all-remove-half``: add everything, then remove H2.
(c) ``interleaved``: add i and N/2+i for i < N/4, then add N/4+i and 3N/4+i while removing
    N/2+2i and N/2+2i+1, one pair at a time.

Recall@k of the test queries against the exact k-NN within H1, at equal eps, with the graph
checks after every phase. Run: ``python -m bench.dynamic --dataset fashion-mnist-784-euclidean``.
"""

import argparse
import json
import time

import numpy as np

import deg
from deg import analysis


def exact_knn(base, queries, k, metric):
    """Exact k-NN ids (blocked, float64) in the index's distance."""
    b = base.astype(np.float64)
    if metric == "cosine":
        b /= np.linalg.norm(b, axis=1, keepdims=True)
    sq = (b * b).sum(1)
    out = np.empty((len(queries), k), dtype=np.int64)
    for lo in range(0, len(queries), 256):
        q = queries[lo : lo + 256].astype(np.float64)
        if metric == "cosine":
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            dist = -q @ b.T
        else:
            dist = sq[None, :] - 2 * q @ b.T
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(dist, part, 1), axis=1, kind="stable")
        out[lo : lo + 256] = np.take_along_axis(part, order, 1)
    return out


def recall(found, truth):
    k = truth.shape[1]
    return float(
        np.mean([len(set(f.tolist()) & set(t.tolist())) / k for f, t in zip(found, truth)])
    )


def run_stream(name, x, params, threads):
    n = len(x)
    half, quarter = n // 2, n // 4
    index = deg.Index(x.shape[1], **params)
    start = time.perf_counter()
    if name == "add-half":
        index.add(x[:half], labels=np.arange(half), threads=threads)
    elif name == "add-all-remove-half":
        index.add(x, labels=np.arange(n), threads=threads)
        index.remove(np.arange(half, n))
    else:
        for i in range(quarter):
            pair = np.array([i, half + i])
            index.add(x[pair], labels=pair, threads=threads)
        for i in range(quarter):
            pair = np.array([quarter + i, 3 * quarter + i])
            index.add(x[pair], labels=pair, threads=threads)
            index.remove([half + 2 * i, half + 2 * i + 1])
    seconds = time.perf_counter() - start
    assert sorted(index.labels.tolist()) == list(range(half)), "stream must end with H1"
    return index, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset",
        default="fashion-mnist-784-euclidean",
        help="a registered name or an .hdf5 file",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=0, help="use the first N train vectors")
    parser.add_argument("--scheme", default="stream")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--eps", default="0,0.02,0.05,0.1,0.2")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args(argv)

    from deg import datasets

    ds = (
        datasets.read_hdf5(args.dataset)
        if args.dataset.endswith(".hdf5")
        else datasets.load(args.dataset)
    )
    x = ds.train[: args.limit] if args.limit else ds.train
    q = ds.test[: args.queries]
    metric = ds.deg_metric
    params = {
        "metric": metric,
        "edges_per_vertex": 30,
        "extend_k": 60,
        "extend_eps": 0.1,
        "scheme": args.scheme,
    }
    truth = exact_knn(x[: len(x) // 2], q, args.k, metric)
    eps_list = [float(e) for e in args.eps.split(",")]
    deg.warmup()
    rows = []
    print(f"{args.dataset}: N={len(x)}, {len(q)} queries, k={args.k}, scheme={args.scheme}")
    for stream in ("add-half", "add-all-remove-half", "interleaved"):
        index, seconds = run_stream(stream, x, params, args.threads)
        report = analysis.check(index, gq_sample=200)
        recalls = {e: recall(index.search(q, k=args.k, eps=e)[0], truth) for e in eps_list}
        row = {
            "dataset": args.dataset,
            "stream": stream,
            "seconds": round(seconds, 2),
            "graph_ok": report["ok"],
            "aew": report["aew"],
            "gq": report["gq"],
            "recall": recalls,
            **params,
        }
        rows.append(row)
        print(
            f"  {stream:20s} {seconds:7.1f} s  graph ok: {report['ok']}  "
            + "  ".join(f"eps {e:g}: {r:.4f}" for e, r in recalls.items()),
            flush=True,
        )
    base = rows[0]["recall"]
    for row in rows[1:]:
        worst = max(base[e] - row["recall"][e] for e in eps_list)
        print(f"  {row['stream']}: largest recall drop vs add-half {100 * worst:+.2f} points")
    if args.out:
        with open(args.out, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return rows


if __name__ == "__main__":
    main()
