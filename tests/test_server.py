"""The retrieval service over real HTTP on 127.0.0.1: every route, its errors and the token,
a bounded load test, and crash tests (``kill -9`` of a server process, a torn log tail)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import uvicorn

from deg import _wal as wal
from deg._durable import Durable
from deg.client import Client
from deg.server import INLINE_BYTES, Limits, create_app
from tests.conftest import assert_graph_ok, low_dim_data

DIM = 8
TOKEN = "s3cret"


@contextlib.contextmanager
def running(directory, token=TOKEN, limits=None, sync="group", params=None):
    """A real uvicorn server in this process, on a free loopback port."""
    durable = Durable(directory, params or {"dim": DIM, "edges_per_vertex": 8}, sync=sync)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(durable, token, limits), log_level="error", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", durable
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
        durable.close()


def raw(url, method, path, body=None, headers=None):
    """(status, parsed JSON or bytes) of one request, errors included."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    head = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url + path, data=data, method=method, headers=head)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        out, status = e.read(), e.code
    with contextlib.suppress(ValueError):
        return status, json.loads(out)
    return status, out


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_every_route_round_trips(tmp_path):
    x = low_dim_data(1500, dim=DIM, seed=1)
    with running(tmp_path / "svc") as (url, durable):
        c = Client(url, token=TOKEN)
        cj = Client(url, token=TOKEN, binary=False)
        assert c.health() == {"status": "ok"}
        assert (c.add(x[:1000], labels=np.arange(1000)) == np.arange(1000)).all()
        assert (cj.add(x[1000:1200], labels=np.arange(1000, 1200)) == np.arange(1000, 1200)).all()
        assert (cj.add(x[1200:1210]) == np.arange(1200, 1210)).all()  # labels after the largest
        assert len(c) == 1210 and c.dim == DIM and c.metric == "l2"
        want = durable.index.search(x[:20], k=5, threads=1)
        for client in (c, cj):
            labels, dists = client.search(x[:20], k=5)
            assert labels.dtype == np.int64 and dists.dtype == np.float32
            np.testing.assert_array_equal(labels, want[0])
            np.testing.assert_allclose(dists, want[1], rtol=1e-6)
        big = durable.index.search(x[:1200], k=5, threads=1)  # bodies past INLINE_BYTES
        for client in (c, cj):  # go to the thread pool: the same answers
            labels, dists = client.search(x[:1200], k=5)
            np.testing.assert_array_equal(labels, big[0])
            np.testing.assert_allclose(dists, big[1], rtol=1e-6)
        labels, _ = c.search(x[0], k=3, filter=[5, 6, 7])
        assert set(labels[0]) <= {5, 6, 7}
        labels, _ = c.search(x[0], k=3, exclude=[0])
        assert 0 not in labels
        np.testing.assert_array_equal(
            c.explore([3, 4], k=4)[0], durable.index.explore([3, 4], k=4)[0]
        )
        np.testing.assert_array_equal(c.get_vectors([7, 8]), x[7:9])
        c.remove([7, 8])
        assert 7 not in c and 9 in c and len(c) == 1208
        c.add(np.ones((1, DIM)), labels=[9], upsert=True)
        np.testing.assert_array_equal(c.get_vectors([9])[0], np.ones(DIM))
        stats = c.stats(check_graph=True)
        assert stats["size"] == 1208 and stats["graph"]["ok"] and stats["wal_records"] == 5
        snap = c.snapshot()
        assert snap["seq"] == 5 and c.stats(check_graph=False)["wal_records"] == 0
        text = c.metrics()
        assert 'deg_requests_total{route="/search",method="POST",status="200"}' in text
        assert "deg_request_seconds_bucket" in text and "deg_index_vectors 1208" in text
        status, page = raw(url, "GET", "/docs")
        assert status == 200 and b"swagger" in page.lower()
        status, spec = raw(url, "GET", "/openapi.json")
        assert "/search" in spec["paths"] and "/vectors/{label}" in spec["paths"]
        status, _ = raw(url, "POST", "/search", {"vectors": [[0.0] * DIM], "k": 1001}, AUTH)
        assert status == 422  # k over the service's limit (1000 by default)
        assert_graph_ok(durable.index)
        c.close()
        cj.close()


def test_recall_targets_through_the_service(tmp_path):
    x = low_dim_data(1500, dim=DIM, seed=6)
    with running(tmp_path / "svc") as (url, durable):
        c = Client(url, token=TOKEN)
        cj = Client(url, token=TOKEN, binary=False)
        c.add(x, labels=np.arange(1500))
        for client in (c, cj):  # binary (query parameters) and JSON bodies
            got = client.search(x[:30], k=5, recall=0.9)
            want = durable.index.search(x[:30], k=5, recall=0.9, threads=1)
            np.testing.assert_array_equal(got[0], want[0])
        assert ("search", 5) in durable.index._calibrations.tables
        np.testing.assert_array_equal(
            cj.explore([3, 4], k=4, recall=0.9)[0],
            durable.index.explore([3, 4], k=4, recall=0.9)[0],
        )
        for body in ({"recall": 1.5}, {"recall": 0.9, "eps": 0.2}):  # as Index refuses them
            status, out = raw(url, "POST", "/search", {"vectors": [[0.0] * DIM], **body}, AUTH)
            assert status == 422, out
        c.close()
        cj.close()


def pad(body: dict) -> bytes:
    """``body`` as JSON, spaces after it making it longer than a read the service answers on
    its event loop (``INLINE_BYTES``): it goes to the thread pool."""
    return json.dumps(body).encode() + b" " * INLINE_BYTES


def test_errors_are_4xx_and_change_nothing(tmp_path):
    x = low_dim_data(300, dim=DIM, seed=2)
    limits = Limits(max_body_bytes=200_000, max_batch=250, max_k=50)
    with running(tmp_path / "svc", limits=limits) as (url, durable):
        c = Client(url, token=TOKEN)
        c.add(x[:200], labels=np.arange(200))
        before = (len(durable.index), durable.seq)
        cases = [
            ("PUT", "/vectors", {"labels": [1000], "vectors": [[1.0] * 7]}, 422),  # wrong dim
            ("PUT", "/vectors", {"labels": [1000], "vectors": [[float("nan")] * DIM]}, 422),
            ("PUT", "/vectors", {"labels": [1000], "vectors": [[1e39] * DIM]}, 422),  # inf
            ("PUT", "/vectors", {"labels": [-1], "vectors": [[1.0] * DIM]}, 422),
            ("PUT", "/vectors", {"labels": [5], "vectors": [[1.0] * DIM]}, 409),  # present
            ("PUT", "/vectors", {"labels": [900, 900], "vectors": [[1.0] * DIM] * 2}, 409),
            ("PUT", "/vectors", {"labels": [1, 2], "vectors": [[1.0] * DIM]}, 422),
            ("PUT", "/vectors", {"vectors": [[1.0] * DIM] * 251}, 413),  # batch
            ("PUT", "/vectors", {"vectors": "nope"}, 422),
            ("PUT", "/vectors", b"{not json", 422),
            ("DELETE", "/vectors", {"labels": [3, 4000]}, 404),  # 3 stays
            ("DELETE", "/vectors", {"labels": [3, 3]}, 409),
            ("GET", "/vectors/4000", None, 404),
            ("POST", "/search", {"vectors": [[1.0] * DIM], "k": 0}, 422),
            ("POST", "/search", {"vectors": [[1.0] * DIM], "k": 51}, 422),
            ("POST", "/search", {"vectors": [[1.0] * DIM], "eps": -1}, 422),
            ("POST", "/search", {"vectors": [[1.0, 2.0]]}, 422),
            ("POST", "/search", {"vectors": [[1.0] * DIM, [1.0]]}, 422),  # ragged
            ("POST", "/search", pad({"vectors": [[1.0] * DIM, [1.0]]}), 422),  # pooled
            ("POST", "/search", pad({"vectors": [[1.0] * DIM] * 251}), 413),
            ("POST", "/search", pad({"vectors": [[1.0] * DIM], "k": 51}), 422),
            ("POST", "/explore", pad({"labels": [4000], "k": 3}), 404),
            ("POST", "/explore", {"labels": [4000]}, 404),
            ("POST", "/search", b"x" * 200_001, 413),  # body
        ]
        for method, path, body, want in cases:
            status, out = raw(url, method, path, body, AUTH)
            assert status == want, (method, path, body if len(str(body)) < 200 else "...", out)
            assert isinstance(out["detail"], str) and out["detail"]
        # binary bodies: a shape that does not match the bytes, another dim
        head = {**AUTH, "Content-Type": "application/octet-stream", "X-Deg-Shape": "2,8"}
        assert raw(url, "POST", "/search", b"\0" * 60, head)[0] == 422
        assert raw(url, "POST", "/search", b"\0" * 64, {**head, "X-Deg-Shape": "2,9"})[0] == 422
        assert raw(url, "POST", "/search", b"\0" * 64, {**head, "X-Deg-Shape": "two"})[0] == 422
        # the token: every route but /health
        for method, path in [("GET", "/stats"), ("POST", "/snapshot"), ("GET", "/metrics")]:
            assert raw(url, method, path)[0] == 401
            assert raw(url, method, path, headers={"Authorization": "Bearer nope"})[0] == 401
        assert raw(url, "GET", "/health")[0] == 200
        with pytest.raises(PermissionError):
            Client(url).search(x[0])
        assert (len(durable.index), durable.seq) == before
        assert 3 in durable.index
        assert_graph_ok(durable.index)


def test_bounded_load_readers_beside_a_writer(tmp_path):
    """Four searching clients while one adds and removes, a fixed number of requests each:
    no 5xx, every acknowledged write there at the end, the graph whole."""
    x = low_dim_data(4000, dim=DIM, seed=3)
    with running(tmp_path / "svc", sync="group") as (url, durable):
        Client(url, token=TOKEN).add(x[:1000], labels=np.arange(1000))
        statuses, errors = [], []
        acked_adds, acked_removes = set(), set()

        def searcher(seed):
            c = Client(url, token=TOKEN, binary=seed % 2 == 0)
            rng = np.random.default_rng(seed)
            try:
                for _ in range(150):
                    labels, dists = c.search(x[rng.integers(0, 4000, 4)], k=5)
                    assert (labels >= 0).all() and (np.diff(dists, axis=1) >= 0).all()
            except Exception as e:
                errors.append(e)
            c.close()

        def writer():
            c = Client(url, token=TOKEN)
            try:
                for lo in range(1000, 4000, 100):
                    c.add(x[lo : lo + 100], labels=np.arange(lo, lo + 100))
                    acked_adds.update(range(lo, lo + 100))
                    gone = list(range(lo - 1000, lo - 1000 + 20))
                    c.remove(gone)
                    acked_removes.update(gone)
            except Exception as e:
                errors.append(e)
            c.close()

        threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
        threads.append(threading.Thread(target=writer))
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors[:3]
        probe = Client(url, token=TOKEN)
        text = probe.metrics()
        probe.close()
        statuses = [line for line in text.splitlines() if 'status="5' in line]
        assert not statuses, statuses
        index = durable.index
        assert all(label in index for label in acked_adds - acked_removes)
        assert not any(label in index for label in acked_removes)
        assert_graph_ok(index)


# ---------------------------------------------------------------------- crashes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(directory, port, extra=()):
    """``python -m deg serve`` as a subprocess, once it answers /health (stderr: a file
    beside the directory)."""
    cmd = [sys.executable, "-m", "deg", "serve", "--dir", str(directory), "--port", str(port)]
    log = open(f"{directory}.stderr", "a")  # noqa: SIM115 - the child keeps writing to it
    proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=log)
    log.close()  # the child has its own copy
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            with open(f"{directory}.stderr") as f:
                raise AssertionError(f"server exited: {f.read()}")
        with contextlib.suppress(OSError):
            if raw(f"http://127.0.0.1:{port}", "GET", "/health")[0] == 200:
                return proc
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.05)


@pytest.mark.parametrize("sync", ["group", "request"])
def test_kill_9_loses_no_acknowledged_write(tmp_path, sync):
    """Writers add and remove from three threads; the server is killed with SIGKILL at random
    moments, restarted, and every acknowledged add must be there with its vector and no
    acknowledged removal may have come back."""
    directory = tmp_path / "svc"
    rng = np.random.default_rng(7)
    x = low_dim_data(30_000, dim=DIM, seed=4)
    args = ["--sync", sync, "--snapshot-bytes", "300000"]  # a few snapshots on the way
    proc = start_server(directory, port := free_port(), ["--dim", str(DIM), "-d", "8", *args])
    acked_adds, acked_removes, uncertain = {}, set(), set()
    kills, lock = 0, threading.Lock()
    next_label = [0]
    try:
        for _ in range(3):
            url = f"http://127.0.0.1:{port}"
            stop = threading.Event()

            def writer(seed, url=url, stop=stop):
                c = Client(url, timeout=10)
                r = np.random.default_rng(seed)
                while not stop.is_set():
                    with lock:
                        lo = next_label[0]
                        next_label[0] += 20
                        mine = [v for v in acked_adds if v not in uncertain]
                    try:
                        if mine and r.random() < 0.3:
                            gone = [int(v) for v in r.choice(mine, min(5, len(mine)), False)]
                            with lock:  # may be applied unacknowledged: checked for neither
                                uncertain.update(gone)
                            c.remove(gone)
                            with lock:
                                acked_removes.update(gone)
                        else:
                            c.add(x[lo : lo + 20], labels=np.arange(lo, lo + 20))
                            with lock:
                                acked_adds.update({v: v for v in range(lo, lo + 20)})
                    except (OSError, RuntimeError, KeyError, ValueError):
                        break  # the server died under us (or a removal raced another)
                c.close()

            threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            stop.set()
            for t in threads:
                t.join(30)
            proc = start_server(directory, port := free_port(), args)
        c = Client(f"http://127.0.0.1:{port}")
        stats = c.stats(check_graph=True)
        assert stats["replayed_at_start"] + stats["last_snapshot"]["seq"] == stats["seq"]
        assert stats["graph"]["ok"], stats
        alive = sorted(set(acked_adds) - uncertain)
        assert len(alive) > 100, "too few writes were acknowledged to test anything"
        for lo in range(0, len(alive), 200):
            part = alive[lo : lo + 200]
            np.testing.assert_array_equal(c.get_vectors(part[:3]), x[part[:3]])
            labels, _ = c.search(x[part], k=1, eps=0.3)
            assert (labels[:, 0] == part).mean() > 0.95  # found by search, too
        for lo in range(0, len(alive), 1000):  # explore raises KeyError naming a missing one
            c.explore(alive[lo : lo + 1000], k=1)
        back, _ = c.search(x[0], k=10, filter=sorted(acked_removes))  # only removed ones
        assert (back == -1).all(), f"acknowledged removals came back: {back[back >= 0]}"
        assert len(c) >= len(alive)  # and writes in flight at a kill may have landed
        c.close()
        print(
            f"sync={sync}: {kills} kills, {len(acked_adds)} adds and {len(acked_removes)} "
            f"removals acknowledged, {len(alive)} labels alive, all found"
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_a_torn_log_tail_is_cut_cleanly(tmp_path):
    x = low_dim_data(600, dim=DIM, seed=5)
    d = Durable(tmp_path, {"dim": DIM, "edges_per_vertex": 8})
    for lo in range(0, 600, 100):
        d.add(np.arange(lo, lo + 100), x[lo : lo + 100])
    d.remove([3, 4])
    d.log.close()  # as if killed: no snapshot at close
    os.close(d._lock_fd)
    (_, path), *_ = wal.segments(tmp_path)
    whole = os.path.getsize(path)
    last = wal.encode(wal.ADD, 8, np.array([9000]), np.ones((1, DIM), np.float32))
    for torn in (last[:5], last[:-3], last[:20] + b"\xff" * (len(last) - 20)):
        with open(path, "r+b") as f:
            f.truncate(whole)
            f.seek(whole)
            f.write(torn)
        d = Durable(tmp_path, {"dim": DIM})
        assert d.torn is not None and d.replayed == 7 and len(d.index) == 598
        assert 9000 not in d.index and 3 not in d.index
        assert os.path.getsize(path) == whole  # cut back before anything is appended
        assert_graph_ok(d.index)
        d.log.close()
        os.close(d._lock_fd)
    d = Durable(tmp_path, {"dim": DIM})  # replays 7 records, then snapshots at close
    closing = threading.Thread(target=d.close)
    closing.start()
    closing.join(30)
    assert not closing.is_alive(), "a snapshot right after a replay did not finish"
    d = Durable(tmp_path, {"dim": DIM})
    assert d.replayed == 0 and len(d.index) == 598
    d.add([9000], np.ones((1, DIM)))  # appends after the last whole record
    d.close()
    d = Durable(tmp_path, {"dim": DIM})
    assert 9000 in d.index and len(d.index) == 599 and d.replayed == 0  # from the snapshot
    d.close()
    Durable(tmp_path / "other", {"dim": 9}).close()
    with pytest.raises(ValueError, match="dim=9, not 8"):
        Durable(tmp_path / "other", {"dim": 8})


def test_a_directory_is_served_once_and_needs_a_dim(tmp_path):
    with pytest.raises(ValueError, match="give its dimension"):
        Durable(tmp_path / "new")
    d = Durable(tmp_path / "a", {"dim": 4})
    with pytest.raises(ValueError, match="in use by another deg service"):
        Durable(tmp_path / "a")
    d.close()
    Durable(tmp_path / "a").close()


def test_a_write_the_index_refuses_is_refused_cleanly(tmp_path):
    """A float16 row that overflows once rotated into the basis: 422-worthy, nothing logged,
    and later writes still go through."""
    x = low_dim_data(1200, dim=DIM, seed=6)
    d = Durable(tmp_path, {"dim": DIM, "dtype": "float16", "rotate": True})
    d.add(np.arange(1200), x)
    assert d.index.rotated
    seq = d.seq
    with pytest.raises(ValueError, match="overflows float16"):
        d.add([5000], np.full((1, DIM), 60000.0))
    with pytest.raises(ValueError, match="overflows float16"):
        d.add([0], np.full((1, DIM), 60000.0), replace=True)  # before the old one goes
    assert d.seq == seq and d.failed is None and 0 in d.index
    d.add([5000], x[:1])
    d.close()
    d = Durable(tmp_path)
    assert len(d.index) == 1201 and 5000 in d.index
    d.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread CPU classes: Linux")
@pytest.mark.parametrize(
    ("nice", "policy", "value"), [("idle", "SCHED_IDLE", 0), (7, "SCHED_OTHER", 7)]
)
def test_writes_are_applied_at_the_write_priority(tmp_path, nice, policy, value):
    """The thread applying writes runs in the idle class by default (or at the nice value
    asked); this thread, which serves searches, keeps its own."""
    mine = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    d = Durable(
        tmp_path, {"dim": DIM, "edges_per_vertex": 8}, **({} if nice == "idle" else {"nice": nice})
    )
    try:
        d.add([1], np.ones((1, DIM)))
        tid = d._applier.submit(threading.get_native_id).result()
        assert os.sched_getscheduler(tid) == getattr(os, policy)
        if policy == "SCHED_OTHER":
            assert os.getpriority(os.PRIO_PROCESS, tid) == mine[1] + value
        assert (
            os.sched_getscheduler(0),
            os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
        ) == mine
    finally:
        d.close()
    for bad in ("low", 20, -1, 1.5):
        with pytest.raises((ValueError, TypeError), match="nice"):
            Durable(tmp_path / "bad", {"dim": DIM}, nice=bad)
