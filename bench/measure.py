"""Timings and accuracy of one engine: its build, and one search setting on one query kind."""

import resource
import time

import numpy as np

from bench import metrics


def rss_bytes():
    """The process's current resident set size (not the peak), in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:  # no procfs: the peak is the best available proxy
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


MAX_RUNS = 1000


def best_times(calls, runs, min_seconds=0.0):
    """Time each ``(prepare, call)`` pair's ``call()`` at least ``runs`` times, and again until
    its calls took ``min_seconds`` in all (at most ``MAX_RUNS``); returns ``[(last result,
    fastest seconds), ...]`` in the pairs' order.

    Taking the minimum discards the runs another process on the shared machine slowed down,
    and a short call (100 queries take under a millisecond) gets as many chances at that as a
    long one. The pairs take turns: each round times one ``call()`` of every pair that still
    needs runs, after its ``prepare()`` (untimed; may be None). Calls whose ratio counts (one
    thread and a batch) thus meet the same slow spells of the machine, where timed one after
    the other the second could miss the first's quiet minute."""
    best = [np.inf] * len(calls)
    out = [None] * len(calls)
    done = [0] * len(calls)
    spent = [0.0] * len(calls)

    def wanted(i):
        return done[i] < runs or (spent[i] < min_seconds and done[i] < MAX_RUNS)

    while any(wanted(i) for i in range(len(calls))):
        for i, (prepare, call) in enumerate(calls):
            if not wanted(i):
                continue
            if prepare is not None:
                prepare()
            start = time.perf_counter()
            out[i] = call()
            took = time.perf_counter() - start
            best[i] = min(best[i], took)
            spent[i] += took
            done[i] += 1
    return list(zip(out, best))


def build(engine, x, q, k):
    """Warm up, then build ``engine`` on ``x``; returns the per-build facts.

    Returns
    -------
    dict
        ``compile_s`` (JIT warm-up, not part of the build), ``build_s``, ``memory_bytes`` (as
        the engine reports it; ``memory_source`` says how), ``rss_delta_bytes`` (resident
        memory gained over the build) and anything the engine adds (``engine.extra``).
    """
    compile_s = engine.warmup(x, q, k)
    before = rss_bytes()
    start = time.perf_counter()
    engine.fit(x)
    build_s = time.perf_counter() - start
    return {
        "compile_s": compile_s,
        "build_s": build_s,
        "memory_bytes": int(engine.memory_bytes()),
        "memory_source": engine.memory_source,
        "rss_delta_bytes": rss_bytes() - before,
        **engine.extra,
    }


def setting(engine, kind, ctx, k, threads, runs, latency_queries, min_seconds=0.0):
    """Every measurement of the engine's current search setting on one query kind.

    Parameters
    ----------
    engine : bench.engines.Engine
        Built, with its query arguments set.
    kind : {"unindexed", "indexed"}
        Test queries, or stored vertices' neighbours (themselves excluded).
    ctx : dict
        ``x`` train vectors, ``metric``; ``q``, ``gt_ids``, ``gt_d`` for unindexed and
        ``entries``, ``egt_ids``, ``egt_d`` for indexed queries.
    k : int
    threads : int
        Threads for the batch QPS.
    runs : int
        Timed runs of the whole query set, single-thread and batch, taking turns; the best of
        each is kept.
    min_seconds : float
        More runs until they took this long in all (see ``best_times``).
    latency_queries : int or None
        Queries timed one call each (None: all).

    Returns
    -------
    dict
        ``recall`` (threshold rule), ``id_recall``, ``qps_1t``, ``qps_batch``,
        ``latency_p50_us``, ``latency_p99_us``, ``dist_comps`` (mean per query or None).
    """
    if kind == "unindexed":
        queries, gt_ids, gt_d = ctx["q"], ctx["gt_ids"], ctx["gt_d"]
        call = lambda sel=slice(None): engine.query(queries[sel], k)  # noqa: E731
    else:
        entries = ctx["entries"]
        queries, gt_ids, gt_d = ctx["x"][entries], ctx["egt_ids"], ctx["egt_d"]
        call = lambda sel=slice(None): engine.explore(entries[sel], k)  # noqa: E731
    engine.set_threads(1)
    call()  # untimed: lazy setup and cold caches
    dist_comps = engine.last_dist_comps  # a one-thread call's count
    n_lat = len(queries) if latency_queries is None else min(latency_queries, len(queries))
    lat = np.empty(n_lat)
    for i in range(n_lat):
        start = time.perf_counter()
        call(slice(i, i + 1))
        lat[i] = time.perf_counter() - start
    # one-thread and batch runs take turns: their ratio (the batch speed-up) compares like times
    (ids, best), (_, batch) = best_times(
        [(lambda: engine.set_threads(1), call), (lambda: engine.set_threads(threads), call)],
        runs,
        min_seconds,
    )
    dist = metrics.true_distances(ctx["x"], queries, ids, ctx["metric"])
    return {
        "recall": metrics.threshold_recall(dist, gt_d, k),
        "id_recall": metrics.id_recall(ids, gt_ids, k),
        "qps_1t": len(queries) / best,
        "qps_batch": len(queries) / batch,
        "latency_p50_us": float(np.percentile(lat, 50) * 1e6) if n_lat else None,
        "latency_p99_us": float(np.percentile(lat, 99) * 1e6) if n_lat else None,
        "dist_comps": dist_comps,
    }
