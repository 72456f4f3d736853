"""What a run records about its surroundings, and the summary table it prints."""

import datetime
import os
import platform
import time
from importlib import metadata

from bench import metrics
from bench.engines import cpu_count

TARGETS = (0.90, 0.95, 0.99)


# the edge-coded walk's popcounts vectorise with avx512_vpopcntdq, float16 rows widen with f16c
SIMD_FLAGS = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512vbmi",
    "avx512_vpopcntdq",
    "avx512_bf16",
)


def machine():
    """CPU model, usable cores, load average and Python: enough to tell two machines apart."""
    cpu, flags = "?", []
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        fields = {k.strip(): v for k, v in (ln.split(":", 1) for ln in lines if ":" in ln)}
        cpu = fields.get("model name", "?").strip()
        have = fields.get("flags", "").split()
        flags = [f for f in SIMD_FLAGS if f in have]
    except OSError:
        pass
    # other processes on a shared machine skew timings: record how busy it was at the start
    load = load_now()
    return {
        "cpu": cpu,
        "simd": " ".join(flags),
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


def commit():
    """The git commit of the code measured (``-dirty`` with uncommitted changes), or "?"."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def git(*args, check=False):
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=check
        ).stdout

    try:
        head = git("rev-parse", "--short=12", "HEAD", check=True)
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "?"
    return head.strip() + ("-dirty" if dirty.strip() else "")


def load_now():
    """The 1-minute load average now (None where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def cpu_sample():
    """``(busy, own, wall)`` seconds: CPU time all processors spent busy (from /proc/stat,
    steal included: other virtual machines), this process's CPU time, and a clock. Two
    samples give how many cores *other* processes kept busy in between (``others``); None
    where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    t = os.times()
    busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return busy, t.user + t.system, time.monotonic()


def others(start, end):
    """Cores that other processes kept busy on average between two ``cpu_sample``s."""
    # /proc/stat counts in clock ticks (10 ms): a shorter window cannot tell
    if start is None or end is None or end[2] - start[2] < 0.1:
        return None
    return round(max(0.0, (end[0] - start[0]) - (end[1] - start[1])) / (end[2] - start[2]), 2)


def cpu_mhz():
    """The mean clock of the cores as /proc/cpuinfo reports it now (None where it does not).
    On a virtual machine this is often the nominal clock the hypervisor advertises, not a
    measurement: it then tells machines apart, not moments."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":", 1)[1]) for line in f if line.startswith("cpu MHz")]
    except (OSError, ValueError):
        return None
    return round(sum(mhz) / len(mhz)) if mhz else None


def surroundings(rows):
    """One line per engine: other processes' cores (mean and worst over its settings, and over
    its build) and the CPU clock reported while it was measured."""
    lines = ["while measured (other processes' cores: settings mean/max, build; clock MHz):"]
    for e in sorted({r["engine"] for r in rows}, key=lambda e: (e != "deg", e)):
        mine = [r for r in rows if r["engine"] == e]
        cores = [r["other_cores"] for r in mine if r.get("other_cores") is not None]
        mhz = [r["cpu_mhz"] for r in mine if r.get("cpu_mhz") is not None]
        build = mine[0].get("build_other_cores")
        lines.append(
            f"  {e:13s}"
            + (f"{sum(cores) / len(cores):5.2f}/{max(cores):4.2f}" if cores else "    ?")
            + (f", build {build:4.2f}" if build is not None else ", build ?")
            + (f"; {min(mhz)}-{max(mhz)} MHz" if mhz else "")
        )
    return "\n".join(lines)


def busy_warning(rows, cores):
    """A warning line when other processes kept more than half the cores busy while one of an
    engine's settings or its build was measured (``other_cores``, ``build_other_cores``; the
    benchmark's own threads do not count), or None: they then take cycles from some
    measurements and not others."""
    worst = {}
    for r in rows:
        for key in ("other_cores", "build_other_cores"):
            if r.get(key) is not None:
                worst[r["engine"]] = max(worst.get(r["engine"], 0), r[key])
    busy = {e: v for e, v in worst.items() if v > cores / 2}
    if not busy:
        return None
    said = ", ".join(f"{e} {v:.2f}" for e, v in sorted(busy.items()))
    return (
        f"WARNING: other processes kept more than {cores / 2:g} of the {cores} cores busy "
        f"while these engines ran (cores, on average): {said}. Their QPS and the ratios "
        f"are unreliable; run again on a quiet machine."
    )


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
        "n/a" where the engine never reached the target; ">=" where even its fastest setting
        passed the target (a lower bound), and the ratios with such a cell say ">=" or "<=".
    """
    engines = sorted(
        {r["engine"] for r in rows if r["kind"] == kind}, key=lambda e: (e != "deg", e)
    )
    at, low = {}, {}
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
        low[e] = [metrics.clamped(pts, t) for t in TARGETS]
        cells = "".join(cell(v, lb) for v, lb in zip(at[e], low[e]))
        lines.append(
            f"{e:13s}{mine[0]['build_s']:9.1f}{mine[0]['memory_bytes'] / 2**20:8.0f}"
            f"{cells}{max(p[0] for p in pts):12.4f}"
        )
    if "deg" in at:
        for e in engines[1:]:
            cells = "".join(
                ratio(a, b, la, lb) for a, b, la, lb in zip(at["deg"], at[e], low["deg"], low[e])
            )
            lines.append(f"{'deg / ' + e:30s}{cells}")
    ours = [e for e in engines if is_deg(e)]
    if len(ours) > 1:  # deg's variants (dtype, quantizer): the fastest of them per target
        best = [max(ours, key=lambda e, t=t: at[e][t] or 0) for t in range(len(TARGETS))]
        lines.append(f"{'deg best is':30s}" + "".join(f"{e[4:] or 'f32':>10s}" for e in best))
        for e in (e for e in engines if not is_deg(e)):
            cells = "".join(
                ratio(at[b][t], at[e][t], low[b][t], low[e][t]) for t, b in enumerate(best)
            )
            lines.append(f"{'deg best / ' + e:30s}{cells}")
    return "\n".join(lines)


def is_deg(engine: str) -> bool:
    """deg itself or one of its variants (``deg-f16``...), not deglib."""
    return engine == "deg" or engine.startswith("deg-")


def cell(value, lower_bound):
    """A QPS cell: ``n/a`` without a value, ``>=`` before a lower bound."""
    if not value:
        return f"{'n/a':>10s}"
    return f"{('>=' if lower_bound else '') + format(value, '.0f'):>10s}"


def ratio(a, b, a_low, b_low):
    """deg's QPS over a peer's: a lower bound of deg's makes the ratio one too, a lower bound
    of the peer's makes it an upper bound; both: unknown."""
    if not (a and b) or (a_low and b_low):
        return f"{'n/a':>10s}"
    mark = ">=" if a_low else "<=" if b_low else ""
    return f"{mark + format(a / b, '.2f') + 'x':>10s}"
