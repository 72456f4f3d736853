"""Recall/QPS Pareto plots: recall on a logit axis, QPS on a log axis."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from bench.metrics import pareto  # noqa: E402


def plot(rows, kind, title, path):
    """One line per engine: its Pareto frontier of (recall, single-thread QPS)."""
    fig, ax = plt.subplots(figsize=(7, 5))
    for engine in sorted({r["engine"] for r in rows}):
        pts = [(r["recall"], r["qps_1t"]) for r in rows
               if r["engine"] == engine and r["kind"] == kind and r["recall"] > 0]
        front = [(min(r, 0.9999), q) for r, q in pareto(pts)]
        if front:
            ax.plot([p[0] for p in front], [p[1] for p in front], marker="o", ms=3,
                    label=engine, lw=2.2 if engine == "deg" else 1.2)
    ax.set_xscale("logit")
    ax.set_yscale("log")
    ticks = [t for t in (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)
             if t >= min(ax.get_xlim()[0], 0.9)]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("recall@k (ANN-Benchmarks threshold rule; 1.0 drawn at 0.9999)")
    ax.set_ylabel("queries per second, 1 thread")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":  # redraw from a run's JSON lines: python -m bench.plot RUN.jsonl
    import json
    import sys
    from pathlib import Path
    path = Path(sys.argv[1])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    for kind in ("unindexed", "indexed"):
        plot(rows, kind, f"{rows[0]['dataset']}: {kind} queries, k={rows[0]['k']}",
             path.parent / f"{kind}.png")
