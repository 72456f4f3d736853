"""deg.datasets: HDF5 layout, exact ground truth, local builds and the download path.

Downloads are tested against an HTTP server on 127.0.0.1 started here; nothing leaves the
machine.
"""

import hashlib
import http.server
import threading

import numpy as np
import pytest

from deg import datasets
from tests.conftest import shared_file


def naive_knn(train, test, k, metric):
    x, q = train.astype(np.float64), test.astype(np.float64)
    if metric == "angular":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        dist = 1.0 - q @ x.T
    else:
        dist = np.sqrt(((q[:, None, :] - x[None]) ** 2).sum(-1))
    ids = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(dist, ids, 1)


@pytest.mark.parametrize("metric", ["euclidean", "angular"])
def test_ground_truth_matches_naive_brute_force(metric):
    rng = np.random.default_rng(0)
    train = rng.standard_normal((700, 12)).astype(np.float32)
    test = rng.standard_normal((30, 12)).astype(np.float32)
    ids, dists = datasets.ground_truth(train, test, 20, metric, block=7)
    ref_ids, ref_d = naive_knn(train, test, 20, metric)
    np.testing.assert_allclose(dists, ref_d, rtol=1e-5, atol=1e-6)
    assert (ids == ref_ids).mean() > 0.99  # ids may differ only at exact ties
    assert ids.dtype == np.int32 and dists.dtype == np.float32


def test_hdf5_round_trip(tmp_path):
    ds = datasets.synthetic(300, 20, 16, metric="angular", seed=3)
    datasets.write_hdf5(tmp_path / "x.hdf5", ds)
    back = datasets.read_hdf5(tmp_path / "x.hdf5")
    for key in ("train", "test", "neighbors", "distances"):
        np.testing.assert_array_equal(getattr(back, key), getattr(ds, key))
    assert back.metric == "angular" and back.deg_metric == "cosine"
    import h5py
    with h5py.File(tmp_path / "x.hdf5") as f:
        assert f.attrs["dimension"] == 16 and f.attrs["point_type"] == "float"
    assert [p.name for p in tmp_path.iterdir()] == ["x.hdf5"]


def test_synthetic_is_deterministic_with_exact_gt():
    a = datasets.synthetic(200, 10, 24, seed=5)
    b = datasets.synthetic(200, 10, 24, seed=5)
    np.testing.assert_array_equal(a.train, b.train)
    ids, _ = naive_knn(a.train, a.test, 10, "euclidean")
    assert (a.neighbors[:, :10] == ids).mean() > 0.99


def test_explore_groundtruth_excludes_the_entry_only():
    ds = datasets.synthetic(300, 5, 8, seed=1)
    ds.train[7] = ds.train[3]  # a duplicate of entry 3 must stay in its neighbourhood
    ids, dists = ds.explore_groundtruth([3, 10], 5)
    assert 3 not in ids[0] and 10 not in ids[1]
    assert ids[0, 0] == 7 and dists[0, 0] == 0


def test_unknown_name_and_missing_local_files(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match="known: .*fashion-mnist-784-euclidean"):
        datasets.load("no-such-set")
    monkeypatch.setenv("DEG_DATASETS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download=False"):
        datasets.load("glove-25-angular", download=False)


# ---------------------------------------------------------------------------- downloads

class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload``; honours ``Range: bytes=N-``; ``cut`` truncates the body it sends."""

    payload = b""
    cut = None

    def do_GET(self):  # noqa: N802 (http.server's name)
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range",
                             f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        self.end_headers()
        self.wfile.write(body if self.cut is None else body[:self.cut])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("H", (RangeHandler,), {"payload": bytes(range(256)) * 4000, "cut": None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/f.hdf5"
    httpd.shutdown()
    httpd.server_close()


def test_download_complete_and_checked(server, tmp_path):
    handler, url = server
    sha = hashlib.sha256(handler.payload).hexdigest()
    out = datasets.fetch(url, tmp_path / "f.hdf5", expected_size=len(handler.payload),
                         sha256=sha, progress=False)
    assert out.read_bytes() == handler.payload
    assert not (tmp_path / "f.hdf5.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    handler, url = server
    (tmp_path / "f.hdf5.part").write_bytes(handler.payload[:12345])
    datasets.fetch(url, tmp_path / "f.hdf5", progress=False)
    assert (tmp_path / "f.hdf5").read_bytes() == handler.payload


def test_truncated_download_is_refused_then_resumed(server, tmp_path):
    handler, url = server
    handler.cut = 50_000  # the server dies mid-body
    with pytest.raises(IOError, match="truncated|interrupted"):
        datasets.fetch(url, tmp_path / "f.hdf5", progress=False)
    assert not (tmp_path / "f.hdf5").exists()
    assert (tmp_path / "f.hdf5.part").stat().st_size <= 50_000
    handler.cut = None
    datasets.fetch(url, tmp_path / "f.hdf5", progress=False)
    assert (tmp_path / "f.hdf5").read_bytes() == handler.payload


def test_checksum_or_size_mismatch_is_refused(server, tmp_path):
    _, url = server
    with pytest.raises(IOError, match="sha256"):
        datasets.fetch(url, tmp_path / "f.hdf5", sha256="0" * 64, progress=False)
    with pytest.raises(IOError, match="1024000 bytes, expected 5$"):
        datasets.fetch(url, tmp_path / "g.hdf5", expected_size=5, progress=False)
    assert not list(tmp_path.glob("*.hdf5"))


# ---------------------------------------------------------------------------- local builds

def test_siftsmall_local_build_matches_shipped_ground_truth(tmp_path, monkeypatch):
    shipped = datasets.read_ivecs(shared_file("siftsmall", "siftsmall_groundtruth.ivecs"))
    monkeypatch.setenv("DEG_DATASETS_DIR", str(tmp_path))
    ds = datasets.load("siftsmall-128-euclidean", download=False)
    assert ds.train.shape == (10000, 128) and ds.test.shape == (100, 128)
    assert ds.neighbors.shape == (100, 100) and ds.metric == "euclidean"
    assert (ds.neighbors[:, :10] == shipped[:, :10]).mean() > 0.99  # ties may swap
    assert (tmp_path / "siftsmall-128-euclidean.hdf5").exists()  # cached for next time
    again = datasets.load("siftsmall-128-euclidean", download=False)
    np.testing.assert_array_equal(again.neighbors, ds.neighbors)


def test_fashion_mnist_idx_reader():
    images = datasets.read_idx(shared_file("fashion-mnist", "t10k-images-idx3-ubyte.gz"))
    labels = datasets.read_idx(shared_file("fashion-mnist", "t10k-labels-idx1-ubyte.gz"))
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
