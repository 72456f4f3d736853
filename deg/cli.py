"""``python -m deg``: inspect, build and query index files from the shell.

    python -m deg info FILE                       size, dim, metric, d, and the graph checks
    python -m deg build DATA OUT [--metric l2 -d 30 ...]   DATA: .npy (n, dim), or .hdf5
    python -m deg search FILE QUERIES.npy [-k 10 --eps 0.1 --out RESULT.npz]
    python -m deg serve --dir DIR [--dim N --metric l2 ...] [--host 127.0.0.1 --port 8000]

(``deg`` is the same command.) ``serve`` runs the retrieval service (``deg.server``) until
interrupted. Errors are printed as one line on stderr with exit status 2 (bad input) or 1
(anything else).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deg", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="describe an index file and check its graph")
    info.add_argument("file")
    info.add_argument("--mmap", action="store_true", help="memory-map instead of reading")
    build = sub.add_parser("build", help="build an index from a .npy or .hdf5 file")
    build.add_argument("data", help=".npy array (n, dim), or an .hdf5 file with a 'train' set")
    build.add_argument("out", help="the index file to write")
    build.add_argument(
        "--metric",
        default=None,
        help="l2, ip or cosine (default: l2, or the .hdf5 file's distance)",
    )
    build.add_argument("-d", "--edges-per-vertex", type=int, default=30)
    build.add_argument("--threads", type=int, default=None)
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    search = sub.add_parser("search", help="search an index for the rows of a .npy file")
    search.add_argument("file")
    search.add_argument("queries", help=".npy array (nq, dim) or (dim,)")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--eps", type=float, default=0.1)
    search.add_argument("--max-degree", type=int, default=None)
    search.add_argument(
        "--out", default=None, help=".npz file for labels and distances (default: print JSON lines)"
    )
    _serve_parser(sub.add_parser("serve", help="run the retrieval service (HTTP/JSON)"))
    return p


def _serve_parser(serve) -> None:
    serve.add_argument("--dir", required=True, help="snapshot and write-ahead log directory")
    new = serve.add_argument_group("a new index (an existing DIR is reopened; given, must agree)")
    new.add_argument("--dim", type=int, default=None, help="vector dimension (new DIR: needed)")
    new.add_argument("--metric", default=None, help="l2 (default), ip or cosine")
    new.add_argument("-d", "--edges-per-vertex", type=int, default=None)
    new.add_argument("--dtype", default=None, help="float32 (default), float16, uint8, int8")
    new.add_argument(
        "--quantize", default=None, help="sq8 (codes of the vectors) or rabitq (of the edges)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--token", default=None, help="bearer token (default: $DEG_TOKEN, none)")
    serve.add_argument(
        "--sync",
        default="group",
        choices=["group", "request"],
        help="group: concurrent writes share fsyncs; request: one fsync per write",
    )
    serve.add_argument(
        "--write-nice",
        type=_write_nice,
        default="idle",
        help="CPU priority of the thread applying writes (Linux): idle (SCHED_IDLE, runs on "
        "cores searches leave free) or a nice increment 0-19 (0: as searches)",
    )
    serve.add_argument("--max-body-bytes", type=int, default=64 << 20)
    serve.add_argument("--max-batch", type=int, default=10_000, help="rows per request")
    serve.add_argument("--max-k", type=int, default=1000)
    serve.add_argument(
        "--snapshot-bytes",
        type=int,
        default=256 << 20,
        help="snapshot once the log holds this many bytes",
    )


def _write_nice(text: str):
    if text == "idle":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'idle' or an integer 0-19, got {text!r}"
        ) from None


def _serve(args):
    from deg import server

    names = ("dim", "metric", "edges_per_vertex", "dtype", "quantize")
    params = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    limits = server.Limits(args.max_body_bytes, args.max_batch, args.max_k)
    server.serve(
        args.dir,
        params,
        host=args.host,
        port=args.port,
        token=args.token,
        limits=limits,
        sync=args.sync,
        snapshot_bytes=args.snapshot_bytes,
        write_nice=args.write_nice,
    )
    return []


def _info(args) -> dict:
    import deg
    from deg import analysis

    start = time.perf_counter()
    index = deg.Index.load(args.file, mmap=args.mmap)
    loaded = time.perf_counter() - start
    report = analysis.check(index, gq_sample=min(1000, len(index)))
    return {
        "file": os.fspath(args.file),
        "bytes": os.path.getsize(args.file),
        "n": len(index),
        "dim": index.dim,
        "metric": index.metric,
        "edges_per_vertex": index.edges_per_vertex,
        "scheme": index.scheme,
        "rotated": index.rotated,
        "load_seconds": round(loaded, 3),
        "checks": {
            k: report[k]
            for k in ("ok", "regular", "undirected", "weights_exact", "connected", "view_current")
        },
        "aew": report["aew"],
        "gq": report["gq"],
    }


def _read_data(path: str, metric: str | None) -> tuple:
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False), metric or "l2"
    if path.endswith((".hdf5", ".h5")):
        from deg.datasets import _h5py, hdf5_distance

        with _h5py().File(path, "r") as f:
            if "train" not in f:
                raise ValueError(f"{path} has no 'train' dataset")
            angular = hdf5_distance(f) == "angular"
            return f["train"][:], metric or ("cosine" if angular else "l2")
    raise ValueError(f"data must be a .npy or .hdf5 file, got {path!r}")


def _build(args) -> dict:
    import deg

    data, metric = _read_data(args.data, args.metric)
    start = time.perf_counter()
    index = deg.Index.build(
        data,
        metric=metric,
        edges_per_vertex=args.edges_per_vertex,
        threads=args.threads,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    index.save(args.out)
    return {
        "out": args.out,
        "n": len(index),
        "dim": index.dim,
        "metric": metric,
        "build_seconds": round(seconds, 2),
    }


def _search(args):
    import deg

    index = deg.Index.load(args.file)
    queries = np.load(args.queries, allow_pickle=False)
    labels, dists = index.search(queries, k=args.k, eps=args.eps, max_degree=args.max_degree)
    if args.out:
        np.savez(args.out, labels=labels, distances=dists)
        return {"out": args.out, "queries": len(labels), "k": args.k}
    # padding (k beyond the index) is label -1 at distance inf, written null: JSON has no inf
    return [
        {"labels": row.tolist(), "distances": [float(x) if np.isfinite(x) else None for x in d]}
        for row, d in zip(labels, dists)
    ]


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    run = {"info": _info, "build": _build, "search": _search, "serve": _serve}[args.command]
    try:
        out = run(args)
    except (ValueError, TypeError, KeyError, OSError, ImportError) as e:
        print(f"python -m deg {args.command}: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # anything else is ours: one line still, and status 1
        print(f"python -m deg {args.command}: internal error: {e!r}", file=sys.stderr)
        return 1
    for item in out if isinstance(out, list) else [out]:
        print(json.dumps(item))
    return 0
