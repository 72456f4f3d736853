"""Every kernel is loaded from numba's cache in a new process (no silent recompilation).

A kernel that cannot be cached (a closure over data, a function argument) or whose signature
changes between calls would compile again in every process; this catches it without timing.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

PROBE = """
import importlib, json, pkgutil
import deg
from deg import _kernels, _warmup
misses = {"cold on import": 1} if _warmup._cold_cache() else {}
deg.warmup()
for info in pkgutil.iter_modules(_kernels.__path__):
    module = importlib.import_module("deg._kernels." + info.name)
    for name, obj in vars(module).items():
        stats = getattr(obj, "stats", None)
        if stats is not None and getattr(obj, "__module__", "") == module.__name__:
            if stats.cache_misses:
                misses[info.name + "." + name] = len(stats.cache_misses)
print(json.dumps(misses))
"""


def run_probe():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing():
    run_probe()  # fills the cache if it was cold (make test warms it first)
    assert run_probe() == {}


def test_warmup_helper_runs_its_share_against_this_deg():
    from deg import _warmup

    helper = _warmup._start_helper()  # the repair share, loading from the (warm) cache
    assert helper is not None and helper.wait(timeout=300) == 0


class _FakeHelper:
    def __init__(self, code):
        self.code, self.killed = code, False

    def wait(self, timeout=None):
        return self.code

    def kill(self):
        self.killed = True


@pytest.mark.parametrize(
    "cold, helper, shares",
    [
        (False, None, ["all"]),  # a warm cache: no second process
        (True, None, ["all"]),  # it could not start: everything here
        (True, _FakeHelper(0), ["insert", "all"]),  # this process's share, then all from cache
        (True, _FakeHelper(1), ["insert", "all"]),  # it failed: the last pass compiles the rest
    ],
)
def test_warmup_shares(monkeypatch, capsys, cold, helper, shares):
    from deg import _warmup

    ran = []
    monkeypatch.setattr(_warmup, "_cold_cache", lambda: cold)
    monkeypatch.setattr(_warmup, "_start_helper", lambda: helper)
    monkeypatch.setattr(_warmup, "_exercise", ran.append)
    monkeypatch.setattr(_warmup, "_warmed", False)
    _warmup.warmup(verbose=True)
    assert ran == shares
    if helper is not None:
        assert ("failed: 1" in capsys.readouterr().out) == (helper.code == 1)
    ran.clear()
    _warmup.warmup()  # a second call in the same process: everything is loaded already
    assert ran == ["all"]


def test_warmup_kills_its_helper_on_an_interrupt(monkeypatch):
    from deg import _warmup

    helper = _FakeHelper(0)

    def interrupted(share):
        raise KeyboardInterrupt

    monkeypatch.setattr(_warmup, "_cold_cache", lambda: True)
    monkeypatch.setattr(_warmup, "_start_helper", lambda: helper)
    monkeypatch.setattr(_warmup, "_exercise", interrupted)
    monkeypatch.setattr(_warmup, "_warmed", False)
    with pytest.raises(KeyboardInterrupt):
        _warmup.warmup()
    assert helper.killed


def test_no_helper_when_popen_fails(monkeypatch):
    from deg import _warmup

    def refuse(*args, **kwargs):
        raise OSError("no processes here")

    monkeypatch.setattr(_warmup.subprocess, "Popen", refuse)
    assert _warmup._start_helper() is None


def test_warmup_kills_a_helper_that_times_out(monkeypatch, capsys):
    from deg import _warmup

    helper = _FakeHelper(0)

    def hang(timeout=None):
        raise subprocess.TimeoutExpired("helper", timeout)

    helper.wait = hang
    monkeypatch.setattr(_warmup, "_cold_cache", lambda: True)
    monkeypatch.setattr(_warmup, "_start_helper", lambda: helper)
    monkeypatch.setattr(_warmup, "_exercise", lambda share: None)
    monkeypatch.setattr(_warmup, "_warmed", False)
    _warmup.warmup(verbose=True)
    assert helper.killed and "timed out" in capsys.readouterr().out


TYPE_PROBE = """
import importlib, json, pkgutil, sys
import numpy as np
import deg
from deg import _kernels
dtype = sys.argv[1]

def overloads():
    out = {}
    for info in pkgutil.iter_modules(_kernels.__path__):
        module = importlib.import_module("deg._kernels." + info.name)
        for name, obj in vars(module).items():
            if hasattr(obj, "overloads") and getattr(obj, "__module__", "") == module.__name__:
                out[info.name + "." + name] = len(obj.overloads)
    return out

deg.warmup(dtypes=(dtype,))
before = overloads()
rng = np.random.default_rng(0)
data = rng.integers(0, 50, (1500, 16)).astype(np.float32)
for quantize in (None, "rabitq", "sq8"):
    index = deg.Index(16, edges_per_vertex=8, dtype=dtype, quantize=quantize)
    index.add(data[:700])
    index.add(data[700:])
    index.search(data[:20], k=5)
    index.search(data[:20], k=5, max_degree=4, threads=1)
    index.explore([0, 1], k=5)
    index.optimize(tries=30)
    index.remove(index.labels[:40])
after = overloads()
print(json.dumps({k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}))
"""


@pytest.mark.parametrize("dtype", ["uint8", pytest.param("float16", marks=pytest.mark.slow)])
def test_warmup_of_a_type_leaves_nothing_to_compile_for_it(dtype):
    out = subprocess.run(
        [sys.executable, "-c", TYPE_PROBE, dtype], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


def test_warmup_refuses_a_type_it_does_not_know():
    import deg

    with pytest.raises(ValueError, match=r"each of dtypes must be one of 'float32'.*got 'float64'"):
        deg.warmup(dtypes=("float64",))
    with pytest.raises(ValueError, match=r"each of dtypes must be one of .*got 'float64'"):
        deg.warmup(dtypes=np.float64)  # a numpy type is named as Index(dtype=) names it
    deg.warmup(dtypes="float32")  # one type as a string, not its letters
