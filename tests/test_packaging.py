"""The distribution: a wheel and an sdist that build, pass ``twine check`` and import as a
package of their own (nothing is downloaded: the build uses this environment's setuptools)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def test_wheel_and_sdist_pass_twine_check(dist):
    files = sorted(p.name for p in dist.iterdir())
    assert [f.split("-")[0] for f in files] == ["dynamic_exploration_graph"] * 2, files
    assert any(f.endswith(".whl") for f in files) and any(f.endswith(".tar.gz") for f in files)
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0 and check.stdout.count("PASSED") == 2, check.stdout


def test_wheel_holds_the_library_its_licence_and_types_only(dist):
    wheel = next(dist.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "deg/py.typed" in names and "deg/_kernels/search.py" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "bench/")) or n.endswith(".nbi")]
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Name: dynamic-exploration-graph" in meta and "Requires-Dist: h5py" in meta
    assert 'extra == "datasets"' in meta.split("Requires-Dist: h5py", 1)[1].split("\n")[0]


def test_installed_wheel_builds_and_searches(dist, tmp_path):
    """The wheel, installed on its own (its dependencies are this environment's), from a
    folder where the source tree is not importable."""
    wheel = next(dist.glob("*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    smoke = (
        "import deg, numpy as np\n"
        f"assert deg.__file__.startswith({str(target)!r}), deg.__file__\n"
        "x = np.random.default_rng(0).random((300, 8), dtype=np.float32)\n"
        "index = deg.Index.build(x, edges_per_vertex=8, progress=False)\n"
        "assert index.search(x[:3], k=1)[0].ravel().tolist() == [0, 1, 2]\n"
        "print('ok')\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", smoke],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.stdout.strip() == "ok", run.stderr[-2000:]
