"""Recall/QPS Pareto plots: recall on a logit axis, QPS on a log axis.

``python -m bench.plot RUN.jsonl`` redraws both plots of a finished run next to it.
"""

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server, no GUI toolkit needed
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullFormatter

from bench.metrics import RECALL_CAP, pareto

TICKS = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)


def plot(rows, kind, title, path):
    """Draw each engine's Pareto frontier of (recall, single-thread QPS) to a PNG.

    Parameters
    ----------
    rows : list of dict
        Result lines (``engine``, ``kind``, ``recall``, ``qps_1t``).
    kind : {"unindexed", "indexed"}
    title : str
    path : str or Path
    """
    fig, ax = plt.subplots(figsize=(7, 5))
    drawn = False
    for engine in sorted({r["engine"] for r in rows}, key=lambda e: (e != "deg", e)):
        pts = [
            (r["recall"], r["qps_1t"])
            for r in rows
            if r["engine"] == engine and r["kind"] == kind and r["recall"] > 0
        ]
        front = [(min(r, RECALL_CAP), q) for r, q in pareto(pts)]
        if front:
            ax.plot(
                [p[0] for p in front],
                [p[1] for p in front],
                marker="o",
                ms=3,
                label=engine,
                lw=2.2 if engine == "deg" else 1.2,
            )
            drawn = True
    ax.set_xscale("logit")
    ax.set_yscale("log")
    low = min(ax.get_xlim()[0], 0.9)
    ax.set_xticks([t for t in TICKS if t >= low])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"recall@k (ANN-Benchmarks threshold rule; 1.0 drawn at {RECALL_CAP})")
    ax.set_ylabel("queries per second, 1 thread")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    run = Path(sys.argv[1])
    lines = [json.loads(line) for line in run.read_text().splitlines() if line]
    first = lines[0]
    m = first["machine"]
    where = f"{m['cpu']}, {m['cores']} cores, load {m['load_1min']}, {first['date']}"
    for kind in ("unindexed", "indexed"):  # beside the run, named after it: no run's plots lost
        title = f"{first['dataset']}: {kind} queries, k={first['k']}\n{where}"
        plot(lines, kind, title, run.with_name(f"{run.stem}-{kind}.png"))
