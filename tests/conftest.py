"""Shared fixtures: hypothesis profiles, the shared datasets folder, graph assertions."""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from deg import analysis

settings.register_profile(
    "dev", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=40,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

SHARED = (
    Path(os.environ.get("DEG_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "datasets"
)


def shared_file(*parts):
    """Path of a file in ../shared/datasets, or skip the test saying where it looked."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real-data test: {path} is absent (only CI and the team's machines have "
            f"../shared/datasets; set DEG_SHARED_DIR to point elsewhere)"
        )
    return path


def saved_params(index):
    """The parameter block a save of ``index`` writes (for tests that write files by hand)."""
    from deg import _persistence

    parts = index.internals()
    return _persistence.to_dict(parts.params, parts.store, parts.tree, parts.rand_state)


def assert_graph_ok(index):
    """Every DEG invariant: even-regular, undirected, no self loops/duplicates, exact weights,
    connected; and the search view is current."""
    report = analysis.check(index, gq_sample=16)
    broken = [k for k in analysis.INVARIANTS if not report[k]]
    assert not broken, f"graph invariants broken: {broken}; report {report}"
    return report


def brute_force(base, queries, k, metric="l2"):
    """Exact k-NN in float64: (ids (nq, k), distances (nq, k)) in the index's distance."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "cosine":
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "l2":
        dist = (q**2).sum(1)[:, None] - 2 * q @ b.T + (b**2).sum(1)[None, :]
    else:
        dist = 1.0 - q @ b.T
    ids = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(dist, ids, axis=1)


def recall(found, truth):
    """Id-overlap recall of (nq, k) label arrays."""
    k = truth.shape[1]
    return float(
        np.mean([len(set(f[:k].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth)])
    )


def low_dim_data(n, dim=32, latent=6, seed=0):
    """Vectors of low intrinsic dimension in ``dim`` dimensions (algorithm.md §13.7 recipe)."""
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((latent, dim)).astype(np.float32)
    z = rng.random((n, latent), dtype=np.float32)
    return (z @ proj + 0.01 * rng.standard_normal((n, dim))).astype(np.float32)
