"""What a run records about its surroundings, and the summary table it prints."""

import datetime
import os
import platform
from importlib import metadata

from bench import metrics
from bench.engines import cpu_count

TARGETS = (0.90, 0.95, 0.99)


def machine():
    """CPU model, usable cores, load average and Python: enough to tell two machines apart."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?"
            )
    except OSError:
        pass
    # other processes on a shared machine skew timings: record how busy it was at the start
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": cpu_count(),
        "load_1min": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def version(distribution):
    """Installed version of a pip distribution, "?" when unknown."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def now():
    return datetime.datetime.now().isoformat(timespec="seconds")


def table(rows, kind, k):
    """Single-thread QPS at each recall target per engine, and deg's ratio to each peer.

    Parameters
    ----------
    rows : list of dict
        Result lines (``engine``, ``kind``, ``recall``, ``qps_1t``, ``build_s``,
        ``memory_bytes``).
    kind : {"unindexed", "indexed"}
    k : int

    Returns
    -------
    str
        QPS is interpolated on each engine's Pareto frontier (:func:`bench.metrics.qps_at`);
        "n/a" where the engine never reached the target.
    """
    engines = sorted(
        {r["engine"] for r in rows if r["kind"] == kind}, key=lambda e: (e != "deg", e)
    )
    at = {}
    lines = [
        f"{kind} queries, recall@{k}: single-thread QPS at the recall target "
        "(interpolated on the Pareto frontier)",
        f"{'engine':13s}{'build s':>9s}{'MiB':>8s}"
        + "".join(f"{'@' + str(t):>10s}" for t in TARGETS)
        + f"{'max recall':>12s}",
    ]
    for e in engines:
        mine = [r for r in rows if r["engine"] == e and r["kind"] == kind]
        pts = [(r["recall"], r["qps_1t"]) for r in mine]
        at[e] = [metrics.qps_at(pts, t) for t in TARGETS]
        cells = "".join(f"{v:10.0f}" if v else f"{'n/a':>10s}" for v in at[e])
        lines.append(
            f"{e:13s}{mine[0]['build_s']:9.1f}{mine[0]['memory_bytes'] / 2**20:8.0f}"
            f"{cells}{max(p[0] for p in pts):12.4f}"
        )
    if "deg" in at:
        for e in engines[1:]:
            cells = "".join(
                f"{a / b:9.2f}x" if a and b else f"{'n/a':>10s}" for a, b in zip(at["deg"], at[e])
            )
            lines.append(f"{'deg / ' + e:30s}{cells}")
    return "\n".join(lines)
