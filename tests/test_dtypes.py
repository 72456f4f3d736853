"""Storage types (``Index(dtype=...)``, issue #24): each keeps what it can hold, searches as
well as float32 on the values it stores, survives save, load and pickling bit for bit, and
refuses what it cannot hold before anything changes."""

import pickle

import numpy as np
import pytest

import deg
from deg import fileformat
from tests.conftest import assert_graph_ok, brute_force, recall

RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


def typed_data(dtype, n=2000, dim=24, seed=0):
    """Clustered data as ``dtype`` holds it: integers of its range, or halves."""
    rng = np.random.default_rng(seed)
    centres = rng.random((20, dim)) * 2 - 1
    x = centres[rng.integers(0, 20, n)] + 0.15 * rng.standard_normal((n, dim))
    if dtype in RANGES:
        lo, hi = RANGES[dtype]
        x = np.clip(np.round((x + 1.5) / 3 * (hi - lo) + lo), lo, hi)
        return x.astype(np.float32)
    return x.astype(np.float16).astype(np.float32)


@pytest.mark.parametrize(
    "dtype, metric",
    [("float16", "l2"), ("float16", "cosine"), ("float16", "ip"), ("uint8", "l2"), ("int8", "ip")],
)
def test_recall_against_brute_force_on_the_stored_values(dtype, metric):
    x = typed_data(dtype)
    index = deg.Index.build(x[:1800], metric=metric, dtype=dtype, progress=False)
    assert index.dtype == dtype
    assert_graph_ok(index)
    stored = index.get_vectors(index.labels)
    assert stored.dtype == np.dtype(dtype)
    queries = x[1800:]
    labels, dists = index.search(queries, k=10, eps=0.2)
    if metric == "cosine":  # half the squared L2 distance to the stored (rounded) unit rows
        unit = queries / np.linalg.norm(queries.astype(np.float64), axis=1, keepdims=True)
        truth, true_d = brute_force(stored.astype(np.float32), unit, 10, "l2")
        true_d = true_d / 2
    else:
        truth, true_d = brute_force(stored.astype(np.float32), queries, 10, metric)
    assert recall(labels, truth) >= 0.97
    # distances are float32 sums over the stored values
    scale = np.abs(true_d).max() + 1.0
    found = labels[:, 0] == truth[:, 0]
    np.testing.assert_allclose(dists[found, 0], true_d[found, 0], atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", ["float16", "uint8", "int8"])
def test_smaller_vectors_and_exact_integers(dtype):
    """Values the type holds exactly build the float32 graph: the entry tree, the searches
    and the weights all read them alike (3000 vectors: construction descends the tree)."""
    x = typed_data(dtype, n=3000)
    wide = deg.Index.build(x, edges_per_vertex=8, progress=False)
    narrow = deg.Index.build(x, edges_per_vertex=8, dtype=dtype, progress=False)
    store_w, store_n = wide.internals().store, narrow.internals().store
    assert store_n.vectors.nbytes * (4 // np.dtype(dtype).itemsize) == store_w.vectors.nbytes
    assert narrow.nbytes < wide.nbytes
    # the values survive as they were, so the graphs are the same
    np.testing.assert_array_equal(narrow.get_vectors(narrow.labels), x)
    np.testing.assert_array_equal(store_n.neighbors[:3000], store_w.neighbors[:3000])
    np.testing.assert_array_equal(store_n.weights[:3000], store_w.weights[:3000])


def test_float16_rounds_to_half_precision_and_stays_close_to_float32():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1500, 32)).astype(np.float32)
    index = deg.Index.build(x, dtype=np.float16, progress=False)  # numpy's dtypes are taken
    assert index.dtype == "float16"
    got = index.get_vectors(index.labels)
    np.testing.assert_array_equal(got, x.astype(np.float16))
    assert np.abs(got.astype(np.float32) - x).max() <= 2**-11 * np.abs(x).max()


def test_rotated_float16_index():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((1200, 8)) @ rng.standard_normal((8, 256))).astype(np.float32)
    index = deg.Index.build(x[:1100], dtype="float16", progress=False)
    assert index.rotated
    assert_graph_ok(index)
    back = index.get_vectors(index.labels[:50])
    assert back.dtype == np.float16
    np.testing.assert_allclose(back.astype(np.float32), x[:50], rtol=0, atol=2e-3 * np.abs(x).max())
    stored = index.get_vectors(index.labels).astype(np.float32)
    wide = deg.Index.build(x[:1100], progress=False)
    truth = brute_force(stored, x[1100:], 10)[0]
    assert recall(truth, brute_force(x[:1100], x[1100:], 10)[0]) >= 0.98  # the same order
    got = recall(index.search(x[1100:], k=10, eps=0.3)[0], truth)
    assert got >= 0.9 and got >= recall(wide.search(x[1100:], k=10, eps=0.3)[0], truth) - 0.02


@pytest.mark.parametrize("dtype", ["float16", "uint8", "int8"])
def test_saved_and_loaded_byte_identical(tmp_path, dtype):
    x = typed_data(dtype, n=500)
    index = deg.Index.build(x, edges_per_vertex=8, dtype=dtype, progress=False)
    index.remove(np.arange(0, 500, 7))
    index.save(tmp_path / "a.deg")
    for loaded in (
        deg.Index.load(tmp_path / "a.deg"),
        deg.Index.load(tmp_path / "a.deg", mmap=True),
        pickle.loads(pickle.dumps(index)),
    ):
        assert loaded.dtype == dtype
        loaded.save(tmp_path / "b.deg")
        assert (tmp_path / "a.deg").read_bytes() == (tmp_path / "b.deg").read_bytes()
        q = x[:20]
        np.testing.assert_array_equal(loaded.search(q)[0], index.search(q)[0])
    a = index.internals().store
    b = deg.Index.load(tmp_path / "a.deg").internals().store
    assert b.vectors.dtype == a.vectors.dtype
    np.testing.assert_array_equal(b.vectors[: b.n], a.vectors[: a.n])


def _unchanged(index, before):
    assert len(index) == before
    assert_graph_ok(index)


@pytest.mark.parametrize(
    "dtype, bad, match",
    [
        ("uint8", 256.0, r"integers from 0 to 255; data row 3 column 2 is 256\.0"),
        ("uint8", -1.0, r"integers from 0 to 255; data row 3 column 2 is -1\.0"),
        ("uint8", 0.5, r"integers from 0 to 255; data row 3 column 2 is 0\.5"),
        ("int8", 128.0, r"integers from -128 to 127"),
        ("float16", 1e5, r"within \+-65504"),
        ("float16", np.nan, r"NaN"),
    ],
)
def test_values_the_type_cannot_hold_are_refused(dtype, bad, match):
    index = deg.Index.build(typed_data(dtype, n=50, dim=4), dtype=dtype, progress=False)
    x = typed_data(dtype, n=5, dim=4, seed=3)
    x[3, 2] = bad
    with pytest.raises(ValueError, match=match):
        index.add(x)
    _unchanged(index, 50)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_an_integer_index_refuses_float_queries(dtype):
    index = deg.Index.build(typed_data(dtype, n=50, dim=4), dtype=dtype, progress=False)
    with pytest.raises(
        ValueError, match=rf"a {dtype} index takes integers.*queries row 0 column 1"
    ):
        index.search(np.array([[1.0, 2.5, 3.0, 4.0]], np.float32))
    ok, _ = index.search(np.array([[1, 2, 3, 4]], np.int64))  # integers of any integer type
    assert (ok >= 0).all()


def test_rotation_that_would_overflow_float16_changes_nothing():
    rng = np.random.default_rng(4)
    big = (rng.random((1100, 64)) * 60000).astype(np.float32)  # halves, but not once rotated
    empty = deg.Index(64, dtype="float16", rotate=True)
    with pytest.raises(ValueError, match=r"data row 0 overflows float16 when rotated"):
        empty.add(big)
    assert len(empty) == 0 and not empty.rotated
    index = deg.Index(64, dtype="float16", rotate=True)
    index.add(big[:500])
    with pytest.raises(ValueError, match=r"overflows float16 when rotated"):
        index.add(big[500:])
    assert len(index) == 500 and not index.rotated
    np.testing.assert_array_equal(index.get_vectors(index.labels), big[:500].astype(np.float16))
    assert_graph_ok(index)


def test_float16_queries_need_not_be_halves():
    index = deg.Index.build(typed_data("float16", n=50, dim=4), dtype="float16", progress=False)
    labels, _ = index.search(np.full((1, 4), 1e5, np.float32), k=3)  # beyond float16: fine
    assert (labels >= 0).all()


def test_settings_a_type_cannot_have():
    with pytest.raises(ValueError, match=r"metric='cosine' stores unit vectors.*'uint8'"):
        deg.Index(8, metric="cosine", dtype="uint8")
    with pytest.raises(ValueError, match=r"rotate=True.*'int8'"):
        deg.Index(8, rotate=True, dtype="int8")
    with pytest.raises(ValueError, match=r"dtype must be one of 'float32', 'float16'.*'float64'"):
        deg.Index(8, dtype="float64")
    with pytest.raises(ValueError, match=r"dtype must be one of .*got 'f16'"):
        deg.Index(8, dtype="f16")
    index = deg.Index(300, dtype="uint8")  # rotate=None: not rotated, whatever the dimension
    index.add(np.random.default_rng(0).integers(0, 256, (1100, 300)))
    assert not index.rotated


def _edit_and_fix_crc(path, pos, value):
    raw = bytearray(path.read_bytes())
    raw[pos : pos + len(value)] = value
    body = bytes(raw[: -fileformat._TRAILER.size])
    import zlib

    raw[-fileformat._TRAILER.size :] = fileformat._TRAILER.pack(zlib.crc32(body), b"DEND")
    path.write_bytes(bytes(raw))


def test_loading_refuses_float16_nan_and_a_lying_type(tmp_path):
    x = typed_data("float16", n=200, dim=8)
    index = deg.Index.build(x, edges_per_vertex=4, dtype="float16", progress=False)
    path = tmp_path / "a.deg"
    index.save(path)
    layout = {name: offset for name, _, _, offset in _layout_of(path)}
    good = path.read_bytes()
    _edit_and_fix_crc(path, layout["vectors"] + 2 * 5, np.float16(np.nan).tobytes())
    with pytest.raises(ValueError, match=r"vector 0 has a NaN or infinite coordinate \(float16\)"):
        deg.Index.load(path)
    path.write_bytes(good)
    raw = good.replace(b'"dtype": "float16"', b'"dtype": "float64"')
    assert raw != good
    path.write_bytes(raw)
    _edit_and_fix_crc(path, 0, raw[:8])
    with pytest.raises(ValueError, match=r"vector type 'float64' is none of"):
        deg.Index.load(path)
    path.write_bytes(good.replace(b'"dtype": "float16"', b'"dtype": "int8"   '))
    _edit_and_fix_crc(path, 0, good[:8])
    with pytest.raises(ValueError, match=r"size is .* the header implies"):
        deg.Index.load(path)


def _layout_of(path):
    raw = path.read_bytes()
    _, _, _, dim, d, n, plen, rank = fileformat._HEADER.unpack_from(raw, 0)
    _, meta, _ = fileformat.read(path)
    layout, _ = fileformat._layout(
        dim, d, n, plen, rank=rank, tree=tuple(meta["entry_tree"]), dtype=meta["dtype"]
    )
    return layout
