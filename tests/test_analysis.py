"""The checker must notice each kind of broken graph (else the invariant tests prove nothing)."""

import numpy as np
import pytest

import deg
from deg import analysis
from tests.conftest import low_dim_data


@pytest.fixture
def index():
    return deg.Index.build(low_dim_data(400, dim=8), edges_per_vertex=6, progress=False)


def test_healthy_graph_passes(index):
    report = analysis.check(index)
    assert report["ok"] and report["n"] == 400
    assert report["aew"] == pytest.approx(analysis.average_edge_weight(index))
    assert 0.0 < report["gq"] <= 1.0


def break_one_side(ix):
    """Replace an edge 0-v by a self loop in row 0 only: one-sided and degree-deficient."""
    v = int(ix.internals().store.neighbors[0, 0])
    ix.internals().store.neighbors[0, 0] = 0
    ix.internals().store.weights[0, 0] = 0.0
    return v


@pytest.mark.parametrize(
    "breaker, broken",
    [
        (break_one_side, {"regular", "no_self_loops", "undirected"}),
        (
            lambda ix: ix.internals().store.weights.__setitem__(
                (5, 2), ix.internals().store.weights[5, 2] * 1.01
            ),
            {"weights_exact", "undirected"},
        ),
        (
            lambda ix: ix.internals().store.neighbors.__setitem__(
                (7, 1), ix.internals().store.neighbors[7, 0]
            ),  # a vertex twice
            {"regular", "undirected"},
        ),
    ],
)
def test_checker_detects(index, breaker, broken):
    breaker(index)
    report = analysis.check(index)
    assert not report["ok"]
    assert {
        k
        for k in ("regular", "no_self_loops", "undirected", "weights_exact", "connected")
        if not report[k]
    } >= broken


def test_checker_detects_disconnection():
    # two separate complete graphs K5 + K5, each 4-regular: everything but connectivity holds
    x = np.vstack([np.zeros((5, 2)), np.full((5, 2), 100.0)]).astype(np.float32)
    x += np.arange(10, dtype=np.float32)[:, None] * 0.01
    a = deg.Index.build(x[:5], edges_per_vertex=4, progress=False)
    b = deg.Index.build(x[5:], edges_per_vertex=4, progress=False)
    merged = deg.Index(2, edges_per_vertex=4)
    merged.internals().store.reserve(10)
    merged.internals().store.vectors[:10] = x
    merged.internals().store.neighbors[:5] = a.internals().store.neighbors[:5]
    merged.internals().store.neighbors[5:10] = b.internals().store.neighbors[:5] + 5
    merged.internals().store.weights[:5], merged.internals().store.weights[5:10] = (
        a.internals().store.weights[:5],
        b.internals().store.weights[:5],
    )
    merged.internals().store.labels[:10] = np.arange(10)
    merged.internals().store.n = 10
    report = analysis.check(merged)
    assert report["regular"] and report["undirected"] and report["weights_exact"]
    assert not report["connected"] and not report["ok"]
