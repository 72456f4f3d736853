"""Recall/QPS Pareto plots: recall on a logit axis, QPS on a log axis."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    ax.set_xlabel("recall@k (ANN-Benchmarks threshold rule)")
    ax.set_ylabel("queries per second, 1 thread")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
