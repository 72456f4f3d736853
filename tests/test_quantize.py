"""Quantized traversal (``Index(quantize="sq8")``, issue #24): the walk on codes finds what
the walk on vectors finds, the answers carry exact distances, the codes survive saving,
loading and pickling, and bad settings are refused."""

import pickle
import zlib

import numpy as np
import pytest

import deg
from deg import _quantizer as quantizer
from deg import fileformat
from tests.conftest import assert_graph_ok, brute_force, recall


def clustered(n=3000, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dim))
    x = centres[rng.integers(0, 30, n)] + 0.4 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


@pytest.mark.parametrize(
    "metric, dtype, dim", [("l2", "float32", 64), ("cosine", "float16", 300), ("l2", "uint8", 32)]
)
def test_recall_as_the_exact_walk_and_exact_distances(metric, dtype, dim):
    x = clustered(dim=dim)
    if dtype == "uint8":
        x = np.clip(np.round((x + 4) * 30), 0, 255)
    base, queries = x[:2800], x[2800:]
    exact = deg.Index.build(base, metric=metric, dtype=dtype, progress=False)
    coded = deg.Index.build(base, metric=metric, dtype=dtype, quantize="sq8", progress=False)
    assert coded.quantize == "sq8" and coded.internals().store.codes.shape[1] == dim
    assert_graph_ok(coded)
    stored = coded.get_vectors(coded.labels).astype(np.float32)
    truth = brute_force(stored, queries, 10, "l2" if metric == "l2" else "cosine")[0]
    for eps in (0.0, 0.1):
        labels, dists, stats = coded.search(queries, k=10, eps=eps, return_stats=True)
        want = recall(exact.search(queries, k=10, eps=eps)[0], truth)
        assert recall(labels, truth) >= min(0.97, want - 0.02)
        # the distances are the exact ones of the stored vectors, ascending
        again = exact.search(queries, k=10, eps=0.5)
        same = labels == again[0]
        np.testing.assert_allclose(dists[same], again[1][same], rtol=1e-5, atol=1e-6)
        assert (np.diff(dists, axis=1) >= 0).all()
        assert (stats["distance_computations"] > 0).all()
    # more candidates re-ranked: never worse here
    wide = coded.search(queries, k=10, eps=0.0, rerank=60)[0]
    assert recall(wide, truth) >= recall(coded.search(queries, k=10, eps=0.0)[0], truth) - 0.01


def test_small_indices_search_exactly_until_the_codes_are_fitted():
    x = clustered(n=1500)
    index = deg.Index(64, quantize="sq8")
    index.add(x[:900])
    assert not index._quant.fitted
    plain = deg.Index.build(x[:900], progress=False)
    np.testing.assert_array_equal(index.search(x[:20])[0], plain.search(x[:20])[0])
    index.add(x[900:])  # passes 1000: fitted on all rows, every row encoded
    assert index._quant.fitted
    store = index.internals().store
    np.testing.assert_array_equal(
        store.codes[:1500], index._quant.encode(store.floats(slice(0, 1500)))
    )


def test_codes_clip_values_beyond_the_fitted_range():
    x = clustered(n=1200)
    index = deg.Index.build(x, quantize="sq8", progress=False)
    far = np.full((1, 64), 1e4, np.float32)
    (label,) = index.add(far)
    store = index.internals().store
    assert (store.codes[len(index) - 1] == 255).all()
    labels, dists = index.search(far, k=1)
    assert labels[0, 0] == label and dists[0, 0] == 0


def test_saved_loaded_and_pickled_with_the_same_codes(tmp_path):
    x = clustered(n=1300)
    index = deg.Index.build(x, quantize="sq8", dtype="float16", progress=False)
    index.remove(np.arange(0, 1300, 11))
    index.save(tmp_path / "a.deg")
    codes = index.internals().store.codes[: len(index)]
    for loaded in (
        deg.Index.load(tmp_path / "a.deg"),
        deg.Index.load(tmp_path / "a.deg", mmap=True),
        pickle.loads(pickle.dumps(index)),
    ):
        assert loaded.quantize == "sq8"
        np.testing.assert_array_equal(loaded.internals().store.codes[: len(loaded)], codes)
        loaded.save(tmp_path / "b.deg")
        assert (tmp_path / "a.deg").read_bytes() == (tmp_path / "b.deg").read_bytes()
        np.testing.assert_array_equal(loaded.search(x[:30])[0], index.search(x[:30])[0])


def _with_params(path, old, new):
    raw = path.read_bytes()
    assert old in raw
    raw = bytearray(raw.replace(old, new))
    body = bytes(raw[: -fileformat._TRAILER.size])
    raw[-fileformat._TRAILER.size :] = fileformat._TRAILER.pack(zlib.crc32(body), b"DEND")
    path.write_bytes(bytes(raw))


def test_loading_refuses_a_quantizer_state_that_does_not_fit(tmp_path):
    index = deg.Index.build(clustered(n=1100, dim=8), quantize="sq8", progress=False)
    path = tmp_path / "a.deg"
    index.save(path)
    good = path.read_bytes()
    _with_params(path, b'"scale": ', b'"scale":-')
    with pytest.raises(ValueError, match=r"quantizer scale -.* is not a positive normal float32"):
        deg.Index.load(path)
    start = good.index(b'"scale": ') + len(b'"scale": ')
    number = good[start : good.index(b"}", start)]  # the block keeps its length
    for scale, match in [
        (b"1e-50", r"quantizer scale 1e-50 is not a positive normal float32"),
        (b'"0.5"', r"quantizer state is not"),
    ]:
        path.write_bytes(good)
        _with_params(path, b'"scale": ' + number, b'"scale": ' + scale.ljust(len(number)))
        with pytest.raises(ValueError, match=match):
            deg.Index.load(path)
    check = quantizer.Quantizer.check_state
    assert "beyond float64" in check({"lo": [10**400] * 8, "scale": 1.0}, 8)
    assert "beyond float64" in check({"lo": [0.0] * 8, "scale": 10**400}, 8)
    assert "not 8 finite" in check({"lo": [0.0] * 7, "scale": 1.0}, 8)
    assert "state is not" in check({"lo": [True] * 8, "scale": 1.0}, 8)
    assert check({"lo": [0.0] * 8, "scale": 1.0}, 8) is None
    path.write_bytes(good)
    _with_params(path, b'"quantize": "sq8"', b'"quantize": null ')
    with pytest.raises(ValueError, match=r"has a quantizer state but quantize=None"):
        deg.Index.load(path)
    path.write_bytes(good)
    _with_params(path, b'"quantize": "sq8"', b'"quantize": "sq9"')
    with pytest.raises(
        ValueError, match=r"quantize must be one of None, 'sq8', 'rabitq', got 'sq9'"
    ):
        deg.Index.load(path)


def test_a_budget_covers_the_walk_and_the_re_ranks():
    x = clustered(n=3000)
    index = deg.Index.build(x, quantize="sq8", progress=False)
    for budget in (1, 3, 30, 200):
        _, _, stats = index.search(
            x[:50], k=10, max_distance_computations=budget, return_stats=True
        )
        assert stats["distance_computations"].max() <= max(budget, 2)


def test_a_full_log_keeps_the_walks_own_results(monkeypatch):
    x = clustered(n=3000)
    index = deg.Index.build(x, quantize="sq8", progress=False)
    full = index.search(x[2900:], k=30, eps=0.3)[0]
    monkeypatch.setattr(quantizer, "LOG", 40)  # the log fills long before the walk ends
    short = index.search(x[2900:], k=30, eps=0.3)[0]
    truth = brute_force(x, x[2900:], 30)[0]
    assert recall(short, truth) >= recall(full, truth) - 0.05


def test_a_query_far_outside_the_codes_is_searched_exactly():
    x = clustered(n=1200)
    index = deg.Index.build(x, quantize="sq8", progress=False)
    plain = deg.Index.build(x, progress=False)
    far = np.full((1, 64), 1e16, np.float32)  # within add's bound, 3e17 in code space
    assert np.abs(index._quant.to_code_space(far)).max() > quantizer.CODE_SPACE_MAX
    np.testing.assert_array_equal(index.search(far, k=5)[0], plain.search(far, k=5)[0])


def test_bad_settings_are_refused():
    kinds = "None, 'sq8', 'rabitq'"
    with pytest.raises(ValueError, match=rf"quantize must be one of {kinds}, got 'sq4'"):
        deg.Index(8, quantize="sq4")
    with pytest.raises(ValueError, match=r"quantize='sq8' walks on codes .* not of inner products"):
        deg.Index(8, metric="ip", quantize="sq8")
    index = deg.Index.build(clustered(n=1100, dim=8), quantize="sq8", progress=False)
    with pytest.raises(ValueError, match=r"rerank must be"):
        index.search(np.zeros(8, np.float32), rerank=0)
    assert quantizer.pool_size(None, 10, 5) == 5 and quantizer.pool_size(3, 10, 100) == 10
