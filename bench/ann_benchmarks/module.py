"""ANN-Benchmarks adapter for deg.

Copy this folder to ``ann_benchmarks/algorithms/deg/`` (see ``Dockerfile``). There the class
subclasses ANN-Benchmarks' ``BaseANN``; standalone (our tests) a minimal stand-in with the
methods ANN-Benchmarks calls is used instead, so the adapter runs without it.
"""

import numpy as np

import deg

# ANN-Benchmarks takes the memory grown over fit() as the index size: importing deg and
# compiling (or loading) its kernels there added ~190 MB of numba and LLVM to it. Done here,
# at import, fit() holds the index only.
deg.warmup()

try:
    from ann_benchmarks.algorithms.base.module import BaseANN
except ImportError:

    class BaseANN:
        """Stand-in for ANN-Benchmarks' base class: the methods its runner calls."""

        def done(self):
            pass

        def get_memory_usage(self):
            """Current resident memory in kB (ANN-Benchmarks' unit)."""
            import resource

            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * resource.getpagesize() / 1024

        def batch_query(self, X, n):
            self.res = [self.query(x, n) for x in X]

        def get_batch_results(self):
            return self.res

        def get_additional(self):
            return {}


class DEG(BaseANN):
    """Dynamic Exploration Graph, as ANN-Benchmarks instantiates it.

    Parameters
    ----------
    metric : {"euclidean", "angular"}
        ANN-Benchmarks' name of the dataset's metric.
    params : dict
        Build parameters for ``deg.Index.build`` (e.g. ``edges_per_vertex``).
    """

    def __init__(self, metric, params):
        if metric not in ("euclidean", "angular"):
            raise NotImplementedError(f"deg supports euclidean and angular, not {metric!r}")
        self._metric = "l2" if metric == "euclidean" else "cosine"
        self._params = dict(params)
        self._eps = 0.1
        self._dist_comps = 0
        self.index = None
        self.name = str(self)

    def fit(self, X):
        self.index = deg.Index.build(
            np.asarray(X, dtype=np.float32), metric=self._metric, progress=False, **self._params
        )

    def set_query_arguments(self, eps):
        self._eps = float(eps)
        # ANN-Benchmarks divides dist_comps by run_count * queries: count from the setting on
        self._dist_comps = 0
        self.name = str(self)

    def query(self, v, n):
        """Labels of the ``n`` nearest neighbours of one vector, on one thread."""
        labels, _, stats = self.index.search(v, k=n, eps=self._eps, threads=1, return_stats=True)
        self._dist_comps += int(stats["distance_computations"].sum())
        return labels[0]

    def batch_query(self, X, n):
        """All queries in one call, on all cores (ANN-Benchmarks' ``--batch`` mode)."""
        labels, _, stats = self.index.search(X, k=n, eps=self._eps, return_stats=True)
        self._dist_comps += int(stats["distance_computations"].sum())
        self.res = labels

    def get_batch_results(self):
        return self.res

    def get_additional(self):
        """Total distance computations since the last ``set_query_arguments``."""
        return {"dist_comps": self._dist_comps}

    def done(self):
        self.index = None

    def __str__(self):
        inner = ",".join(f"{k}={v}" for k, v in sorted(self._params.items()))
        return f"DEG({inner},eps={self._eps})"
