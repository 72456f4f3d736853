"""deg.datasets: HDF5 layout, readers, exact ground truth, resolution, local builds, downloads.

Downloads go to an HTTP server on 127.0.0.1 started here; nothing leaves the machine. Every
test that could write a dataset file points the cache at ``tmp_path``.
"""

import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from deg import datasets
from tests.conftest import shared_file


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test reads or writes the repo's datasets/ or the user's cache by accident."""
    monkeypatch.setenv("DEG_DATASETS_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DEG_DATA_DIR", raising=False)


def naive(train, test, metric, exclude=None):
    """All distances in float64, the textbook way."""
    x, q = train.astype(np.float64), test.astype(np.float64)
    if metric == "angular":
        nx, nq = np.linalg.norm(x, axis=1), np.linalg.norm(q, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = 1.0 - (q @ x.T) / np.outer(nq, nx)
        dist[np.isnan(dist)] = 1.0  # the module's convention: a zero vector has cosine 0
    else:
        dist = np.array([np.sqrt(((x - row) ** 2).sum(1)) for row in q]).reshape(len(q), -1)
    if exclude is not None:
        dist[np.arange(len(q)), exclude] = np.inf
    return dist


def assert_exact_knn(ids, dists, full, k):
    """Tie-tolerant exactness: each returned id is at its reported distance, and the distance
    lists equal the true k smallest (so ids may differ only among equal distances)."""
    assert ids.shape == dists.shape == (len(full), k)
    assert ids.dtype == np.int32 and dists.dtype == np.float32
    assert all(len(set(row)) == k for row in ids.tolist())
    np.testing.assert_allclose(
        dists, np.take_along_axis(full, ids.astype(np.int64), 1), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(dists, np.sort(full, axis=1)[:, :k], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------- ground truth


@pytest.mark.parametrize("metric", ["euclidean", "angular"])
@pytest.mark.parametrize("kind", ["gaussian", "ties"])
def test_ground_truth_matches_brute_force(metric, kind):
    rng = np.random.default_rng(0)
    if kind == "ties":  # small integers: many exactly equal distances and duplicate vectors
        train = rng.integers(0, 3, (600, 5)).astype(np.float32)
        test = rng.integers(0, 3, (25, 5)).astype(np.float32)
        train[10] = 0  # a zero vector: cosine 0 to everything, so angular distance 1
    else:
        train = (rng.standard_normal((700, 12)) * 50 + 100).astype(np.float32)
        test = (rng.standard_normal((30, 12)) * 50 + 100).astype(np.float32)
    full = naive(train, test, metric)
    ids, dists = datasets.ground_truth(train, test, 40, metric, block=7)
    assert_exact_knn(ids, dists, full, 40)
    if metric == "euclidean":  # distances computed identically: equal ties go to the lower id
        np.testing.assert_array_equal(ids, np.argsort(full, axis=1, kind="stable")[:, :40])


def test_ground_truth_block_size_does_not_matter():
    rng = np.random.default_rng(4)
    x, q = rng.random((900, 20), dtype=np.float32), rng.random((50, 20), dtype=np.float32)
    a = datasets.ground_truth(x, q, 100)
    b = datasets.ground_truth(x, q, 100, block=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_ground_truth_checks_its_input():
    x = np.zeros((10, 4), np.float32)
    with pytest.raises(ValueError, match=r"k must be in \[1, 10\]"):
        datasets.ground_truth(x, x, 11)
    with pytest.raises(ValueError, match=r"k must be in \[1, 9\]"):
        datasets.ground_truth(x, x[:2], 10, exclude=[0, 1])
    with pytest.raises(ValueError, match="dimension 4"):
        datasets.ground_truth(x, np.zeros((3, 5)), 2)
    with pytest.raises(ValueError, match="NaN"):
        datasets.ground_truth(x, np.full((1, 4), np.nan), 2)
    with pytest.raises(ValueError, match="metric"):
        datasets.ground_truth(x, x, 2, "hamming")


@pytest.mark.parametrize("metric", ["euclidean", "angular"])
def test_explore_groundtruth_excludes_the_entry_only(metric):
    ds = datasets.synthetic(400, 5, 8, seed=1, metric=metric)
    ds.train[7] = ds.train[3]  # a duplicate of entry 3: stays in its neighbourhood at 0
    ids, dists = ds.explore_groundtruth(np.array([3, 10, 7]), 6)
    assert 3 not in ids[0] and 10 not in ids[1] and 7 not in ids[2]
    assert (ids[0, 0], ids[2, 0]) == (7, 3) and dists[0, 0] == 0 and dists[2, 0] == 0
    entries = np.array([3, 10, 7])
    assert_exact_knn(ids, dists, naive(ds.train, ds.train[entries], metric, entries), 6)
    with pytest.raises(ValueError, match=r"\[0, 400\)"):
        ds.explore_groundtruth([400], 3)


def test_synthetic_is_seeded_and_carries_its_ground_truth():
    a = datasets.synthetic(300, 12, 24, seed=5)
    b = datasets.synthetic(300, 12, 24, seed=5)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.train, datasets.synthetic(300, 12, 24, seed=6).train)
    assert a.train.dtype == np.float32 and a.neighbors.shape == (12, 100)
    assert_exact_knn(a.neighbors, a.distances, naive(a.train, a.test, "euclidean"), 100)
    c = datasets.synthetic(50, 3, 6, metric="angular")
    assert c.metric == "angular" and c.deg_metric == "cosine" and c.neighbors.shape == (3, 50)


# ---------------------------------------------------------------------------- file formats


def test_hdf5_round_trip_with_attrs(tmp_path):
    ds = datasets.synthetic(300, 20, 16, metric="angular", seed=3)
    ds.train = ds.train.astype(np.float64)  # written as float32 all the same
    out = datasets.write_hdf5(tmp_path / "x.hdf5", ds)
    back = datasets.read_hdf5(out)
    for key in ("train", "test", "neighbors", "distances"):
        np.testing.assert_array_equal(getattr(back, key), getattr(ds, key))
    assert back.metric == "angular" and back.deg_metric == "cosine" and back.name == "x"
    with h5py.File(out) as f:
        assert dict(f.attrs) == {"distance": "angular", "point_type": "float", "dimension": 16}
        assert f["train"].dtype == np.float32 and f["neighbors"].dtype == np.int32
        assert f["neighbors"].shape == f["distances"].shape == (20, 100)
    assert [p.name for p in tmp_path.iterdir()] == ["x.hdf5"]  # no temp file left behind
    assert "train=(300, 16)" in repr(back)


def test_hdf5_write_is_atomic(tmp_path, monkeypatch):
    datasets.write_hdf5(tmp_path / "x.hdf5", datasets.synthetic(50, 3, 4))
    before = (tmp_path / "x.hdf5").read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        datasets.write_hdf5(tmp_path / "x.hdf5", datasets.synthetic(60, 3, 4))
    assert (tmp_path / "x.hdf5").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.hdf5"]


def test_read_hdf5_refuses_other_layouts(tmp_path):
    with h5py.File(tmp_path / "a.hdf5", "w") as f:
        f["train"] = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"lacks .*'test', 'neighbors', 'distances'"):
        datasets.read_hdf5(tmp_path / "a.hdf5")
    ds = datasets.synthetic(20, 2, 4)
    datasets.write_hdf5(tmp_path / "b.hdf5", ds)
    with h5py.File(tmp_path / "b.hdf5", "a") as f:
        f.attrs["distance"] = "jaccard"
    with pytest.raises(ValueError, match="jaccard"):
        datasets.read_hdf5(tmp_path / "b.hdf5")


def test_vecs_round_trip_and_malformed_files(tmp_path):
    a = np.random.default_rng(0).random((7, 5), dtype=np.float32)
    datasets.write_fvecs(tmp_path / "a.fvecs", a)
    datasets.write_ivecs(tmp_path / "a.ivecs", np.arange(21).reshape(7, 3))
    np.testing.assert_array_equal(datasets.read_fvecs(tmp_path / "a.fvecs"), a)
    ints = datasets.read_ivecs(tmp_path / "a.ivecs")
    assert ints.dtype == np.int32 and ints.tolist() == np.arange(21).reshape(7, 3).tolist()
    raw = (tmp_path / "a.fvecs").read_bytes()
    (tmp_path / "short.fvecs").write_bytes(raw[:-4])
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_fvecs(tmp_path / "short.fvecs")


def idx_bytes(a):
    """IDX encoding of a uint8 array: magic 0x0000 08 ndim, big-endian sizes, data."""
    head = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return head + a.astype(np.uint8).tobytes()


def test_idx_reader_gz_and_plain(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(idx_bytes(a))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(a)))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        np.testing.assert_array_equal(datasets.read_idx(tmp_path / name), a)
    (tmp_path / "b").write_bytes(idx_bytes(a)[:-1])
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "c")


# ---------------------------------------------------------------------------- resolution


def test_cache_dir_order(tmp_path, monkeypatch):
    assert datasets.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert datasets.cache_dir() == tmp_path / "cache"  # from $DEG_DATASETS_DIR
    monkeypatch.delenv("DEG_DATASETS_DIR")
    monkeypatch.setattr(datasets, "_REPO", tmp_path / "checkout")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "deg" / "datasets"
    (tmp_path / "checkout" / "datasets").mkdir(parents=True)
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "deg" / "datasets"
    (tmp_path / "checkout" / "pyproject.toml").touch()  # only a checkout's folder is used
    assert datasets.cache_dir() == tmp_path / "checkout" / "datasets"


def test_unknown_name_and_nothing_found(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"known: .*fashion-mnist-784-euclidean"):
        datasets.load("no-such-set")
    with pytest.raises(FileNotFoundError, match=r"no .*glove-25-angular\.hdf5.*download=False"):
        datasets.load("glove-25-angular", download=False)
    monkeypatch.setattr(datasets, "_REPO", tmp_path / "nowhere")  # hide ../shared/datasets
    monkeypatch.setenv("DEG_DATA_DIR", str(tmp_path / "raw"))
    with pytest.raises(
        FileNotFoundError,
        match=r"siftsmall_base\.fvecs.*raw/siftsmall.*"
        r"built locally only",
    ):
        datasets.load("siftsmall-128-angular")


def test_local_build_from_deg_data_dir_is_cached(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    raw = tmp_path / "raw" / "fashion-mnist"
    raw.mkdir(parents=True)
    train, test = (rng.integers(0, 256, (m, 28, 28), dtype=np.uint8) for m in (150, 8))
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(train)))
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(test)))
    monkeypatch.setenv("DEG_DATA_DIR", str(tmp_path / "raw"))
    ds = datasets.load("fashion-mnist-784-angular", download=False, progress=False)
    assert ds.train.shape == (150, 784) and ds.test.shape == (8, 784) and ds.metric == "angular"
    np.testing.assert_array_equal(ds.train, train.reshape(150, 784))
    assert_exact_knn(ds.neighbors, ds.distances, naive(ds.train, ds.test, "angular"), 100)
    cached = tmp_path / "cache" / "fashion-mnist-784-angular.hdf5"
    assert cached.exists()
    (raw / "train-images-idx3-ubyte.gz").unlink()  # the second load needs the cache only
    again = datasets.load("fashion-mnist-784-angular", download=False)
    np.testing.assert_array_equal(again.neighbors, ds.neighbors)


def test_cached_file_must_match_the_registry(tmp_path):
    datasets.write_hdf5(tmp_path / "cache" / "glove-25-angular.hdf5", datasets.synthetic(30, 2, 8))
    with pytest.raises(ValueError, match="euclidean vectors of dimension 8"):
        datasets.load("glove-25-angular")


# ---------------------------------------------------------------------------- downloads


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` by path; honours ``Range: bytes=N-``. ``cut`` sends only that many body
    bytes after announcing them all (a dying connection); ``ignore_range`` answers 200."""

    files, cut, ignore_range, requests = {}, None, False, []

    def do_GET(self):
        self.requests.append((self.path, self.headers.get("Range")))
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        ranged = self.headers.get("Range") and not self.ignore_range
        if ranged:
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(len(body)))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        self.wfile.write(body if self.cut is None else body[: self.cut])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    payload = bytes(range(256)) * 4000
    handler = type("H", (Handler,), {"files": {"/f.bin": payload}, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_checks_size_and_sha256(server, tmp_path):
    handler, base = server
    payload = handler.files["/f.bin"]
    out = datasets.download(
        base + "/f.bin",
        tmp_path / "f.bin",
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        progress=False,
    )
    assert out.read_bytes() == payload and not (tmp_path / "f.bin.part").exists()
    assert handler.requests == [("/f.bin", None)]


def test_download_resumes_a_partial_file(server, tmp_path):
    handler, base = server
    payload = handler.files["/f.bin"]
    (tmp_path / "f.bin.part").write_bytes(payload[:12345])
    datasets.download(base + "/f.bin", tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == payload
    assert handler.requests == [("/f.bin", "bytes=12345-")]
    # a server that ignores the range sends everything again: the part file restarts
    handler.ignore_range = True
    (tmp_path / "g.bin.part").write_bytes(b"garbage")
    datasets.download(base + "/f.bin", tmp_path / "g.bin", progress=False)
    assert (tmp_path / "g.bin").read_bytes() == payload


def test_complete_part_file_is_only_verified(server, tmp_path):
    handler, base = server
    payload = handler.files["/f.bin"]
    (tmp_path / "f.bin.part").write_bytes(payload)
    datasets.download(base + "/f.bin", tmp_path / "f.bin", size=len(payload), progress=False)
    (tmp_path / "g.bin.part").write_bytes(payload)  # size unknown: the server's 416 says done
    datasets.download(base + "/f.bin", tmp_path / "g.bin", progress=False)
    assert handler.requests == [("/f.bin", f"bytes={len(payload)}-")]
    assert (tmp_path / "g.bin").read_bytes() == payload


def test_truncated_download_is_refused_then_resumed(server, tmp_path):
    handler, base = server
    handler.cut = 50_000  # announces the whole body, then the connection dies
    with pytest.raises(datasets.DownloadError, match=r"interrupted|truncated"):
        datasets.download(base + "/f.bin", tmp_path / "f.bin", progress=False)
    assert not (tmp_path / "f.bin").exists()
    assert (tmp_path / "f.bin.part").stat().st_size == 50_000
    handler.cut = None
    datasets.download(base + "/f.bin", tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == handler.files["/f.bin"]
    assert handler.requests[-1] == ("/f.bin", "bytes=50000-")


def test_size_or_checksum_mismatch_is_refused(server, tmp_path):
    handler, base = server
    n = len(handler.files["/f.bin"])
    with pytest.raises(datasets.DownloadError, match=f"announces {n} bytes but 5 are expected"):
        datasets.download(base + "/f.bin", tmp_path / "a.bin", size=5, progress=False)
    with pytest.raises(datasets.DownloadError, match="sha256"):
        datasets.download(base + "/f.bin", tmp_path / "b.bin", sha256="0" * 64, progress=False)
    with pytest.raises(datasets.DownloadError, match="HTTP 404"):
        datasets.download(base + "/nope.bin", tmp_path / "c.bin", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing renamed or left over


def test_load_downloads_once_then_uses_the_cache(server, tmp_path, monkeypatch):
    handler, base = server
    ds = datasets.synthetic(200, 10, 25, metric="angular", seed=8)
    datasets.write_hdf5(tmp_path / "src.hdf5", ds)
    blob = (tmp_path / "src.hdf5").read_bytes()
    handler.files["/glove-25-angular.hdf5"] = blob
    entry = datasets.Entry(
        "glove-25-angular",
        "angular",
        25,
        base + "/glove-25-angular.hdf5",
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
    )
    monkeypatch.setitem(datasets.REGISTRY, "glove-25-angular", entry)
    got = datasets.load("glove-25-angular", progress=False)
    np.testing.assert_array_equal(got.neighbors, ds.neighbors)
    assert got.name == "glove-25-angular" and got.metric == "angular"
    datasets.load("glove-25-angular", download=False)
    assert len(handler.requests) == 1


# ---------------------------------------------------------------------------- real data


def test_siftsmall_build_agrees_with_the_shipped_ground_truth():
    shipped = datasets.read_ivecs(shared_file("siftsmall", "siftsmall_groundtruth.ivecs"))
    ds = datasets.load("siftsmall-128-euclidean", download=False, progress=False)
    assert ds.train.shape == (10000, 128) and ds.test.shape == (100, 128)
    assert ds.neighbors.shape == ds.distances.shape == (100, 100) and ds.metric == "euclidean"
    # the shipped ids, measured by us, are at our distances: equal up to the order of ties
    theirs = np.linalg.norm(ds.train[shipped] - ds.test[:, None, :], axis=2)
    np.testing.assert_allclose(theirs, ds.distances, rtol=1e-5)
    assert (ds.neighbors == shipped).mean() > 0.99
    assert Path(os.environ["DEG_DATASETS_DIR"], "siftsmall-128-euclidean.hdf5").exists()


def test_siftsmall_angular_build():
    ds = datasets.load("siftsmall-128-angular", download=False, progress=False)
    assert ds.metric == "angular" and ds.neighbors.shape == (100, 100)
    assert_exact_knn(
        ds.neighbors[:10], ds.distances[:10], naive(ds.train, ds.test[:10], "angular"), 100
    )


def test_fashion_mnist_idx_reader_on_the_real_t10k_file():
    images = datasets.read_idx(shared_file("fashion-mnist", "t10k-images-idx3-ubyte.gz"))
    labels = datasets.read_idx(shared_file("fashion-mnist", "t10k-labels-idx1-ubyte.gz"))
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))


@pytest.mark.slow
def test_fashion_mnist_full_build():
    """About 10 s of ground truth on 2 cores: 10 000 queries x 60 000 x 784."""
    shared_file("fashion-mnist", "train-images-idx3-ubyte.gz")
    ds = datasets.load("fashion-mnist-784-euclidean", download=False, progress=False)
    assert ds.train.shape == (60000, 784) and ds.test.shape == (10000, 784)
    rows = np.arange(0, 10000, 500)
    assert_exact_knn(
        ds.neighbors[rows], ds.distances[rows], naive(ds.train, ds.test[rows], "euclidean"), 100
    )


# ---------------------------------------------------------------- deformed collections


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 rows, so a few hundred rows cross several (the random numbers of a row
    depend on its block)."""
    from deg import _deformed

    monkeypatch.setattr(_deformed, "BLOCK", 64)
    return _deformed


def test_deformed_rows_are_seeded_prefixes_of_integer_images(small_blocks):
    base = np.random.default_rng(3).integers(0, 256, (40, 784)).astype(np.float32)
    big = small_blocks.deformed(base, 300, seed=5)
    assert big.shape == (300, 784) and big.dtype == np.float32
    np.testing.assert_array_equal(big[:40], base)  # the first pass is the base itself
    np.testing.assert_array_equal(small_blocks.deformed(base, 170, seed=5), big[:170])
    np.testing.assert_array_equal(small_blocks.deformed(base, 300, seed=5), big)
    assert not np.array_equal(small_blocks.deformed(base, 300, seed=6)[40:], big[40:])
    assert (big == np.rint(big)).all() and big.min() >= 0 and big.max() <= 255
    assert not (big[40:80] == base).all(axis=1).any()  # every later row is moved


def test_a_deformed_image_stays_near_its_own_base(small_blocks):
    """Moved farther than the base's nearest neighbour (pixel distances punish a shift), but
    among the base images still one of the nearest to its own: the same garment."""
    images = datasets.read_idx(shared_file("fashion-mnist", "t10k-images-idx3-ubyte.gz"))
    base = images[:500].reshape(500, -1).astype(np.float32)
    rows = small_blocks.deformed(base, 1500)[500:]
    d = ((rows[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    own = d[np.arange(1000), np.arange(1000) % 500]
    rank = (d < own[:, None]).sum(axis=1)  # bases nearer than its own
    assert np.median(rank) <= 5 and (rank < 25).mean() > 0.75
    assert (own > 0).all()


def test_deformed_checks_its_input():
    from deg import _deformed

    with pytest.raises(ValueError, match=r"\(m, 784\) images, got shape \(3, 10\)"):
        _deformed.deformed(np.zeros((3, 10)), 5)
    with pytest.raises(ValueError, match="n must be >= 0"):
        _deformed.deformed(np.zeros((3, 784)), -1)


def test_deformed_collection_builds_from_the_raw_files(tmp_path, monkeypatch, small_blocks):
    rng = np.random.default_rng(4)
    raw = tmp_path / "raw" / "fashion-mnist"
    raw.mkdir(parents=True)
    train, test = (rng.integers(0, 256, (m, 28, 28), dtype=np.uint8) for m in (150, 8))
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(train)))
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(test)))
    monkeypatch.setenv("DEG_DATA_DIR", str(tmp_path / "raw"))
    entry = datasets.REGISTRY["fashion-mnist-250k-784-euclidean"]
    monkeypatch.setitem(
        datasets.REGISTRY,
        entry.name,
        datasets.Entry(entry.name, "euclidean", 784, source="fashion-mnist", rows=400),
    )
    ds = datasets.load(entry.name, download=False, progress=False)
    assert ds.train.shape == (400, 784) and ds.test.shape == (8, 784)
    np.testing.assert_array_equal(ds.train[:150], train.reshape(150, 784))
    assert_exact_knn(ds.neighbors, ds.distances, naive(ds.train, ds.test, "euclidean"), 100)
    assert (tmp_path / "cache" / f"{entry.name}.hdf5").exists()
