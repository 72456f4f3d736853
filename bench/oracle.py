"""``python -m bench.oracle``: fingerprints of everything deg computes, for changes that must
change nothing (a refactor): sha256 of saved files and of ``search``/``explore`` outputs with
their statistics, for each metric and insertion scheme on synthetic data, an add / remove /
optimize sequence, pruned searches, and a rotated 784-D index.

Builds are deterministic (any thread count), so two heads that compute the same bits print
the same lines; compare them with ``diff``. The figures hold on one machine only: another CPU
may round a few distances differently.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

import deg


def _data(n, dim, seed, latent=6):
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((latent, dim)).astype(np.float32)
    z = rng.random((n, latent), dtype=np.float32)
    return (z @ proj + 0.01 * rng.standard_normal((n, dim))).astype(np.float32)


def _digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _queries(out, name, index, q, folder):
    """The fingerprints of one index: its saved file, searches and explorations."""
    path = os.path.join(folder, "o.deg")
    index.save(path)
    with open(path, "rb") as f:
        out[f"{name} file"] = hashlib.sha256(f.read()).hexdigest()
    labels = index.labels
    entries = labels[:: max(1, len(labels) // 40)]
    for kind, kwargs in [
        ("search", {}),
        ("search eps0", {"eps": 0.0}),
        ("search m6", {"max_degree": 6, "eps": 0.2}),
        ("search budget", {"max_distance_computations": 60}),
        ("search k1", {"k": 1}),
        ("search t1", {"threads": 1}),
    ]:
        kw = dict({"k": 10}, **kwargs)
        a, b, s = index.search(q, return_stats=True, **kw)
        out[f"{name} {kind}"] = _digest(a, b, s["distance_computations"])
    for kind, kwargs in [
        ("explore", {}),
        ("explore entry", {"include_entry": True}),
        ("explore m6", {"max_degree": 6, "eps": 0.1}),
    ]:
        a, b, s = index.explore(entries, k=10, return_stats=True, **kwargs)
        out[f"{name} {kind}"] = _digest(a, b, s["distance_computations"])
    nb, w = index.neighbors(labels)
    out[f"{name} graph"] = _digest(nb, w, index.get_vectors(labels))


def fingerprints(quick=False):
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        x = _data(2400, 24, seed=1)
        q = _data(60, 24, seed=2)
        for metric in ("l2", "ip", "cosine"):
            for scheme in ("low-lid", "high-lid", "stream"):
                index = deg.Index.build(
                    x[:2000],
                    metric=metric,
                    edges_per_vertex=12,
                    scheme=scheme,
                    seed=3,
                    progress=False,
                )
                index.add(x[2000:2200])
                index.add(x[2200:], labels=np.arange(2200, 2400) * 7 + 100000)
                _queries(out, f"{metric} {scheme}", index, q, folder)
        index = deg.Index.build(
            x[:2000], edges_per_vertex=12, improve_tries=1, seed=5, progress=False
        )
        _queries(out, "improve_tries", index, q, folder)
        rng = np.random.default_rng(9)
        steps = [
            ("remove", 300),
            ("optimize", 400),
            ("add", 150),
            ("remove", 7),
            ("add", 3),
            ("optimize", 20),
            ("remove", 40),
            ("search m4", 0),
            ("add", 250),
        ]
        pool = x[2000:]
        for i, (op, count) in enumerate(steps):
            if op == "remove":
                index.remove(rng.choice(index.labels, size=count, replace=False))
            elif op == "add":
                index.add(pool[rng.choice(len(pool), size=count, replace=False)])
            elif op == "optimize":
                out[f"sequence {i} optimize"] = json.dumps(
                    index.optimize(tries=count), sort_keys=True
                )
            else:
                index.search(q, max_degree=4)
            _queries(out, f"sequence {i} {op}", index, q, folder)
        if not quick:
            big = _data(3000, 784, seed=4, latent=12)
            index = deg.Index.build(big, edges_per_vertex=16, seed=6, progress=False)
            assert index.rotated
            _queries(out, "rotated 784-D", index, _data(40, 784, seed=7, latent=12), folder)
            index.remove(np.arange(0, 3000, 11))
            _queries(out, "rotated 784-D removed", index, _data(40, 784, seed=7, latent=12), folder)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.oracle", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="leave out the 784-D index")
    args = p.parse_args(argv)
    for key, value in fingerprints(args.quick).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
