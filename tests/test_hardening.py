"""A hostile user's inputs, files and sequences of calls (issue #20): each is refused with a
clear error or handled, and none corrupts an index or the process."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import deg
from deg import analysis, fileformat
from tests.conftest import assert_graph_ok, low_dim_data

# ---------------------------------------------------------------- 1. large degrees


def test_degree_above_255_builds_a_valid_graph_and_removes():
    """Slot numbers of the search view were uint8: d = 300 built rows listing a neighbour
    twice, and a removal then corrupted the heap."""
    x = np.random.default_rng(0).random((700, 8), dtype=np.float32)
    index = deg.Index.build(x, edges_per_vertex=300, progress=False)
    assert_graph_ok(index)
    index.remove(np.arange(0, 700, 9))
    assert_graph_ok(index)
    labels, _ = index.search(x[1:3], k=5)
    assert labels[:, 0].tolist() == [1, 2]


def test_degree_above_the_maximum_is_refused():
    with pytest.raises(ValueError, match="edges_per_vertex must be an even number from 2 to 1024"):
        deg.Index(4, edges_per_vertex=1026)


# ---------------------------------------------------------------- 2. the search view


def _churn(seed, steps=300):
    """Small adds, removes and optimisations on a 200-vector index, its view used only now and
    then (a pruned search), as a live service would; yields after each step."""
    rng = np.random.default_rng(seed)
    index = deg.Index(3, edges_per_vertex=4, improve_k=4)
    live = index.add(rng.random((200, 3), dtype=np.float32)).tolist()
    for _ in range(steps):
        op = rng.integers(0, 10)
        if op < 4:
            live += index.add(rng.random((int(rng.integers(1, 4)), 3), dtype=np.float32)).tolist()
        elif op < 8:
            pick = rng.choice(len(live), size=int(rng.integers(1, 4)), replace=False)
            gone = [live[i] for i in pick]
            index.remove(gone)
            live = [label for label in live if label not in gone]
        elif op < 9:
            index.optimize(tries=int(rng.integers(1, 20)))
        else:
            index.search(rng.random((2, 3), dtype=np.float32), k=3, max_degree=2)
        yield index


@pytest.mark.parametrize("seed", [11, 3])
def test_view_stays_current_when_rows_come_back_to_the_same_ids(seed):
    """Seed 11 made a row's ids change and come back with other vectors behind them (ids are
    reused by removal and by adds); its hash matched the stored one and it was never put in
    order again. Checked after a pruned search, which brings the view up to date."""
    for step, index in enumerate(_churn(seed)):
        if step % 10 == 9:
            index.search(np.zeros((1, 3), np.float32), k=3, max_degree=2)
            report = analysis.check(index, gq_sample=0)
            assert report["view_current"] and report["view_pending"] == 0, step


class OccasionalView(RuleBasedStateMachine):
    """add / remove / optimize with the view used only now and then, and save/load: every
    invariant after every step (the check reads the view as it is and refreshes nothing)."""

    def __init__(self):
        super().__init__()
        self.index = deg.Index(3, edges_per_vertex=4, improve_k=4)
        self.rng = np.random.default_rng(0)
        self.index.add(self.rng.random((120, 3), dtype=np.float32))

    @rule(m=st.integers(1, 4), dup=st.booleans())
    def add(self, m, dup):
        x = self.rng.integers(0, 4, size=(m, 3)) if dup else self.rng.random((m, 3))
        self.index.add(x.astype(np.float32))

    @precondition(lambda self: len(self.index) > 20)
    @rule(data=st.data())
    def remove(self, data):
        labels = self.index.labels
        count = data.draw(st.integers(1, 4))
        self.index.remove(self.rng.choice(labels, size=count, replace=False))

    @rule(tries=st.integers(1, 10))
    def optimize(self, tries):
        self.index.optimize(tries=tries)

    @rule(m=st.integers(1, 4))
    def pruned_search(self, m):
        self.index.search(self.rng.random((2, 3), dtype=np.float32), k=3, max_degree=m)

    @rule(mmap=st.booleans())
    def save_and_load(self, mmap):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.deg")
            self.index.save(path)
            loaded = deg.Index.load(path, mmap=mmap)
            assert_graph_ok(loaded)
            if not mmap:
                self.index = loaded

    @invariant()
    def every_invariant(self):
        assert analysis.check(self.index, gq_sample=0)["ok"]


OccasionalView.TestCase.settings = settings(max_examples=30, stateful_step_count=40, deadline=None)
TestOccasionalView = OccasionalView.TestCase


# ---------------------------------------------------------------- 3. files: damaged or lying


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A rotated index with an entry tree (every region of the file is present)."""
    x = low_dim_data(1100, dim=16, seed=3)
    index = deg.Index.build(x, edges_per_vertex=8, rotate=True, progress=False)
    assert index.rotated and index.internals().tree.pairs.size
    path = tmp_path_factory.mktemp("saved") / "i.deg"
    index.save(path)
    return index, path


def _rewrite(src, dst, metric=None, params=None, **changes):
    """``src`` written again (with a right checksum) with some arrays or parameters changed."""
    metric0, params0, arrays = fileformat.read(src)
    arrays = {k: np.array(v) for k, v in arrays.items()}
    for name, change in changes.items():
        change(arrays[name])
    fileformat.write(
        dst,
        metric or metric0,
        params or params0,
        arrays["vectors"],
        arrays["neighbors"],
        arrays["weights"],
        arrays["labels"],
        arrays["sig"],
        (arrays["rotation"], arrays["rotation_t"]),
        tuple(arrays[k] for k in ("members", "pairs", "planes", "offsets")),
    )


def _with_crc(raw):
    """``raw`` with its checksum made right again."""
    body = bytes(raw[: -fileformat._TRAILER.size])
    return body + fileformat._TRAILER.pack(zlib.crc32(body), b"DEND")


def _swap_rows(a):
    a[[3, 4]] = a[[4, 3]]


def _self_loop(nb):
    nb[5, 0] = 5


def _asymmetric(nb):
    nb[5, 0] = next(v for v in range(nb.shape[0]) if v != 5 and v not in nb[5])


def _set(index, value):
    def change(a):
        a[index] = value

    return change


SEMANTIC = {  # CRC-correct edits of the graph: name -> (changes to _rewrite, expected message)
    "self-loop": ({"neighbors": _self_loop}, "row 5 slot 0: an empty slot"),
    "asymmetric edge": ({"neighbors": _asymmetric}, "listed by vertex 5 but not"),
    "two neighbour rows swapped": ({"neighbors": _swap_rows}, "not by vertex"),
    "two weight rows swapped": ({"weights": _swap_rows}, "has weight .* at"),
    "zero weight": ({"weights": lambda w: w.__setitem__((5, 0), 0)}, "has weight"),
    "negative weight": ({"weights": lambda w: w.__setitem__((5, 0), -1)}, "has weight"),
    "huge weight": ({"weights": lambda w: w.__setitem__((5, 0), 3e38)}, "has weight"),
    "all weights zero": ({"weights": lambda w: w.__imul__(0)}, "has weight 0.0, but"),
    "both ends' weights wrong": ({"weights": lambda w: w.__imul__(1.01)}, "has weight .*, but"),
    "3e38 vector": ({"vectors": _set((7, 2), 3e38)}, "vector 7 has norm 3e\\+38, beyond"),
    "NaN vector": ({"vectors": _set((7, 2), np.nan)}, "vector 7 has a NaN"),
    "moved vector": ({"vectors": _swap_rows}, "but its vectors are at distance"),
    "id out of range": ({"neighbors": _set((2, 1), 5000)}, "neighbor id 5000 is out of range"),
    "negative id": ({"neighbors": _set((2, 1), -3)}, "neighbor id -3 is out of range"),
    "repeated neighbour": (
        {"neighbors": lambda nb: nb.__setitem__((2, 1), nb[2, 0])},
        "row 2 lists vertex .* twice",
    ),
    "duplicate label": ({"labels": _set(1, 0)}, "not unique"),
    "negative label": ({"labels": _set(1, -5)}, "negative"),
    "tree member out of range": ({"members": _set(0, 99999)}, "members out of range"),
    "rotation not orthogonal": ({"rotation": lambda y: y.__imul__(1.5)}, "not unit vectors"),
}


def _disconnected(src, dst):
    """Two complete graphs of 9 vertices: regular, undirected, exact weights, two parts."""
    x = np.random.default_rng(1).random((18, 3), dtype=np.float32)
    nb = np.array(
        [[g * 9 + j for j in range(9) if g * 9 + j != u] for u in range(18) for g in [u // 9]],
        dtype=np.int32,
    )
    w = np.array(
        [[np.sum((x[u] - x[v]) ** 2, dtype=np.float32) for v in row] for u, row in enumerate(nb)],
        dtype=np.float32,
    )
    _, params, _ = fileformat.read(src)
    params = dict(params, next_label=18, entries_drawn_at=18)
    fileformat.write(
        dst, "l2", params, x, nb, w, np.arange(18, dtype=np.int64), np.zeros(18, np.uint32)
    )


def _params(src, **changes):
    _, params, _ = fileformat.read(src)
    params = dict(params, **changes)
    return {k: v for k, v in params.items() if v is not None}


def _semantic_variants(src):
    """(name, writer(dst), expected message) for every CRC-correct edit."""
    out = [
        (name, lambda dst, c=changes: _rewrite(src, dst, **c), match)
        for name, (changes, match) in SEMANTIC.items()
    ]
    out += [
        ("metric l2 as ip", lambda dst: _rewrite(src, dst, metric="ip"), "under the ip metric"),
        ("metric l2 as cosine", lambda dst: _rewrite(src, dst, metric="cosine"), "unit vectors"),
        ("disconnected graph", lambda dst: _disconnected(src, dst), "not connected"),
        (
            "improve_tries 1e9",
            lambda dst: _rewrite(src, dst, params=_params(src, improve_tries=10**9)),
            "improve_tries must be <= 100",
        ),
        (
            "extend_k 1e9",
            lambda dst: _rewrite(src, dst, params=_params(src, extend_k=10**9)),
            "extend_k must be <= 4096",
        ),
        (
            "missing parameter",
            lambda dst: _rewrite(src, dst, params=_params(src, extend_k=None)),
            "'extend_k' is missing",
        ),
        (
            "next_label negative",
            lambda dst: _rewrite(src, dst, params=_params(src, next_label=-1)),
            "next_label must be >= 0",
        ),
        (
            "scheme unknown",
            lambda dst: _rewrite(src, dst, params=_params(src, scheme="x")),
            "scheme must be one of",
        ),
    ]
    return out


def _raw_variants(raw, layout):
    """(name, bytes, expected message) for truncations, byte flips and header edits."""
    size = len(raw)
    header = fileformat._HEADER.size
    out = []
    cuts = sorted(
        set(
            np.linspace(0, size - 1, 41).astype(int).tolist()
            + [offset for *_, offset in layout]
            + [header - 1, header + 1]
        )
    )
    for cut in cuts:
        out.append((f"truncated at {cut}", raw[:cut], "shorter than|size is|checksum"))
    regions = [("header", 0, header), ("params", header, layout[0][3])]
    regions += [
        (name, offset, offset + int(np.prod(shape)) * dtype.itemsize)
        for name, dtype, shape, offset in layout
        if np.prod(shape)
    ]
    regions += [("trailer", size - fileformat._TRAILER.size, size)]
    for name, lo, hi in regions:
        for pos in sorted({lo, (lo + hi) // 2, hi - 1}):
            for bit in (0x01, 0x80):
                flipped = bytearray(raw)
                flipped[pos] ^= bit
                out.append(
                    (
                        f"{name} byte {pos} ^ {bit:#x}",
                        bytes(flipped),
                        "checksum|magic|version|metric|implausible|size is|JSON",
                    )
                )
    fields = dict(
        zip(
            ("magic", "version", "metric", "dim", "d", "n", "plen", "rank"),
            fileformat._HEADER.unpack_from(raw, 0),
        )
    )
    edits = {
        "version": [0, fileformat.VERSION + 1, 2**32 - 1],
        "metric": [3, 2**31],
        "dim": [0, 15, 17, 2**31],
        "d": [0, 7, 10, 2000],
        "n": [0, 1099, 1101, 2**40],
        "plen": [0, 3, 2**31],
        "rank": [17, 2**20],
    }
    for field, values in edits.items():
        for value in values:
            for fix_crc in (False, True):
                edited = bytearray(raw)
                fileformat._HEADER.pack_into(edited, 0, *dict(fields, **{field: value}).values())
                out.append(
                    (
                        f"header {field}={value}{' crc fixed' if fix_crc else ''}",
                        _with_crc(edited) if fix_crc else bytes(edited),
                        "checksum|version|metric|implausible|size is|JSON|tree",
                    )
                )
    blob_at = header
    plen = fields["plen"]
    not_json = bytearray(raw)
    not_json[blob_at : blob_at + 1] = b"#"
    out.append(("params not JSON, crc fixed", _with_crc(not_json), "parameter block is not JSON"))
    out.append(("params not JSON", bytes(not_json), "checksum"))
    blob = json.loads(raw[blob_at : blob_at + plen])
    for name, shapes in [
        ("shapes", [1, 2, 3, 4]),
        ("infinite", "Infinity"),
        ("huge", 1e300),
        ("nested", "[" * 5000 + "]" * 5000),
    ]:
        text = json.dumps(dict(blob, entry_tree="@"), sort_keys=True)
        text = text.replace('"@"', shapes if isinstance(shapes, str) else json.dumps(shapes))
        if len(text) <= plen:  # the same length: JSON ignores the trailing spaces
            edited = bytearray(raw)
            edited[blob_at : blob_at + plen] = text.ljust(plen).encode()
            out.append((f"tree {name}, crc fixed", _with_crc(edited), "tree|size is|JSON"))
    return out


@pytest.mark.parametrize("mmap", [False, True])
def test_every_damaged_file_is_refused(saved, tmp_path, mmap):
    """Truncations, byte flips in every region, header edits with and without a right
    checksum, and CRC-correct edits of the graph and parameters: a clear ValueError for each,
    and a remove on none of them (they never load)."""
    index, src = saved
    raw = src.read_bytes()
    _, _, _, dim, d, n, plen, rank = fileformat._HEADER.unpack_from(raw, 0)
    _, meta, _ = fileformat.read(src)
    layout, _ = fileformat._layout(dim, d, n, plen, rank=rank, tree=tuple(meta["entry_tree"]))
    path = tmp_path / "bad.deg"
    tried = 0
    for name, data, match in _raw_variants(raw, layout):
        path.write_bytes(data)
        with pytest.raises(ValueError, match=match) as e:
            deg.Index.load(path, mmap=mmap)
        assert "is not a valid deg index file" in str(e.value) or "invalid parameters" in str(
            e.value
        ), name
        tried += 1
    for _name, write, match in _semantic_variants(src):
        write(path)
        with pytest.raises(ValueError, match=match):
            deg.Index.load(path, mmap=mmap)
        tried += 1
    assert tried >= 200
    assert deg.Index.load(src, mmap=mmap).search(index.get_vectors([4]), k=1)[0][0, 0] == 4


def test_unverified_load_still_refuses_what_the_kernels_cannot_take(saved, tmp_path):
    """``verify=False`` skips the checksum and the vector and weight checks, never the ids."""
    _, src = saved
    for name in (
        "id out of range",
        "asymmetric edge",
        "repeated neighbour",
        "tree member out of range",
    ):
        changes, match = SEMANTIC[name]
        _rewrite(src, tmp_path / "u.deg", **changes)
        with pytest.raises(ValueError, match=match):
            deg.Index.load(tmp_path / "u.deg", verify=False)
    _rewrite(src, tmp_path / "w.deg", **SEMANTIC["all weights zero"][0])
    assert len(deg.Index.load(tmp_path / "w.deg", verify=False)) == 1100  # not read: loads


def test_pickle_is_verified_too(saved):
    index, _ = saved
    fn, (metric, params, arrays) = index.__reduce__()
    arrays["weights"] = arrays["weights"] * 2
    with pytest.raises(ValueError, match=r"pickled deg.Index is not a valid .* has weight"):
        fn(metric, params, arrays)


# ---------------------------------------------------------------- 4. bounds


def test_k_is_bounded_and_searched_only_as_far_as_the_index_holds():
    x = np.random.default_rng(2).random((600, 4), dtype=np.float32)
    index = deg.Index.build(x, edges_per_vertex=8, progress=False)
    labels, dists = index.search(x[:1], k=deg._validation.MAX_K)
    assert labels.shape == (1, 2**20) and (labels[0, 600:] == -1).all()
    assert sorted(labels[0, :600].tolist()) == list(range(600)) and np.isinf(dists[0, 600:]).all()
    assert np.array_equal(
        index.search(x[:3], k=700)[0][:, :600], index.search(x[:3], k=600)[0]
    )  # the same results for any k >= n
    for k in (2**20 + 1, 10**8, 2**62):
        with pytest.raises(ValueError, match="k must be <= 1048576"):
            index.search(x[:1], k=k)
        with pytest.raises(ValueError, match="k must be <= 1048576"):
            index.explore([0], k=k)


# ---------------------------------------------------------------- 5. labels


def test_default_labels_past_int64_are_refused_and_change_nothing():
    index = deg.Index(2)
    index.add(np.ones((1, 2)), labels=[2**63 - 1])
    with pytest.raises(ValueError, match="default labels would pass 9223372036854775807"):
        index.add(np.zeros((1, 2)))
    assert len(index) == 1 and index.add(np.zeros((1, 2)), labels=[0]).tolist() == [0]


@pytest.mark.parametrize(
    "labels, error, match",
    [
        (
            np.array([2**64 - 1], dtype=np.uint64),
            ValueError,
            "<= 9223372036854775807 .*, got 18446744073709551615",
        ),
        ([2**63], ValueError, "got 9223372036854775808"),
        ([2**70], ValueError, "got 1180591620717411303424"),
        ([1e19], ValueError, "got 10000000000000000000"),
        ([-1.0], ValueError, ">= 0 .*got -1$"),
        ([1.5], TypeError, "non-integral"),
        ([True], TypeError, "integers, got dtype bool"),
        (["3"], TypeError, "integers"),
    ],
)
def test_labels_out_of_int64_are_named_as_given(labels, error, match):
    index = deg.Index(2)
    with pytest.raises(error, match=match):
        index.add(np.ones((1, 2)), labels=labels)
    assert len(index) == 0


def test_membership_takes_integers_only():
    index = deg.Index(2)
    index.add(np.ones((4, 2)))
    assert 3 in index and np.int32(3) in index and 3.0 in index
    assert 1.5 not in index and 2.9 not in index and "3" not in index and True not in index
    assert 2**64 not in index and -1 not in index and None not in index


# ---------------------------------------------------------------- 6. messages


def test_remove_names_the_duplicate():
    index = deg.Index(2)
    index.add(np.random.default_rng(0).random((10, 2)))
    with pytest.raises(ValueError, match=r"duplicates, e.g. 4"):
        index.remove([4, 1, 4])
    assert len(index) == 10


# ---------------------------------------------------------------- 7. saving


def test_saved_files_get_the_umask_or_the_replaced_files_mode(tmp_path):
    index = deg.Index(2)
    index.add(np.random.default_rng(0).random((10, 2)))
    old = os.umask(0o027)
    try:
        index.save(tmp_path / "a.deg")
        assert os.stat(tmp_path / "a.deg").st_mode & 0o777 == 0o640
        os.chmod(tmp_path / "a.deg", 0o604)
        index.save(tmp_path / "a.deg")
        assert os.stat(tmp_path / "a.deg").st_mode & 0o777 == 0o604
    finally:
        os.umask(old)


def test_a_live_saves_temp_file_is_kept_a_dead_ones_removed(tmp_path):
    import fcntl

    index = deg.Index(2)
    index.add(np.random.default_rng(0).random((10, 2)))
    prefix = fileformat.temp_prefix("a.deg")
    dead = tmp_path / f"{prefix}dead0001.tmp"
    dead.write_bytes(b"left by a killed save")
    live = tmp_path / f"{prefix}live0001.tmp"
    other = tmp_path / f"{fileformat.temp_prefix('b.deg')}dead0002.tmp"  # another target's
    longer = tmp_path / f"{prefix}dead0001x.tmp"  # not a temp file's shape
    fifo = tmp_path / f"{prefix}fifo0001.tmp"  # opening it would block
    os.mkfifo(fifo)
    for f in (other, longer):
        f.write_bytes(b"")
    kept = sorted(["a.deg", live.name, other.name, longer.name, fifo.name])
    with open(live, "wb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        index.save(tmp_path / "a.deg")
        assert sorted(os.listdir(tmp_path)) == kept
    index.save(tmp_path / "a.deg")
    assert sorted(os.listdir(tmp_path)) == sorted(set(kept) - {live.name})


def test_concurrent_saves_to_one_path_all_succeed(tmp_path):
    """Each save's temporary file stays locked until it is renamed: another save's cleanup
    never takes a live one."""
    import threading

    index = deg.Index.build(low_dim_data(2000, dim=16), edges_per_vertex=8, progress=False)
    errors = []

    def saver():
        try:
            for _ in range(40):
                index.save(tmp_path / "c.deg")
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=saver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert os.listdir(tmp_path) == ["c.deg"] and len(deg.Index.load(tmp_path / "c.deg")) == 2000


def test_long_target_names_save(tmp_path):
    index = deg.Index(2)
    index.add(np.ones((3, 2)))
    path = tmp_path / ("x" * 250)
    index.save(path)
    assert len(deg.Index.load(path)) == 3


_SAVER = textwrap.dedent("""
    import sys
    import deg
    a, b = deg.Index.load(sys.argv[1]), deg.Index.load(sys.argv[2])
    a.save(sys.argv[3])
    print("ready", flush=True)
    while True:
        b.save(sys.argv[3])
        a.save(sys.argv[3])
""")


def test_killed_saves_leave_a_complete_file(tmp_path):
    """A process saving two versions in turn, killed with SIGKILL at random moments: the path
    always loads one complete version with every invariant, and the next save leaves no
    temporary file behind."""
    x = low_dim_data(3000, dim=32, seed=8)
    a = deg.Index.build(x[:2000], edges_per_vertex=10, progress=False)
    b = deg.Index.build(x, edges_per_vertex=10, progress=False)
    a.save(tmp_path / "a.src")
    b.save(tmp_path / "b.src")
    target = tmp_path / "live" / "t.deg"
    target.parent.mkdir()
    rng = np.random.default_rng(0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    leftovers = 0
    for _ in range(8):
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SAVER,
                str(tmp_path / "a.src"),
                str(tmp_path / "b.src"),
                str(target),
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert child.stdout.readline().strip() == b"ready"
            time.sleep(float(rng.uniform(0.0, 0.15)))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            child.stdout.close()
        loaded = deg.Index.load(target)
        assert len(loaded) in (2000, 3000)
        assert analysis.check(loaded, gq_sample=0)["ok"]
        leftovers += len(os.listdir(target.parent)) - 1
        a.save(target)
        assert os.listdir(target.parent) == ["t.deg"]
    # kills land inside a save ~60% of the time here (40 kills: 24): some must have, or this
    # test did not try what it says (8 kills all outside a save: ~0.07%)
    assert leftovers >= 1


def test_float_labels_at_2_63_are_refused():
    index = deg.Index(2)
    for bad in ([2.0**63], np.array([2.0**63], np.float32), [2**63]):
        with pytest.raises(ValueError, match="<= 9223372036854775807"):
            index.add(np.ones((1, 2)), labels=bad)
    with pytest.raises(TypeError, match="integers, got None"):
        index.add(np.ones((2, 2)), labels=[1, None])
    assert len(index) == 0


def test_weights_of_data_far_from_the_origin_are_checked(tmp_path):
    """L2 distances are sums of squares: their rounding is relative to the distance, not to
    the vectors' norms, so a weight off by 0.01% is refused wherever the data lies."""
    x = 1000 + np.random.default_rng(4).random((300, 16), dtype=np.float32)
    index = deg.Index.build(x, edges_per_vertex=8, progress=False)
    index.save(tmp_path / "f.deg")
    for factor in (5.0, 1.0001):
        _rewrite(tmp_path / "f.deg", tmp_path / "g.deg", weights=lambda w, f=factor: w.__imul__(f))
        with pytest.raises(ValueError, match="but its vectors are at distance"):
            deg.Index.load(tmp_path / "g.deg")
        assert len(deg.Index.load(tmp_path / "g.deg", verify=False, mmap=True)) == 300


def test_parameter_blocks_nested_too_deep_are_not_json():
    params, why = fileformat._parse_params(b"[" * 100_000 + b"]" * 100_000)
    assert params is None and "not JSON" in why


def test_files_with_a_negative_seed_load_as_before(saved, tmp_path):
    """Before seeds were bounded a seed of -1 was taken (and used modulo 2**64)."""
    _, src = saved
    _rewrite(src, tmp_path / "s.deg", params=_params(src, seed=-1))
    assert deg.Index.load(tmp_path / "s.deg").seed == 2**64 - 1


def test_pickle_of_read_only_arrays_loads(saved):
    """joblib passes large arrays of a pickle as read-only memory maps."""
    index, _ = saved
    fn, (metric, params, arrays) = index.__reduce__()
    for a in arrays.values():
        a.setflags(write=False)
    clone = fn(metric, params, arrays)
    assert np.array_equal(
        clone.search(index.get_vectors([4]), k=3)[0], index.search(index.get_vectors([4]), k=3)[0]
    )
