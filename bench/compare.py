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
    """``{name: value}`` for one run: ``<kind>@<target>`` (deg / best peer, and which peer),
    ``build/deglib`` and ``batch speed-up``."""
    out = {}
    for kind in KINDS:
        engines = {r["engine"] for r in rows if r["kind"] == kind}
        at = {
            e: [
                metrics.qps_at(
                    [
                        (r["recall"], r["qps_1t"])
                        for r in rows
                        if r["engine"] == e and r["kind"] == kind
                    ],
                    t,
                )
                for t in TARGETS
            ]
            for e in engines
        }
        if "deg" not in at:
            continue
        for i, t in enumerate(TARGETS):
            peers = {e: v[i] for e, v in at.items() if e != "deg" and v[i]}
            if at["deg"][i] and peers:
                best = max(peers, key=peers.get)
                out[f"{kind}@{t}"] = (at["deg"][i] / peers[best], best)
    build = {r["engine"]: r["build_s"] for r in rows}
    if "deg" in build and "deglib" in build:
        out["build/deglib"] = (build["deg"] / build["deglib"], "deglib")
    mine = [r["qps_batch"] / r["qps_1t"] for r in rows if r["engine"] == "deg"]
    if mine:
        out["batch speed-up"] = (statistics.median(mine), f"{rows[0]['threads']} threads")
    return out


def main(paths):
    runs = [(Path(p).name, ratios(load(p))) for p in paths]
    names = sorted({n for _, r in runs for n in r}, key=lambda n: (n[0] not in "ui", n))
    print(f"{'':22s}" + "".join(f"{name[4:19]:>22s}" for name, _ in runs) + f"{'median':>10s}")
    for n in names:
        vals = [r.get(n) for _, r in runs]
        cells = "".join(f"{v[0]:8.2f}x {v[1][:12]:>12s}" if v else f"{'n/a':>22s}" for v in vals)
        med = statistics.median(v[0] for v in vals if v)
        print(f"{n:22s}{cells}{med:9.2f}x")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
