"""How much is left: graph quality and the cost of one distance computation (issue 5, target 7).

``python -m bench.limits [--dataset NAME]`` prints

* distance computations per query at recall 0.95 and 0.99 for deg as shipped (in the rotated
  basis where ``rotate=None`` picks it, with its first-chunk rejection), and for deg's graph
  and deglib's graph in the input basis, both searched by deg's search kernel through the same
  kind of entry tree (so only the graphs differ);
* nanoseconds per distance computation: inside deg's search (query time / distance
  computations), deg's distance kernel over random rows of the same vectors (the memory-bound
  case a graph search is), numpy's gather + BLAS over the same random rows, and BLAS streaming
  over all rows in order (the memory-bandwidth floor).
"""

import argparse
import itertools
import time

import numpy as np

import deg
from bench import engines, metrics
from deg import datasets, fileformat

# (eps, budget): budgets of distance computations reach the low recalls eps 0 overshoots
SETTINGS = [(0.0, b) for b in (100, 125, 150, 175, 200, 250, 300)] + [
    (e, 0) for e in (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3)
]


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist-784-euclidean")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--threads", type=int, default=engines.cpu_count())
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def curve(index, q, gt_ids, k):
    """(recall, distance computations, seconds per query) over SETTINGS, whole graph, one
    thread, sorted by recall."""
    out = []
    for eps, budget in SETTINGS:
        kw = {"k": k, "eps": eps, "threads": 1, "max_distance_computations": budget}
        index.search(q[:10], **kw)
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            ids, _, stats = index.search(q, return_stats=True, **kw)
            best = min(best, time.perf_counter() - start)
        out.append(
            (
                metrics.id_recall(ids, gt_ids, k),
                stats["distance_computations"].mean(),
                best / len(q),
            )
        )
    return sorted(out)


def at(points, target, column):
    """Interpolate ``column`` (1: distance computations, 2: seconds) at recall ``target``."""
    for (r0, *a), (r1, *b) in itertools.pairwise(points):
        if r0 <= target <= r1:
            f = 0.0 if r1 == r0 else (target - r0) / (r1 - r0)
            return a[column - 1] + f * (b[column - 1] - a[column - 1])
    return float("nan")


def deglib_as_index(graph, x, metric):
    """deglib's graph in deg's storage (ids = deglib's internal indices = rows of ``x``)."""
    n = graph.size()
    nb = np.sort(np.array([graph.get_neighbors(i) for i in range(n)], dtype=np.int32), axis=1)
    vec = np.ascontiguousarray(x, np.float32)
    if metric == "cosine":
        vec = engines.unit(vec)
    w = ((vec[nb] - vec[:, None, :]) ** 2).sum(-1, dtype=np.float32)
    if metric == "cosine":  # deg's cosine distance: half the squared L2 of unit vectors
        w = 0.5 * w
    arrays = {
        "vectors": vec,
        "neighbors": nb,
        "weights": w.astype(np.float32),
        "labels": np.arange(n, dtype=np.int64),
    }
    fileformat.check_arrays("deglib graph", arrays, n, nb.shape[1], metric)
    params = {
        "extend_k": 60,
        "extend_eps": 0.1,
        "scheme": "low-lid",
        "seed": 0,
        "improve_k": 30,
        "improve_eps": 0.001,
        "max_path_length": 5,
        "improve_tries": 0,
        "next_label": n,
        "rand_state": 0,
    }
    return deg.Index._from_parts(metric, params, arrays, "deglib graph", read_only=False)


def ns_per_distance(x, q, rows):
    """Per distance: deg's kernel on random rows (one at a time, and eight side by side as
    the search reads them), numpy gather + BLAS, BLAS streaming."""
    import numba

    from deg._kernels.distances import L2, distance, distance_rows

    @numba.njit(nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
    def kernel(x, q, rows):
        s = np.float32(0.0)
        for r in rows:
            s += distance(0, q, x[r])
        return s

    @numba.njit(nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
    def grouped(x, q, rows):
        out = np.empty(8, np.float32)
        s = np.float32(0.0)
        for lo in range(0, len(rows) - 7, 8):
            distance_rows(L2, q, x, rows[lo : lo + 8], 8, np.float32(np.inf), np.float32(1), out)
            s += out.sum()
        return s

    rows = rows.astype(np.int32)
    kernel(x, q, rows[:10])
    grouped(x, q, rows[:16])
    out = {}
    start = time.perf_counter()
    kernel(x, q, rows)
    out["deg kernel, random rows"] = (time.perf_counter() - start) / len(rows)
    start = time.perf_counter()
    grouped(x, q, rows)
    out["deg kernel, random rows, eight side by side"] = (time.perf_counter() - start) / len(rows)
    start = time.perf_counter()
    for lo in range(0, len(rows), 4096):
        sub = x[rows[lo : lo + 4096]]
        sub @ q
    out["numpy gather + BLAS, random rows"] = (time.perf_counter() - start) / len(rows)
    reps = max(1, len(rows) // len(x))
    start = time.perf_counter()
    for _ in range(reps):
        x @ q
    out["BLAS streaming, all rows in order"] = (time.perf_counter() - start) / (reps * len(x))
    return out


def main(argv=None):
    args = parse(argv)
    import deglib

    if args.dataset.endswith(".hdf5"):  # any ANN-Benchmarks-layout file, as python -m bench
        data = datasets.read_hdf5(args.dataset)
    else:
        data = datasets.load(args.dataset, data_dir=args.data_dir)
    x = np.ascontiguousarray(data.train, np.float32)
    q = np.ascontiguousarray(data.test[: args.queries], np.float32)
    gt = data.neighbors[: args.queries]
    metric = "l2" if data.metric == "euclidean" else "cosine"
    k = 10
    deg.warmup()
    mine = deg.Index.build(
        x, metric=metric, edges_per_vertex=30, progress=False, threads=args.threads
    )
    dl_metric = deglib.Metric.FP32_L2 if metric == "l2" else deglib.Metric.FP32_InnerProduct
    dl_x = x if metric == "l2" else engines.unit(x)
    theirs = deglib_as_index(
        deglib.builder.build_from_data(
            dl_x, metric=dl_metric, edges_per_vertex=30, thread_count=args.threads
        ),
        x,
        metric,
    )
    print(
        f"{args.dataset}: {len(x)} x {x.shape[1]}, {len(q)} queries, k={k}, one thread, "
        f"deg's search kernel (whole graph, entry tree of {mine.internals().tree.planes.shape[0]} "
        f"hyperplanes); deg {'rotated' if mine.rotated else 'in the input basis'}, "
        f"the two graphs below in the input basis"
    )
    rows = {}
    graphs = [("deg", mine)]
    if mine.rotated:  # rotated: its own graph in the input basis too, beside deglib's
        graphs.append(
            (
                "deg graph",
                deg.Index.build(
                    x,
                    metric=metric,
                    edges_per_vertex=30,
                    progress=False,
                    threads=args.threads,
                    rotate=False,
                ),
            )
        )
    graphs.append(("deglib graph", theirs))
    for name, index in graphs:
        pts = curve(index, q, gt, k)
        rows[name] = pts
        for target in (0.95, 0.99):
            print(
                f"  {name:13s} recall {target}: {at(pts, target, 1):6.0f} distance "
                f"computations/query, {at(pts, target, 2) * 1e6:6.1f} us/query"
            )
    pts = rows["deg"]
    search_ns = np.median([s / dc for _, dc, s in pts[-10:]]) * 1e9
    print(f"  ns per distance computation inside deg's search (median over eps): {search_ns:.0f}")
    rng = np.random.default_rng(0)
    for name, sec in ns_per_distance(x, q[0], rng.integers(0, len(x), 200_000)).items():
        print(f"  ns per distance computation, {name}: {sec * 1e9:.0f}")


if __name__ == "__main__":
    main()
