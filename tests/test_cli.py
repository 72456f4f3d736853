"""``python -m deg``: info, build and search from the shell, with one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "deg", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    x = np.random.default_rng(0).random((1200, 8), dtype=np.float32)
    np.save(folder / "x.npy", x)
    out = run("build", folder / "x.npy", folder / "x.deg", "-d", "8", "--quiet")
    assert out.returncode == 0, out.stderr
    return folder, x, json.loads(out.stdout)


def test_build_then_info(built):
    folder, _, report = built
    assert report["n"] == 1200 and report["dim"] == 8 and report["metric"] == "l2"
    out = run("info", folder / "x.deg")
    info = json.loads(out.stdout)
    assert out.returncode == 0 and info["checks"]["ok"] and info["n"] == 1200
    assert info["edges_per_vertex"] == 8 and info["bytes"] == (folder / "x.deg").stat().st_size


def test_search_prints_or_saves_neighbours(built):
    folder, x, _ = built
    np.save(folder / "q.npy", x[:3])
    out = run("search", folder / "x.deg", folder / "q.npy", "-k", "2")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["labels"][0] for r in rows] == [0, 1, 2] and len(rows[0]["distances"]) == 2
    out = run("search", folder / "x.deg", folder / "q.npy", "-k", "4", "--out", folder / "r.npz")
    saved = np.load(folder / "r.npz")
    assert out.returncode == 0 and saved["labels"].shape == (3, 4)


@pytest.mark.parametrize(
    "args, message",
    [
        (("info", "missing.deg"), "No such file"),
        (("search", "{f}/x.deg", "{f}/x.npy", "-k", "0"), "k must be >= 1"),
        (("build", "{f}/x.txt", "{f}/y.deg"), "must be a .npy or .hdf5 file"),
        (("serve", "--dir", "{f}/service"), "holds no index: give its dimension (--dim)"),
    ],
)
def test_errors_are_one_line_and_exit_2(built, args, message):
    folder = built[0]
    out = run(*(a.format(f=folder) for a in args))
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.splitlines()) == 1


def test_padding_is_json_null_and_plain_hdf5_builds(built, tmp_path):
    import h5py

    _, x, _ = built
    np.save(tmp_path / "q.npy", x[:1])
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, x[:5])
    assert run("build", tiny, tmp_path / "t.deg", "-d", "4", "--quiet").returncode == 0
    out = run("search", tmp_path / "t.deg", tmp_path / "q.npy", "-k", "8")
    row = json.loads(out.stdout)  # strict JSON: no Infinity
    assert row["labels"][5:] == [-1, -1, -1] and row["distances"][5:] == [None] * 3
    with h5py.File(tmp_path / "plain.hdf5", "w") as f:  # a 'train' set and nothing else
        f["train"] = x[:300]
    out = run("build", tmp_path / "plain.hdf5", tmp_path / "p.deg", "-d", "8", "--quiet")
    assert out.returncode == 0 and json.loads(out.stdout)["n"] == 300
    out = run("info", tmp_path)  # a folder: one line, status 2
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
