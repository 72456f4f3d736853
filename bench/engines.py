"""One adapter per engine, all with the same small surface (ANN-Benchmarks' BaseANN shape).

``fit(x)`` builds with ``threads`` threads; ``set_threads(n)`` sets the query threads;
``set_query_arguments(p)`` selects a point of ``sweep``; ``query(q, k)`` answers a batch and
``explore(entries, k)`` answers indexed queries (neighbours of stored vectors, themselves
excluded); ``last_dist_comps`` is the mean distance computations per query of the last call,
where the engine reports it. Angular data is normalised here for the peers that need inner
product on unit vectors; deg normalises by itself (metric "cosine").
"""

import importlib.util
import os

import numpy as np

DEG_EPS = [0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3]
HNSW_EF = [10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256]
NND_EPS = [0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3]


def unit(x):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms == 0, 1, norms), dtype=np.float32)


class Engine:
    name = "?"
    package = None
    sweep = []
    param_name = "?"

    def __init__(self, metric, threads, **params):
        self.metric = metric  # "euclidean" | "angular"
        self.build_threads = threads
        self.params = params
        self.threads = threads
        self.last_dist_comps = None
        self.x = None

    @classmethod
    def available(cls):
        return cls.package is None or importlib.util.find_spec(cls.package) is not None

    def prepare(self, x):
        """Peers that need unit vectors for angular data get them here."""
        return unit(x) if self.metric == "angular" else np.ascontiguousarray(x, np.float32)

    def set_threads(self, n):
        self.threads = n

    def explore(self, entries, k):
        """Default: query with the stored vector, k+1 results, drop the vertex itself."""
        ids = self.query(self.x[entries], k + 1)
        out = np.empty((len(entries), k), dtype=np.int64)
        for r, e in enumerate(entries):
            row = ids[r][ids[r] != e]
            out[r] = row[:k] if len(row) >= k else np.pad(row, (0, k - len(row)),
                                                             constant_values=-1)
        return out

    def __str__(self):
        inner = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({inner})"


class Deg(Engine):
    """Sweeps (eps, max_degree): the whole graph, then the view of each vertex's 24 shortest
    edges (``Index.search(max_degree=...)``), which is faster at equal recall on some data."""

    name = "deg"
    sweep = [(e, None) for e in DEG_EPS] + [(e, 24) for e in DEG_EPS[2:]]
    param_name = "eps,max_degree"

    def fit(self, x):
        import deg
        self.x = x
        self.index = deg.Index.build(x, metric="l2" if self.metric == "euclidean" else "cosine",
                                     progress=False, threads=self.build_threads, **self.params)

    def set_query_arguments(self, value):
        self.eps, self.max_degree = value

    def query(self, q, k):
        labels, _, stats = self.index.search(q, k=k, eps=self.eps, threads=self.threads,
                                             max_degree=self.max_degree, return_stats=True)
        self.last_dist_comps = float(stats["distance_computations"].mean())
        return labels

    def explore(self, entries, k):
        labels, _, stats = self.index.explore(entries, k=k, eps=self.eps, threads=self.threads,
                                              max_degree=self.max_degree, return_stats=True)
        self.last_dist_comps = float(stats["distance_computations"].mean())
        return labels

    def memory_bytes(self):
        return self.index.nbytes


class FaissHNSW(Engine):
    name = "faiss-hnsw"
    package = "faiss"
    sweep = HNSW_EF
    param_name = "ef"

    def fit(self, x):
        import faiss
        self.faiss = faiss
        self.x = self.prepare(x)
        kind = faiss.METRIC_L2 if self.metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        self.index = faiss.IndexHNSWFlat(x.shape[1], self.params.get("M", 15), kind)
        self.index.hnsw.efConstruction = self.params.get("efConstruction", 200)
        faiss.omp_set_num_threads(self.build_threads)
        self.index.add(self.x)

    def set_query_arguments(self, ef):
        self.index.hnsw.efSearch = ef

    def query(self, q, k):
        self.faiss.omp_set_num_threads(self.threads)
        q = self.prepare(q)
        stats = self.faiss.cvar.hnsw_stats
        stats.reset()
        _, ids = self.index.search(q, k)
        self.last_dist_comps = stats.ndis / len(q)
        return ids

    def memory_bytes(self):
        return int(self.faiss.serialize_index(self.index).nbytes)


class HnswLib(Engine):
    name = "hnswlib"
    package = "hnswlib"
    sweep = HNSW_EF
    param_name = "ef"

    def fit(self, x):
        import hnswlib
        self.x = self.prepare(x)
        self.index = hnswlib.Index(space="l2" if self.metric == "euclidean" else "ip",
                                   dim=x.shape[1])
        self.index.init_index(max_elements=len(x), M=self.params.get("M", 15),
                              ef_construction=self.params.get("efConstruction", 200),
                              random_seed=100)
        self.index.add_items(self.x, np.arange(len(x)), num_threads=self.build_threads)

    def set_query_arguments(self, ef):
        self.index.set_ef(ef)

    def query(self, q, k):
        ids, _ = self.index.knn_query(self.prepare(q), k=k, num_threads=self.threads)
        return ids.astype(np.int64)

    def memory_bytes(self):
        return int(self.index.index_file_size())


class DegLib(Engine):
    name = "deglib"
    package = "deglib"
    sweep = DEG_EPS
    param_name = "eps"

    def fit(self, x):
        import deglib
        self.x = self.prepare(x)
        metric = deglib.Metric.FP32_L2 if self.metric == "euclidean" else \
            deglib.Metric.FP32_InnerProduct
        self.graph = deglib.builder.build_from_data(
            self.x, edges_per_vertex=self.params.get("edges_per_vertex", 30), metric=metric,
            thread_count=self.build_threads)
        self.d = self.graph.get_edges_per_vertex()

    def set_query_arguments(self, eps):
        self.eps = eps

    def query(self, q, k):
        ids, _ = self.graph.search(self.prepare(q), eps=self.eps, k=k, threads=self.threads)
        return ids.astype(np.int64)

    def explore(self, entries, k):
        ids, _ = self.graph.explore(np.asarray(entries), k, eps=self.eps, include_entry=False,
                                    threads=self.threads)
        return ids.astype(np.int64)

    def memory_bytes(self):
        # deglib's record: vector, d neighbour ids and weights, label (no API for the size)
        return len(self.x) * (4 * self.x.shape[1] + 8 * self.d + 4)


class PyNNDescent(Engine):
    name = "pynndescent"
    package = "pynndescent"
    sweep = NND_EPS
    param_name = "epsilon"

    def fit(self, x):
        import numba
        import pynndescent
        self.numba = numba
        self.x = np.ascontiguousarray(x, np.float32)
        metric = "euclidean" if self.metric == "euclidean" else "cosine"
        old = numba.get_num_threads()
        numba.set_num_threads(self.build_threads)
        try:
            self.index = pynndescent.NNDescent(
                self.x, metric=metric, n_neighbors=self.params.get("n_neighbors", 30),
                n_jobs=self.build_threads, random_state=0, low_memory=True)
            self.index.prepare()
        finally:
            numba.set_num_threads(old)

    def set_query_arguments(self, epsilon):
        self.epsilon = epsilon

    def query(self, q, k):
        old = self.numba.get_num_threads()
        self.numba.set_num_threads(self.threads)
        try:
            ids, _ = self.index.query(np.ascontiguousarray(q, np.float32), k=k,
                                      epsilon=self.epsilon)
        finally:
            self.numba.set_num_threads(old)
        return ids.astype(np.int64)

    def memory_bytes(self):
        graph = self.index._search_graph
        return int(self.x.nbytes + graph.data.nbytes + graph.indices.nbytes
                   + graph.indptr.nbytes)


ENGINES = {e.name: e for e in (Deg, FaissHNSW, HnswLib, DegLib, PyNNDescent)}
DEFAULT_PARAMS = {
    "deg": {"edges_per_vertex": 30},
    "faiss-hnsw": {"M": 15, "efConstruction": 200},
    "hnswlib": {"M": 15, "efConstruction": 200},
    "deglib": {"edges_per_vertex": 30},
    "pynndescent": {"n_neighbors": 30},
}


def cpu_count():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
