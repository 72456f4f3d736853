"""Save/load round trips (plain and mmap) and refusal of damaged files."""

import json
import os
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deg
from deg import fileformat
from tests.conftest import assert_graph_ok, low_dim_data, saved_params


@pytest.fixture(scope="module")
def built():
    x = low_dim_data(1500, dim=16, seed=4)
    index = deg.Index.build(
        x,
        metric="cosine",
        edges_per_vertex=10,
        extend_eps=0.2,
        scheme="high-lid",
        seed=9,
        progress=False,
        labels=np.arange(1500) * 3 + 7,
    )
    return index, low_dim_data(50, dim=16, seed=5)


@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip_gives_identical_results(built, tmp_path, mmap):
    index, q = built
    path = tmp_path / "a.deg"
    index.save(path)
    loaded = deg.Index.load(path, mmap=mmap)
    assert (
        loaded.metric,
        loaded.dim,
        loaded.edges_per_vertex,
        loaded.scheme,
        loaded.seed,
        loaded.extend_eps,
        len(loaded),
    ) == ("cosine", 16, 10, "high-lid", 9, 0.2, 1500)
    for _ in range(2):  # twice: a reload must not change anything
        a, b = index.search(q, k=10), loaded.search(q, k=10)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        e1, e2 = index.explore([7, 10], k=5), loaded.explore([7, 10], k=5)
        assert np.array_equal(e1[0], e2[0])
    assert loaded.read_only is mmap
    assert_graph_ok(loaded)
    if mmap:
        with pytest.raises(ValueError, match="read-only"):
            loaded.add(q)
    else:
        assert loaded.add(q[:3]).tolist() == [4505, 4506, 4507]  # after the largest label, 4504
        assert_graph_ok(loaded)
    assert not [f for f in os.listdir(tmp_path) if f != "a.deg"]  # no temp files left


def test_empty_index_round_trip(tmp_path):
    deg.Index(4).save(tmp_path / "e.deg")
    loaded = deg.Index.load(tmp_path / "e.deg")
    assert len(loaded) == 0 and loaded.dim == 4
    assert loaded.add(np.ones((2, 4))).tolist() == [0, 1]


def damage(path, how):
    raw = bytearray(path.read_bytes())
    if how == "truncate":
        raw = raw[:-100]
    elif how == "flip-array-byte":
        raw[len(raw) // 2] ^= 0x40
    elif how == "magic":
        raw[:8] = b"NOTADEG!"
    elif how == "version":
        raw[8] = 99
    elif how == "empty":
        raw = bytearray()
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "how, match",
    [
        ("truncate", "size is .* bytes, the header implies"),
        ("flip-array-byte", "checksum mismatch"),
        ("magic", "magic is"),
        ("version", "format version 99"),
        ("empty", "shorter than the"),
    ],
)
@pytest.mark.parametrize("mmap", [False, True])
def test_damaged_files_are_refused(built, tmp_path, how, match, mmap):
    path = tmp_path / "b.deg"
    built[0].save(path)
    damage(path, how)
    with pytest.raises(ValueError, match=match):
        deg.Index.load(path, mmap=mmap)


def test_consistent_but_invalid_contents_are_refused(tmp_path):
    """A file with a valid checksum but impossible contents (foreign or buggy writer)."""
    n, d = 5, 2
    vectors = np.zeros((n, 3), np.float32)
    neighbors = np.full((n, d), 9, np.int32)  # ids out of range
    params = {
        "extend_k": 4,
        "extend_eps": 0.1,
        "scheme": "low-lid",
        "seed": 0,
        "next_label": 5,
        "improve_k": 2,
        "improve_eps": 0.001,
        "max_path_length": 5,
        "improve_tries": 0,
        "rand_state": 0,
    }
    fileformat.write(
        tmp_path / "c.deg",
        "l2",
        params,
        vectors,
        neighbors,
        np.zeros((n, d), np.float32),
        np.arange(n, dtype=np.int64),
        np.zeros(n, np.uint32),
    )
    with pytest.raises(ValueError, match=r"neighbor id 9 is out of range 0..4"):
        deg.Index.load(tmp_path / "c.deg")


def test_row_listing_a_vertex_twice_is_refused(built, tmp_path):
    """The kernels trust a row to list d distinct vertices (or the vertex itself, empty)."""
    index = built[0]
    n = len(index)
    neighbors = index.internals().store.neighbors[:n].copy()
    neighbors[3, 1] = neighbors[3, 0]
    fileformat.write(
        tmp_path / "v.deg",
        index.metric,
        saved_params(index),
        index.internals().store.vectors[:n],
        neighbors,
        index.internals().store.weights[:n],
        index.internals().store.labels[:n],
        index.internals().store.sig[:n],
    )
    with pytest.raises(ValueError, match=r"row 3 lists vertex .* twice"):
        deg.Index.load(tmp_path / "v.deg")


def test_version_4_search_view_that_is_not_a_permutation_is_refused(built, tmp_path):
    """Versions 2-5 stored the view as slot numbers, which index rows on load."""
    _as_version_4(built[0], tmp_path / "v4.deg", spoil_order=True)
    with pytest.raises(ValueError, match="search view rows are not permutations"):
        deg.Index.load(tmp_path / "v4.deg")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m, p, h, o: (m + len(m), p, h, o), "entry tree members out of range"),
        (lambda m, p, h, o: (m, p[:-1], h, o[:-1]), "entry tree of"),
        (lambda m, p, h, o: (m[: len(p)], p, h, o), "entry tree of"),
        (lambda m, p, h, o: (m, p, h[:-1], o), "entry tree of"),
        (lambda m, p, h, o: (m, p, np.resize(h, (2 * len(p) + 1, h.shape[1])), o), "tree shapes"),
        (lambda m, p, h, o: (m, p + len(m) - p.max(), h, o), "pairs out of range"),
        (lambda m, p, h, o: (m, p, h, np.where(np.arange(len(o)) == 3, np.nan, o)), "non-finite"),
        (lambda m, p, h, o: (m, p, np.where(h == h[0, 0], np.inf, h), o), "non-finite"),
    ],
)
def test_entry_tree_that_cannot_be_searched_is_refused(built, tmp_path, change, match):
    """The tree's members index vectors and its hyperplanes are descended as a complete binary
    tree in the kernels: a file whose tree breaks either must never get there."""
    index = built[0]
    n = len(index)
    assert index.internals().tree.planes.size  # there is a tree to break
    tree = change(
        index.internals().tree.members,
        index.internals().tree.pairs,
        index.internals().tree.planes,
        index.internals().tree.offsets,
    )
    fileformat.write(
        tmp_path / "t.deg",
        index.metric,
        saved_params(index),
        index.internals().store.vectors[:n],
        index.internals().store.neighbors[:n],
        index.internals().store.weights[:n],
        index.internals().store.labels[:n],
        index.internals().store.sig[:n],
        tree=tree,
    )
    with pytest.raises(ValueError, match=match):
        deg.Index.load(tmp_path / "t.deg")


def _as_version_1(src, dst):
    """Rewrite a current file (no rotated basis) as version 1: same header and arrays, no
    search view."""
    raw = src.read_bytes()
    magic, _, code, dim, d, n, plen, res = fileformat._HEADER.unpack_from(raw, 0)
    layout, _ = fileformat._layout(dim, d, n, plen, version=1)
    _, total = fileformat._layout(dim, d, n, plen, version=1)
    body = bytearray(raw[: total - fileformat._TRAILER.size])
    fileformat._HEADER.pack_into(body, 0, magic, 1, code, dim, d, n, plen, res)
    end = layout[-1][3] + n * 8  # labels are the last array of version 1
    body[end:] = bytes(len(body) - end)  # the zero padding up to the trailer
    dst.write_bytes(bytes(body) + fileformat._TRAILER.pack(zlib.crc32(body), b"DEND"))


def test_pickle_whose_tree_is_wider_than_the_vectors_is_refused(built):
    """A pickle's tree shapes are not in a checksummed header: the kernels would read past a
    vector row with hyperplanes wider than the vectors."""
    fn, (metric, params, arrays) = built[0].__reduce__()
    arrays["planes"] = np.zeros((arrays["planes"].shape[0], 17), np.float32)
    with pytest.raises(ValueError, match="entry tree over 17 coordinates of 16"):
        fn(metric, params, arrays)


def _as_version_4(index, dst, spoil_order=False):
    """Save ``index`` as version 4: its rows sorted by id with the search view as a separate
    permutation of the slots (``order``, versions 2-5), and an entry tree that stored each
    node's hyperplane (``width`` floats) where version 5 on stores its pair of members."""
    src = dst.with_suffix(".current")
    index.save(src)
    raw = src.read_bytes()
    magic, _, code, dim, d, n, plen, rank = fileformat._HEADER.unpack_from(raw, 0)
    _, params, arrays = fileformat.read(src)
    by_id = np.argsort(arrays["neighbors"], axis=1, kind="stable")
    for name in ("neighbors", "weights"):
        arrays[name] = np.take_along_axis(arrays[name], by_id, axis=1)
    arrays["order"] = np.argsort(by_id, axis=1).astype(np.uint8)  # view slot j: sorted slot
    if spoil_order:
        arrays["order"][3, 0] = arrays["order"][3, 1]  # a repeated slot (and so one missing)
    m, t, w, _ = params["entry_tree"]
    members, pairs, x = arrays["members"], arrays["pairs"], arrays["vectors"]
    arrays["planes"] = (x[members[pairs[:, 0]]] - x[members[pairs[:, 1]]])[:, :w]
    params["entry_tree"] = [m, t, w]
    blob = json.dumps(params, sort_keys=True).encode()
    plen = len(blob)
    layout, total = fileformat._layout(dim, d, n, plen, 4, rank, (m, t, w, t))
    body = bytearray(total - fileformat._TRAILER.size)
    fileformat._HEADER.pack_into(body, 0, magic, 4, code, dim, d, n, plen, rank)
    body[fileformat._HEADER.size : fileformat._HEADER.size + plen] = blob
    for name, dtype, _shape, offset in layout:
        data = np.ascontiguousarray(arrays[name], dtype=dtype).tobytes()
        body[offset : offset + len(data)] = data
    dst.write_bytes(bytes(body) + fileformat._TRAILER.pack(zlib.crc32(body), b"DEND"))


def test_version_4_files_load_with_the_tree_drawn_again(built, tmp_path):
    """Version 4 stored the tree's hyperplanes; loading one draws the tree again, the same
    tree for an index without removals."""
    index, q = built
    _as_version_4(index, tmp_path / "v4.deg")
    with open(tmp_path / "v4.deg", "rb") as f:
        assert fileformat._HEADER.unpack(f.read(fileformat._HEADER.size))[1] == 4
    old = deg.Index.load(tmp_path / "v4.deg")
    n = len(index)  # the sorted rows are put back in the view's order
    assert np.array_equal(
        old.internals().store.neighbors[:n], index.internals().store.neighbors[:n]
    )
    assert np.array_equal(old.internals().store.weights[:n], index.internals().store.weights[:n])
    assert np.array_equal(
        old.internals().store.sig[:n], index.internals().store.file_signatures()
    )  # generations 0 on load
    assert old.internals().tree.pairs.size and np.array_equal(
        old.internals().tree.pairs, index.internals().tree.pairs
    )
    assert np.array_equal(old.internals().tree.members, index.internals().tree.members)
    a, b = index.search(q, k=5), old.search(q, k=5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("mmap", [False, True])
def test_version_1_files_load_with_a_computed_view(built, tmp_path, mmap):
    index, q = built
    index.save(tmp_path / "v2.deg")
    _as_version_1(tmp_path / "v2.deg", tmp_path / "v1.deg")
    old = deg.Index.load(tmp_path / "v1.deg", mmap=mmap)
    assert np.array_equal(
        old.internals().store.neighbors[: len(old)], index.internals().store.neighbors[: len(index)]
    )
    assert np.array_equal(
        old.internals().store.sig[: len(old)], index.internals().store.file_signatures()
    )
    for m in (None, 6):
        a = index.search(q, k=5, max_degree=m)
        b = old.search(q, k=5, max_degree=m)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_failed_save_keeps_previous_file(built, tmp_path, monkeypatch):
    path = tmp_path / "d.deg"
    built[0].save(path)
    before = path.read_bytes()

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        built[0].save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["d.deg"]


@pytest.mark.parametrize("mmap", [False, True])
def test_pickle_round_trip(built, tmp_path, mmap):
    import pickle

    index, q = built
    source = index
    if mmap:
        index.save(tmp_path / "p.deg")
        source = deg.Index.load(tmp_path / "p.deg", mmap=True)
    clone = pickle.loads(pickle.dumps(source))
    a, b = index.search(q, k=10), clone.search(q, k=10)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert (clone.scheme, clone.seed, len(clone), clone.read_only) == ("high-lid", 9, 1500, False)
    assert clone.add(q[:1]).tolist() == [4505]  # an in-memory copy, even of an mmap index
    assert_graph_ok(clone)


def test_copies_search_alike_after_small_changes(tmp_path):
    """Small adds and removes keep the entry tree (its members renumbered) and leave the view
    to its first use; a saved or pickled copy must still answer exactly as the original
    (the same tree, the current view)."""
    import pickle

    x = low_dim_data(3000, dim=16, seed=11)
    index = deg.Index.build(x, edges_per_vertex=10, progress=False)
    drawn, pairs = index.internals().tree.drawn_at, index.internals().tree.pairs.copy()
    index.remove(
        np.concatenate([index.internals().tree.members[:3].astype(np.int64), [5, 77, 2999]])
    )
    index.add(low_dim_data(4, dim=16, seed=12))
    assert index.internals().tree.drawn_at == drawn and index.internals().view.stale
    assert (
        np.array_equal(index.internals().tree.pairs, pairs)
        and index.internals().tree.members.max() < len(index) - 4
    )
    q = low_dim_data(40, dim=16, seed=13)
    index.save(tmp_path / "s.deg")
    copies = [deg.Index.load(tmp_path / "s.deg"), pickle.loads(pickle.dumps(index))]
    for m in (None, 6):
        want = index.search(q, k=8, max_degree=m)
        for other in copies:
            got = other.search(q, k=8, max_degree=m)
            assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    assert_graph_ok(index)


@pytest.fixture(scope="module")
def large():
    """Past 1024 vertices, so searches enter through the entry tree."""
    return low_dim_data(1600, dim=8, seed=21)


@given(
    steps=st.lists(st.tuples(st.booleans(), st.integers(1, 120)), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=10)
def test_entry_tree_stays_valid_through_adds_and_removes(large, tmp_path_factory, steps, seed):
    """Whatever mix of adds and removes: the tree's members name live vertices, searches find
    stored vectors, and a saved copy answers exactly as the original."""
    rng = np.random.default_rng(seed)
    index = deg.Index.build(large[:1300], edges_per_vertex=8, progress=False)
    pool = large[1300:]  # the same distribution as the built ones
    for is_add, count in steps:
        if is_add:
            index.add(pool[rng.choice(len(pool), size=count, replace=False)])
        else:
            labels = index.labels
            index.remove(rng.choice(labels, size=min(count, len(labels) - 20), replace=False))
        members = index.internals().tree.members
        assert members.size == 0 or (members.min() >= 0 and members.max() < len(index))
    labels = index.labels
    probe = labels[rng.choice(len(labels), size=20, replace=False)]
    index.search(index.get_vectors(probe), k=1)  # fewer results than a leaf's entries
    got, _ = index.search(index.get_vectors(probe), k=5, eps=0.3)
    assert np.mean([p in row for p, row in zip(probe, got)]) >= 0.95  # stored vectors found
    path = tmp_path_factory.mktemp("tree") / "t.deg"
    index.save(path)
    q = low_dim_data(30, dim=8, seed=seed + 999)
    a, b = index.search(q, k=5), deg.Index.load(path).search(q, k=5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("mmap", [False, True])
def test_rows_start_on_cache_lines(built, tmp_path, mmap):
    """Vector rows that straddle one more line than they need search measurably slower
    (deg._aligned): the hot arrays start on a line after a build, a growth, a load and a
    pickle."""
    import pickle

    index, q = built
    index.save(tmp_path / "a.deg")
    grown = pickle.loads(pickle.dumps(index))
    grown.add(q)  # capacity doubles: new arrays
    for ix in (index, deg.Index.load(tmp_path / "a.deg", mmap=mmap), grown):
        parts = ix.internals()
        rows = {
            "vectors": parts.store.vectors,
            "neighbors": parts.store.neighbors,
            "weights": parts.store.weights,
            "planes": parts.tree.planes,
        }
        for name, a in rows.items():
            assert a.ctypes.data % 64 == 0, name
