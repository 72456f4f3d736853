"""Every kernel is loaded from numba's cache in a new process (no silent recompilation).

A kernel that cannot be cached (a closure over data, a function argument) or whose signature
changes between calls would compile again in every process; this catches it without timing.
"""

import json
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil
import deg
from deg import _kernels
deg.warmup()
misses = {}
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
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing():
    run_probe()  # fills the cache if it was cold (make test warms it first)
    assert run_probe() == {}
