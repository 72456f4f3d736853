"""The rotated basis (``Index(rotate=...)``, ``deg._basis``): distances kept, variance up front,
the graph intact when an index adopts it, files and pickles that carry it."""

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deg
from deg import _basis as basis
from deg import fileformat
from deg._kernels.rotation import rotate_rows
from tests.conftest import assert_graph_ok, brute_force, low_dim_data, recall, saved_params


def _rotated(x, yt, tt):
    out = np.empty_like(x)
    rotate_rows(x, yt, tt, out)
    return out


@given(dim=st.integers(1, 40), rank=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_rotation_is_orthogonal_and_matches_its_formula(dim, rank, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((max(2 * dim, 8), dim)).astype(np.float32)
    yt, tt = basis.fit(x, rank)
    assert yt.shape == (min(rank, dim), dim) and basis.check(yt, tt, dim) is None
    z = _rotated(x, yt, tt)
    y, t = yt.astype(np.float64), tt.astype(np.float64)
    want = x - ((x @ y.T) @ t.T) @ y  # Q^T x with Q = I - Y T Y^T
    assert np.allclose(z, want, atol=1e-4)
    q = np.eye(dim) - y.T @ t.T @ y
    assert np.allclose(q.T @ q, np.eye(dim), atol=1e-5)
    d_in = ((x[:, None] - x[None]) ** 2).sum(-1)
    d_out = ((z[:, None] - z[None]) ** 2).sum(-1)
    assert np.allclose(d_in, d_out, rtol=1e-4, atol=1e-3)
    assert np.allclose(basis.unrotate(z, yt, tt), x, atol=1e-4)


@given(
    dim=st.integers(1, 30),
    rank=st.integers(1, 30),
    rows=st.integers(1, 11),
    seed=st.integers(0, 2**16),
)
def test_a_rows_rotation_does_not_depend_on_its_block_mates(dim, rank, rows, seed):
    """The kernel rotates four rows at a time; each row must come out with the same bits alone,
    in another block or at another place (stored vectors and queries meet at distance 0)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    yt, tt = basis.fit(rng.standard_normal((40, dim)).astype(np.float32), rank)
    together = _rotated(x, yt, tt)
    order = rng.permutation(rows)
    assert np.array_equal(_rotated(np.ascontiguousarray(x[order]), yt, tt), together[order])
    for i in range(rows):
        assert np.array_equal(_rotated(x[i : i + 1], yt, tt), together[i : i + 1])


def test_leading_directions_come_first():
    """Data with 6 strong directions among 300: after rotation the first coordinates hold
    nearly all the variance (in the input basis the first 64 hold about a fifth)."""
    x = low_dim_data(3000, dim=300, latent=6, seed=1)
    yt, tt = basis.fit(x)
    z = _rotated(x, yt, tt)
    share = z.var(axis=0)[:8].sum() / z.var(axis=0).sum()
    assert share > 0.99
    assert x.var(axis=0)[:64].sum() / x.var(axis=0).sum() < 0.5


def test_auto_rule_and_bad_values():
    assert basis.wanted(None, "l2", basis.AUTO_MIN_DIM)
    assert not basis.wanted(None, "l2", basis.AUTO_MIN_DIM - 1)
    assert basis.wanted(None, "cosine", 784) and not basis.wanted(None, "ip", 784)
    assert basis.wanted(True, "ip", 4) and not basis.wanted(False, "l2", 784)
    with pytest.raises(TypeError, match="rotate must be True, False or None, got 'yes'"):
        deg.Index(8, rotate="yes")


@pytest.fixture(scope="module")
def grown():
    """A rotated index grown by adds of 400: the basis is adopted by the third add."""
    x = low_dim_data(1600, dim=24, latent=8, seed=2)
    index = deg.Index(24, edges_per_vertex=10, rotate=True)
    for lo in range(0, 1600, 400):
        index.add(x[lo : lo + 400], threads=2)
        assert index.rotated == (lo + 400 >= basis.MIN_VECTORS) and index.rotate is True
        assert_graph_ok(index)  # weights equal the distances of the rotated vectors
    return index, x


def test_rotated_index_answers_like_the_input_basis(grown):
    index, x = grown
    q = low_dim_data(100, dim=24, latent=8, seed=3)
    found, dist = index.search(q, k=10, eps=0.2)
    truth, tdist = brute_force(x, q, 10)
    assert recall(found, truth) > 0.95
    hit = found == truth
    assert np.allclose(dist[hit], tdist[hit], rtol=1e-4, atol=1e-4)
    # a stored vector, given as a query, is rotated exactly as it was stored
    self_label, self_dist = index.search(x[:50], k=3, eps=0.2)
    assert np.array_equal(self_label[:, 0], np.arange(50)) and (self_dist[:, 0] == 0).all()
    back = index.get_vectors(np.arange(1600))
    assert np.allclose(back, x, rtol=1e-5, atol=1e-5) and not np.array_equal(back, x)


def test_rotated_build_and_search_do_not_depend_on_threads():
    x = low_dim_data(1200, dim=20, seed=6)
    a = deg.Index.build(x, edges_per_vertex=8, rotate=True, progress=False, threads=1)
    b = deg.Index.build(x, edges_per_vertex=8, rotate=True, progress=False, threads=2)
    assert np.array_equal(
        a.internals().store.neighbors[:1200], b.internals().store.neighbors[:1200]
    )
    assert np.array_equal(a.internals().store.vectors[:1200], b.internals().store.vectors[:1200])
    # each thread rotates the chunks of queries it claims: the answers cannot tell
    q = low_dim_data(70, dim=20, seed=8)
    one = a.search(q, k=5, threads=1)
    for threads in (2, 3):
        other = a.search(q, k=5, threads=threads)
        assert np.array_equal(one[0], other[0]) and np.array_equal(one[1], other[1])


def test_unrotated_index_keeps_vectors_bit_for_bit():
    x = low_dim_data(1200, dim=300, seed=7)
    index = deg.Index.build(x, edges_per_vertex=8, rotate=False, progress=False)
    assert not index.rotated and np.array_equal(index.get_vectors(np.arange(1200)), x)


@pytest.mark.parametrize("mmap", [False, True])
def test_files_and_pickles_carry_the_basis(grown, tmp_path, mmap):
    index, _x = grown
    q = low_dim_data(30, dim=24, latent=8, seed=4)
    index.save(tmp_path / "r.deg")
    copies = [deg.Index.load(tmp_path / "r.deg", mmap=mmap), pickle.loads(pickle.dumps(index))]
    want = index.search(q, k=8)
    for other in copies:
        got = other.search(q, k=8)
        assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
        assert np.array_equal(other.get_vectors([5, 9]), index.get_vectors([5, 9]))
    assert_graph_ok(copies[0])


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda yt, tt: (2 * yt, tt), "not unit vectors"),
        (lambda yt, tt: (yt, tt + np.tril(np.ones_like(tt))), "factors do not match"),
    ],
)
def test_a_file_with_a_broken_basis_is_refused(grown, tmp_path, spoil, match):
    """A valid checksum over a basis that is not orthogonal (a foreign or buggy writer)."""
    index, _ = grown
    n = len(index)
    fileformat.write(
        tmp_path / "b.deg",
        index.metric,
        saved_params(index),
        index.internals().store.vectors[:n],
        index.internals().store.neighbors[:n],
        index.internals().store.weights[:n],
        index.internals().store.labels[:n],
        index.internals().store.sig[:n],
        spoil(index.internals().basis.yt.copy(), index.internals().basis.tt.copy()),
    )
    with pytest.raises(ValueError, match=match):
        deg.Index.load(tmp_path / "b.deg")


def test_a_pickle_with_a_misshapen_basis_is_refused(grown):
    index, _ = grown
    unpickle, (metric, params, state) = index.__reduce__()  # what pickle stores
    state["rotation_t"] = state["rotation_t"][:-1]
    with pytest.raises(ValueError, match="rotation has shapes"):
        unpickle(metric, params, state)


def test_remove_and_optimize_keep_a_rotated_graph_intact():
    x = low_dim_data(1300, dim=24, latent=8, seed=8)
    index = deg.Index.build(x, edges_per_vertex=10, rotate=True, progress=False)
    assert index.rotated
    index.remove(np.arange(0, 1300, 7))
    assert_graph_ok(index)
    index.optimize(tries=300)
    assert_graph_ok(index)
    kept = np.setdiff1d(np.arange(1300), np.arange(0, 1300, 7))
    found, dist = index.search(x[kept[:40]], k=3, eps=0.2)
    assert np.array_equal(found[:, 0], kept[:40]) and (dist[:, 0] == 0).all()


def test_block_mates_at_production_size():
    """The same property at the size the bench uses (784-D, 64 reflections, 4 rows + 3)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 784)).astype(np.float32)
    yt, tt = basis.fit(rng.standard_normal((200, 784)).astype(np.float32))
    together = _rotated(x, yt, tt)
    for i in range(7):
        assert np.array_equal(_rotated(x[i : i + 1], yt, tt), together[i : i + 1])


def test_read_only_input_is_accepted():
    """Memory-mapped or frozen arrays: the typed kernels take writable arrays only."""
    x = low_dim_data(1100, dim=12, seed=9)
    x.setflags(write=False)
    index = deg.Index.build(x, edges_per_vertex=8, rotate=True, progress=False)
    assert index.rotated
    found, dist = index.search(x[:5], k=2, eps=0.2)
    assert np.array_equal(found[:, 0], np.arange(5)) and (dist[:, 0] == 0).all()


def test_rotated_cosine_index():
    """Cosine rotates too (rotate=None from 256 dimensions); its distances are 1 - cos."""
    x = low_dim_data(1200, dim=260, latent=10, seed=10) + 0.5
    index = deg.Index.build(x, metric="cosine", edges_per_vertex=10, progress=False)
    assert index.rotated
    assert_graph_ok(index)
    q = low_dim_data(50, dim=260, latent=10, seed=11) + 0.5
    found, dist = index.search(q, k=10, eps=0.2)
    truth, tdist = brute_force(x, q, 10, metric="cosine")
    assert recall(found, truth) > 0.95
    hit = found == truth
    assert np.allclose(dist[hit], tdist[hit], atol=1e-5)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.allclose(index.get_vectors(np.arange(10)), unit[:10], atol=1e-5)


def test_vectors_too_long_for_float32_distances_are_refused():
    """Rows whose distances (or rotation) would overflow float32 are refused before anything
    changes, stored vectors and queries alike (a query like that used to come back as NaN)."""
    x = low_dim_data(1100, dim=8, seed=12)
    index = deg.Index.build(x, edges_per_vertex=6, rotate=True, progress=False)
    big = np.full((2, 8), 3e38, dtype=np.float32)
    with pytest.raises(ValueError, match=r"data row 0 has norm 8.49e\+38, beyond"):
        index.add(np.concatenate([big, x[:1]]))
    with pytest.raises(ValueError, match="queries row 1 has norm"):
        index.search(np.concatenate([x[:1], big]))
    assert len(index) == 1100
    assert_graph_ok(index)
