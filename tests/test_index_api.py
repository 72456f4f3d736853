"""The public API: labels, inspection, and bad input that must leave the index unchanged."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import deg
from tests.conftest import assert_graph_ok


@pytest.fixture
def index():
    x = np.random.default_rng(0).random((100, 5), dtype=np.float32)
    return deg.Index.build(x, edges_per_vertex=6, progress=False)


def snapshot(index):
    nb, w = index.neighbors(index.labels)
    return len(index), index.labels.tolist(), nb.tolist(), w.tolist()


def test_attributes_and_labels(index):
    assert len(index) == 100 and index.dim == 5 and index.metric == "l2"
    assert index.edges_per_vertex == 6 and index.extend_k == 8  # 4d/3
    assert 99 in index and 100 not in index and "x" not in index
    new = index.add(np.ones((2, 5)))
    assert new.tolist() == [100, 101]
    index.add(np.zeros((1, 5)), labels=[500])
    assert index.add(np.ones(5)).tolist() == [501]  # default labels continue after the largest
    assert "deg.Index(dim=5" in repr(index)


def test_get_vectors_and_neighbors(index):
    x = index.get_vectors([3, 4])
    assert x.shape == (2, 5) and x.dtype == np.float32
    nb, w = index.neighbors([3])
    assert nb.shape == (1, 6) and nb.dtype == np.int64 and w.dtype == np.float32
    true = ((index.get_vectors(nb[0]) - x[0]) ** 2).sum(1)
    np.testing.assert_allclose(w[0], true, rtol=1e-5)
    small = deg.Index.build(np.eye(3, dtype=np.float32), edges_per_vertex=4, progress=False)
    nb, w = small.neighbors([0])
    assert sorted(nb[0].tolist()) == [-1, -1, 1, 2] and np.isinf(w[0][nb[0] == -1]).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"dim": 0}, ValueError, "dim must be >= 1"),
        ({"dim": 4, "edges_per_vertex": 7}, ValueError, "even number from 2 to 1024, got 7"),
        ({"dim": 4, "edges_per_vertex": 0}, ValueError, "even number from 2 to 1024, got 0"),
        # the bound of edges_per_vertex itself, not of improve_k, which defaults to it
        ({"dim": 4, "edges_per_vertex": 2000}, ValueError, "edges_per_vertex must be an even"),
        ({"dim": 4, "edges_per_vertex": 1026}, ValueError, "from 2 to 1024, got 1026"),
        ({"dim": 4, "improve_tries": 10**9}, ValueError, "improve_tries must be <= 100"),
        ({"dim": 4, "extend_k": 10**9}, ValueError, "extend_k must be <= 4096"),
        ({"dim": 4, "extend_eps": 1e9}, ValueError, "extend_eps must be <= 10"),
        ({"dim": 4, "improve_eps": 11}, ValueError, "improve_eps must be <= 10"),
        ({"dim": 4, "improve_k": 1025}, ValueError, "improve_k must be <= 1024"),
        ({"dim": 4, "max_path_length": 65}, ValueError, "max_path_length must be <= 64"),
        ({"dim": 4, "seed": -1}, ValueError, "seed must be >= 0"),
        ({"dim": 4, "seed": 2**64}, ValueError, "seed must be <= 18446744073709551615"),
        ({"dim": 2**21}, ValueError, "dim must be <= 1048576"),
        ({"dim": 4, "metric": "manhattan"}, ValueError, "metric must be one of"),
        ({"dim": 4, "scheme": "x"}, ValueError, "scheme must be one of"),
        ({"dim": 4, "extend_eps": float("nan")}, ValueError, "extend_eps must be finite"),
        ({"dim": 2.5}, TypeError, "dim must be an integer"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        deg.Index(**kwargs)


@pytest.mark.parametrize(
    "data, labels, error, match",
    [
        (np.ones((2, 4)), None, ValueError, "data has 4 features, but the index expects dim = 5"),
        (np.ones((2, 2, 5)), None, ValueError, "must be 1-D .* or 2-D"),
        (
            np.array([[1, 2, 3, 4, np.nan]]),
            None,
            ValueError,
            "NaN or infinity \\(first in row 0\\)",
        ),
        (np.array([[1, 2, 3, 4, 1e39]]), None, ValueError, "NaN or infinity"),
        (
            np.array([[1, 2, 3, 4, 5], [1, 2, 3, 4, 1e19]]),
            None,
            ValueError,
            "data row 1 has norm 1e\\+19, beyond the 9.22e\\+18 whose distances still fit",
        ),
        (
            np.array([[1, 2, 3, 4, 5], [1, 2, 3, 4, 1e19]], dtype=np.float32),
            None,
            ValueError,
            "data row 1 has norm 1e\\+19",
        ),  # the fast path for float32 input too
        (np.array([["a"] * 5]), None, TypeError, "must be numeric"),
        (np.ones((2, 5)), [7, 7], ValueError, "duplicates, e.g. 7"),
        (np.ones((2, 5)), [3, 1000], ValueError, "label 3 is already in the index"),
        (np.ones((2, 5)), [1000], ValueError, "labels must have shape \\(2,\\)"),
        (np.ones((2, 5)), [-1, 1000], ValueError, "labels must be >= 0"),
        (np.ones((2, 5)), [0.5, 1000], TypeError, "labels must be integers"),
    ],
)
def test_bad_add_leaves_index_unchanged(index, data, labels, error, match):
    before = snapshot(index)
    with pytest.raises(error, match=match):
        index.add(data, labels=labels)
    assert snapshot(index) == before
    assert_graph_ok(index)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda ix: ix.search(np.ones((1, 4))), ValueError, "queries has 4 features"),
        (lambda ix: ix.search(np.ones(5), k=0), ValueError, "k must be >= 1, got 0"),
        (lambda ix: ix.search(np.ones(5), k=2.0), TypeError, "k must be an integer"),
        (lambda ix: ix.search(np.ones(5), eps=-0.1), ValueError, "eps must be >= 0"),
        (lambda ix: ix.search(np.full(5, np.inf)), ValueError, "NaN or infinity"),
        (
            lambda ix: ix.search(np.full((1, 5), 5e18, np.float32)),
            ValueError,
            "queries row 0 has norm",
        ),
        (lambda ix: ix.search(np.ones(5), threads=0), ValueError, "threads must be >= 1"),
        (lambda ix: ix.search(np.ones(5), max_distance_computations=-1), ValueError, ">= 0"),
        (lambda ix: ix.explore([1, 10**9]), KeyError, "label 1000000000 is not in the index"),
        (lambda ix: ix.explore([0.5]), TypeError, "entry_labels must be integers"),
        (lambda ix: ix.get_vectors([77, -3]), KeyError, "label -3"),
    ],
)
def test_bad_query_input(index, call, error, match):
    before = snapshot(index)
    with pytest.raises(error, match=match):
        call(index)
    assert snapshot(index) == before


def test_cosine_rejects_zero_vectors():
    index = deg.Index(3, metric="cosine", edges_per_vertex=2)
    with pytest.raises(ValueError, match="row 1 has norm 0"):
        index.add(np.array([[1, 0, 0], [0, 0, 0]]))
    assert len(index) == 0


@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 5), st.integers(1, 40)),
        elements=st.floats(-(2.0**100), 2.0**100, width=32),
    )
)
def test_cosine_rows_are_normalised_as_numpy_does_up_to_rounding(x):
    from deg._validation import normalize_rows

    norms = np.sqrt((x.astype(np.float64) ** 2).sum(1))
    if (norms == 0).any():
        first = int(np.flatnonzero(norms == 0)[0])
        with pytest.raises(ValueError, match=f"row {first} has norm 0"):
            normalize_rows(x)
        return
    got = normalize_rows(x)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == x.shape
    np.testing.assert_allclose(got, x / norms[:, None], rtol=1e-6, atol=1e-30)


@given(
    arrays(
        np.float32, st.tuples(st.integers(0, 4), st.integers(1, 40)), elements=st.floats(width=32)
    ),
    st.floats(0.0, 3.3999999521443642e38, width=32),
)
def test_quick_value_check_agrees_with_numpy(x, limit):
    """``all_within``, the validation's quick pass (NaN and inf included)."""
    from deg._kernels.distances import all_within

    assert all_within(x, np.float32(limit)) == bool((np.abs(x) <= limit).all())


def test_cosine_is_scale_invariant():
    x = np.random.default_rng(1).random((200, 6), dtype=np.float32) + 0.1
    index = deg.Index.build(x, metric="cosine", edges_per_vertex=8, progress=False)
    a = index.search(x[:10], k=5)
    b = index.search(x[:10] * 7.5, k=5)
    assert np.array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)


def test_progress_bar_whenever_asked(capsys):
    """build's default is progress=True: a bar for any size (it was shown from 20 000 on)."""
    x = np.random.default_rng(2).random((300, 4), dtype=np.float32)
    index = deg.Index.build(x, edges_per_vertex=4, progress=True)
    assert "deg add" in capsys.readouterr().err and len(index) == 300
    index.optimize(tries=200, progress=True)
    assert "deg optimize" in capsys.readouterr().err
    deg.Index.build(x, edges_per_vertex=4, progress=False)
    assert capsys.readouterr().err == ""


def test_cosine_takes_long_vectors():
    """Cosine rows are normalised (in float64) before any distance: length does not matter."""
    index = deg.Index(3, metric="cosine", edges_per_vertex=2)
    index.add(np.array([[1e30, 0, 0], [0, 1e30, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32))
    labels, dists = index.search(np.array([2e30, 1e28, 0], np.float32), k=1)
    assert labels[0, 0] == 0 and np.isfinite(dists).all()


def test_vector_near_the_norm_bound_is_taken():
    """One large coordinate: beyond the quick per-value test, within the norm bound itself."""
    from deg import _validation

    x = np.zeros((1, 5), np.float32)
    x[0, 0] = 0.98 * _validation.MAX_SQ_NORM**0.5
    assert not _validation._surely_within(x)
    assert _validation.as_vectors(x, 5) is not None
    index = deg.Index(5, edges_per_vertex=2)
    index.add(np.concatenate([np.eye(5, dtype=np.float32), x]))
    labels, dists = index.search(x, k=1)
    assert labels[0, 0] == 5 and dists[0, 0] == 0


def test_analysis_after_a_plain_import():
    code = (
        "import deg, numpy as np; i = deg.Index(2); i.add(np.ones((3, 2)));"
        "print(deg.analysis.check(i)['ok'])"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "True", out.stderr[-1000:]


def test_read_only_label_arrays_are_taken():
    """Labels in a read-only array (np.frombuffer, shared memory, a Ray object) look up as any
    others (the label kernels take writable arrays)."""
    x = np.random.default_rng(3).random((300, 8), dtype=np.float32)
    index = deg.Index.build(x, edges_per_vertex=8, progress=False)
    ro = np.frombuffer(np.arange(5, dtype=np.int64).tobytes(), dtype=np.int64)
    assert not ro.flags.writeable
    np.testing.assert_array_equal(index.get_vectors(ro), x[:5])
    assert index.explore(ro, k=3)[0].shape == (5, 3)
    assert index.neighbors(ro)[0].shape == (5, 8)
    index.remove(ro)
    assert len(index) == 295 and 0 not in index
