"""ANN-Benchmarks adapter for deg.

Inside ANN-Benchmarks this subclasses its ``BaseANN``; standalone (our tests) a minimal
stand-in with the same methods is used, so the adapter can be exercised without it.
"""

import numpy as np

try:
    from ..base.module import BaseANN  # inside ann_benchmarks/algorithms/deg/
except (ImportError, ValueError):
    class BaseANN:  # the parts of ANN-Benchmarks' base class this adapter relies on
        def done(self):
            pass

        def get_memory_usage(self):
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        def batch_query(self, X, n):
            self.res = [self.query(x, n) for x in X]

        def get_batch_results(self):
            return self.res

        def get_additional(self):
            return {}


class DEG(BaseANN):
    """Dynamic Exploration Graph; ``metric`` is ANN-Benchmarks' ("euclidean"/"angular")."""

    def __init__(self, metric, params):
        if metric not in ("euclidean", "angular"):
            raise NotImplementedError(f"deg does not support metric {metric}")
        self._metric = "l2" if metric == "euclidean" else "cosine"
        self._params = dict(params)
        self._eps = 0.1
        self._dist_comps = 0
        self._n_queries = 0

    def fit(self, X):
        import deg
        deg.warmup()  # compile (or load) the kernels outside the query timing
        self.index = deg.Index.build(np.asarray(X, dtype=np.float32), metric=self._metric,
                                     progress=False, **self._params)

    def set_query_arguments(self, eps):
        self._eps = float(eps)

    def query(self, v, n):
        labels, _, stats = self.index.search(v, k=n, eps=self._eps, threads=1,
                                             return_stats=True)
        self._count(stats)
        return labels[0]

    def batch_query(self, X, n):
        labels, _, stats = self.index.search(X, k=n, eps=self._eps, return_stats=True)
        self._count(stats)
        self.res = labels

    def get_batch_results(self):
        return self.res

    def get_additional(self):
        per_query = self._dist_comps / self._n_queries if self._n_queries else 0
        return {"dist_comps": per_query}

    def _count(self, stats):
        self._dist_comps += int(stats["distance_computations"].sum())
        self._n_queries += len(stats["distance_computations"])

    def __str__(self):
        inner = ",".join(f"{k}={v}" for k, v in sorted(self._params.items()))
        return f"DEG({inner},eps={self._eps})"
