"""``python -m bench.service``: the retrieval service under load, on loopback.

Builds (or reuses) a deg index of the dataset's train set, starts ``python -m deg serve`` on
it as a subprocess, and drives it from this process with keep-alive ``deg.client.Client``
threads: ``/search`` (one query per request, k=10) with 1, 4 and 16 concurrent clients, JSON
and binary bodies, each on an idle service and beside a continuous write stream (one writer
adding rows in small batches and removing them again), and beside a process that only spins
one core (what taking a core costs, without any write); then write throughput with an fsync
per request and with group commit, for 1, 4 and 16 concurrent writers. Client and server
share the machine's cores: the figures are the service's and its load generator's together.
Prints JSON lines and writes them to ``bench/results/<dataset>/service-<time>.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import deg
import deg.datasets
from bench import report
from deg.client import Client


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist-784-euclidean")
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--seconds", type=float, default=6.0, help="per load setting")
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--writers", default="1,4,16")
    p.add_argument("--write-rows", type=int, default=10, help="rows per write (the stream's)")
    p.add_argument("--write-sizes", default="1,10", help="rows per write, write throughput")
    p.add_argument("--parts", default="library,search,write", help="which measurements")
    p.add_argument("--dtype", default="float32", help="the index's storage type")
    p.add_argument("--quantize", default=None, help="the index's quantizer (e.g. rabitq)")
    p.add_argument("--out", default=None)
    p.add_argument("--writer-for", default=None, help=argparse.SUPPRESS)  # write_stream's
    p.add_argument("--first-label", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def service(directory, extra=()):
    port = free_port()
    cmd = [sys.executable, "-m", "deg", "serve", "--dir", str(directory), "--port", str(port)]
    proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError), Client(url) as c:
            c.health()
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(120)


def timed_threads(count, seconds, run):
    """``run(t, stop, times)`` on ``count`` threads for ``seconds``, each appending its calls'
    seconds to ``times``; returns every call's latency in ms and the wall seconds."""
    stop = threading.Event()
    lat = [[] for _ in range(count)]
    threads = [threading.Thread(target=run, args=(t, stop, lat[t])) for t in range(count)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    return np.concatenate([np.asarray(x, dtype=np.float64) for x in lat]) * 1e3, took


def percentiles(lat_ms, prefix="") -> dict:
    """p50 and p99 of latencies in ms, rounded to microseconds."""
    return {
        f"{prefix}p50_ms": round(float(np.percentile(lat_ms, 50)), 3),
        f"{prefix}p99_ms": round(float(np.percentile(lat_ms, 99)), 3),
    }


def search_load(url, queries, clients, binary, seconds, eps):
    """Requests per second and latency percentiles (ms) of one-query searches."""

    def run(t, stop, times):
        with Client(url, binary=binary) as c:
            rng = np.random.default_rng(t)
            while not stop.is_set():
                q = queries[rng.integers(len(queries))]
                start = time.perf_counter()
                c.search(q, k=10, eps=eps)
                times.append(time.perf_counter() - start)

    lat, took = timed_threads(clients, seconds, run)
    return {"requests": int(lat.size), "rps": round(lat.size / took, 1), **percentiles(lat)}


def stream_writes(url, rows, first_label, batch, stop) -> int:
    """Add ``rows`` in batches, removing each batch after the next, until ``stop()``; the
    last batch is removed too. Returns the adds made."""
    count = 0
    with Client(url) as c:
        label, previous = first_label, None
        while not stop():
            lo = (label - first_label) % (len(rows) - batch)
            labels = np.arange(label, label + batch)
            c.add(rows[lo : lo + batch], labels=labels)
            if previous is not None:
                c.remove(previous)
            previous, label = labels, label + batch
            count += 1
        if previous is not None:
            c.remove(previous)  # the index as it was
    return count


@contextlib.contextmanager
def write_stream(url, dataset, first_label, batch):
    """One writer in a process of its own (not sharing this one's GIL with the searching
    clients) running ``stream_writes`` until the block ends; yields a list that then holds
    the adds per second."""
    cmd = [sys.executable, "-m", "bench.service", "--dataset", dataset, "--writer-for", url]
    cmd += ["--first-label", str(first_label), "--write-rows", str(batch)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    start, out = time.perf_counter(), []
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)
        adds = int(proc.communicate(timeout=120)[0].strip() or 0)
        out.append(adds / (time.perf_counter() - start))


@contextlib.contextmanager
def cpu_burner():
    """A process that only spins one core, at the service's write priority (``--write-nice``
    default: SCHED_IDLE), for as long as the block runs: what a writer costs searches by
    taking a core alone, touching nothing of the index (the reference for the ratios beside
    writes)."""
    idle = "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))"
    spin = f"import os\n{idle}\nprint(flush=True)\nwhile True: pass"
    proc = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    proc.stdout.readline()
    try:
        yield
    finally:
        proc.kill()
        proc.wait(60)


def writer_main(args) -> int:
    """``--writer-for URL``: ``stream_writes`` until interrupted; prints the adds made."""
    ds = deg.datasets.load(args.dataset, download=False, progress=False)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print("writing", flush=True)
    rows = ds.test.astype(np.float32)
    print(stream_writes(args.writer_for, rows, args.first_label, args.write_rows, stopped.is_set))
    return 0


def write_load(url, rows, writers, batch, seconds, first_label):
    """Acknowledged write requests per second (each adds ``batch`` new rows, labels from
    ``first_label``, 10**7 apart per writer)."""

    def run(t, stop, times):
        with Client(url) as c:
            label = first_label + t * 10_000_000
            while not stop.is_set():
                lo = (label - first_label) % (len(rows) - batch)
                start = time.perf_counter()
                c.add(rows[lo : lo + batch], labels=np.arange(label, label + batch))
                times.append(time.perf_counter() - start)
                label += batch

    lat, took = timed_threads(writers, seconds, run)
    return {
        "writes_per_s": round(lat.size / took, 1),
        "rows_per_s": round(lat.size * batch / took, 1),
        **percentiles(lat),
    }


def library_load(index, rows, eps, seconds, batch):
    """In-process ``Index.search`` latency (one query per call, one thread), idle and beside
    a writer thread adding ``batch`` rows at a time and removing them after the next add."""
    stop = threading.Event()
    writes = [0]

    def writer():
        label, previous = 3 * 10**9, None
        while not stop.is_set():
            lo = (label - 3 * 10**9) % (len(rows) - batch)
            labels = np.arange(label, label + batch)
            index.add(rows[lo : lo + batch], labels=labels, threads=1)
            if previous is not None:
                index.remove(previous)
            previous, label = labels, label + batch
            writes[0] += 1
        if previous is not None:
            index.remove(previous)

    def latencies():
        lat, rng = [], np.random.default_rng(0)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            q = rows[rng.integers(len(rows))]
            start = time.perf_counter()
            index.search(q, k=10, eps=eps, threads=1)
            lat.append(time.perf_counter() - start)
        return np.asarray(lat) * 1e3

    idle = latencies()
    with cpu_burner():
        burner = latencies()
    t = threading.Thread(target=writer)
    t.start()
    busy = latencies()
    stop.set()
    t.join()
    runs = (("idle", idle), ("burner", burner), ("busy", busy))
    p99 = {name: float(np.percentile(a, 99)) for name, a in runs}
    return {
        "batch": batch,
        **percentiles(idle, "idle_"),
        **percentiles(burner, "burner_"),
        **percentiles(busy, "busy_"),
        "busy_max_ms": round(float(busy.max()), 3),
        "p99_ratio": round(p99["busy"] / p99["idle"], 2),
        "burner_p99_ratio": round(p99["burner"] / p99["idle"], 2),
        "write_rows_per_s": round(writes[0] * batch / seconds, 1),
    }


def recall_of(url, ds, eps, k=10) -> float:
    with Client(url) as c:
        labels, _ = c.search(ds.test, k=k, eps=eps)
    truth = ds.neighbors[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(labels, truth)]))


def _cpu_flags() -> set:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def main(argv=None) -> int:
    args = parse(argv)
    if args.writer_for:
        return writer_main(args)
    ds = deg.datasets.load(args.dataset, download=False, progress=False)
    out_dir = Path(args.out or f"bench/results/{args.dataset}")
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = "" if (args.dtype, args.quantize) == ("float32", None) else f"-{args.dtype}"
    kind += f"-{args.quantize}" if args.quantize else ""
    cached = Path("datasets") / f"{args.dataset}{kind}.service-index.deg"
    if not cached.exists():
        print(f"building the {args.dataset} index (once; cached as {cached})", flush=True)
        built = deg.Index.build(
            ds.train,
            metric=ds.deg_metric,
            dtype=args.dtype,
            quantize=args.quantize,
            progress=False,
        )
        built.save(cached)
    rows = ds.test.astype(np.float32)
    flags = _cpu_flags()
    machine = {**report.machine(), "commit": report.commit(), "avx512f": "avx512f" in flags}
    machine["index"] = {"dtype": args.dtype, "quantize": args.quantize}
    lines = []

    def record(kind, **fields):
        line = {"kind": kind, **fields, "load": os.getloadavg()[0]}
        lines.append(line)
        print(json.dumps(line), flush=True)

    parts = set(args.parts.split(","))
    deg.warmup(dtypes=(args.dtype,))
    if "library" in parts:
        index = deg.Index.load(cached)
        for batch in (10, 1000):
            got = library_load(index, rows, args.eps, args.seconds, batch)
            record("library", eps=args.eps, **got)
        del index
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        directory = Path(tmp) / "svc"
        directory.mkdir()
        shutil.copy(cached, directory / "snapshot-00000000000000000000.deg")
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(service(directory)) if "search" in parts else None
            if url:
                record("recall", eps=args.eps, recall=round(recall_of(url, ds, args.eps), 4))
            for clients in (int(c) for c in args.clients.split(",")) if url else ():
                for binary in (False, True):
                    body = "binary" if binary else "json"
                    idle = search_load(url, rows, clients, binary, args.seconds, args.eps)
                    record("search", clients=clients, body=body, writing=False, **idle)
                    with cpu_burner():
                        spun = search_load(url, rows, clients, binary, args.seconds, args.eps)
                    ratio = round(spun["p99_ms"] / idle["p99_ms"], 2)
                    record(
                        "search", clients=clients, body=body, burner=True, p99_ratio=ratio, **spun
                    )
                    first = 10**9 + 10**7 * len(lines)  # labels no earlier stream used
                    with write_stream(url, args.dataset, first, args.write_rows) as count:
                        busy = search_load(url, rows, clients, binary, args.seconds, args.eps)
                    record(
                        "search",
                        clients=clients,
                        body=body,
                        writing=True,
                        writes_per_s=round(count[0], 1),
                        p99_ratio=round(busy["p99_ms"] / idle["p99_ms"], 2),
                        **busy,
                    )
        for sync in ("request", "group") if "write" in parts else ():
            shutil.rmtree(directory)
            directory.mkdir()
            shutil.copy(cached, directory / "snapshot-00000000000000000000.deg")
            with service(directory, ["--sync", sync]) as url:
                for size in (int(r) for r in args.write_sizes.split(",")):
                    for writers in (int(w) for w in args.writers.split(",")):
                        first = 2 * 10**9 + 10**8 * writers + 10**9 * size
                        got = write_load(url, rows, writers, size, args.seconds, first)
                        record("write", sync=sync, writers=writers, rows=size, **got)
    with open(out_dir / f"service-{time.strftime('%Y%m%d-%H%M%S')}.jsonl", "w") as f:
        f.write(json.dumps({"kind": "machine", **machine}) + "\n")
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
