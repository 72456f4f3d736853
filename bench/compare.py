"""``python -m bench.compare RUN.jsonl [RUN.jsonl ...]``: deg's ratios to its peers, run by run.

On a shared machine one run's ratio moves by 10-30%; this prints, for each run and as the
median over the runs, what issue 5's targets ask: deg's single-thread QPS over the best peer's
at each recall target (unindexed and indexed), the build time over deglib's, and deg's batch
speed-up on all threads (median over its settings).
"""

import json
import statistics
import sys
from pathlib import Path

from bench import metrics
from bench.report import TARGETS

KINDS = ("unindexed", "indexed")


def load(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def ratios(rows):
    """``{name: (value, about, mark)}`` for one run: ``<kind>@<target>`` (deg / best peer, and
    which peer), ``build/deglib`` and ``batch speed-up``. ``mark`` is ``">="`` where deg's
    QPS there is a lower bound (its fastest setting already passed the target, see
    ``bench.report.table``), ``"<="`` where the peer's is, else ``""``; a target where both
    are lower bounds is left out (the ratio is unknown)."""
    out = {}
    for kind in KINDS:
        engines = {r["engine"] for r in rows if r["kind"] == kind}
        pts = {
            e: [(r["recall"], r["qps_1t"]) for r in rows if r["engine"] == e and r["kind"] == kind]
            for e in engines
        }
        if "deg" not in pts:
            continue
        for t in TARGETS:
            at = {e: metrics.qps_at(p, t) for e, p in pts.items()}
            peers = {e: v for e, v in at.items() if e != "deg" and v}
            if not (at["deg"] and peers):
                continue
            best = max(peers, key=peers.get)
            low, peer_low = metrics.clamped(pts["deg"], t), metrics.clamped(pts[best], t)
            if low and peer_low:
                continue
            mark = ">=" if low else "<=" if peer_low else ""
            out[f"{kind}@{t}"] = (at["deg"] / peers[best], best, mark)
    build = {r["engine"]: r["build_s"] for r in rows}
    if "deg" in build and "deglib" in build:
        out["build/deglib"] = (build["deg"] / build["deglib"], "deglib", "")
    mine = [r["qps_batch"] / r["qps_1t"] for r in rows if r["engine"] == "deg"]
    if mine:
        out["batch speed-up"] = (statistics.median(mine), f"{rows[0]['threads']} threads", "")
    return out


def main(paths):
    """Print one column per run and the median; a median over bounded cells carries their
    mark when they all agree, ``~`` when they are mixed."""
    runs = [(Path(p).name, ratios(load(p))) for p in paths]
    names = sorted({n for _, r in runs for n in r}, key=lambda n: (n[0] not in "ui", n))
    print(f"{'':22s}" + "".join(f"{name[4:19]:>24s}" for name, _ in runs) + f"{'median':>12s}")
    for n in names:
        vals = [r.get(n) for _, r in runs]
        cells = "".join(
            f"{v[2] + format(v[0], '.2f') + 'x':>10s} {v[1][:12]:>13s}" if v else f"{'n/a':>24s}"
            for v in vals
        )
        med = statistics.median(v[0] for v in vals if v)
        marks = {v[2] for v in vals if v}
        mark = marks.pop() if len(marks) == 1 else "~"
        print(f"{n:22s}{cells}{mark + format(med, '.2f') + 'x':>12s}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
