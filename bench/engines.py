"""One adapter per engine, all with the same small surface (ANN-Benchmarks' BaseANN shape).

``warmup(x, q, k)`` compiles what a JIT engine compiles on first use, so no timing below
includes it; ``fit(x)`` builds with ``threads`` threads; ``set_threads(n)`` sets the query
threads; ``set_query_arguments(p)`` selects one point of ``sweep``; ``query(q, k)`` answers a
batch of test queries and ``explore(entries, k)`` answers indexed queries (neighbours of stored
vectors, themselves excluded); ``last_dist_comps`` is the mean number of distance computations
per query of the last call, where the engine reports it (else None).

Angular data is L2-normalised here for the peers, which then use inner product on unit
vectors; deg normalises by itself (metric "cosine"). Every peer's global thread setting is put
back after each call, so engines cannot leak thread counts into each other's timings.
"""

import importlib.util
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DEG_EPS = [0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3, 0.4]
HNSW_EF = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
NND_EPS = [0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35]


def cpu_vendor() -> str | None:
    """The CPU's vendor string (``vendor_id`` in /proc/cpuinfo: GenuineIntel, AuthenticAMD,
    ...); None where that is not known."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_count():
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def unit(x):
    """Rows scaled to unit L2 norm (zero rows stay zero), float32 C-contiguous."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms == 0, 1, norms), dtype=np.float32)


class Engine:
    """Base adapter.

    Parameters
    ----------
    metric : {"euclidean", "angular"}
        The dataset's metric.
    threads : int
        Build threads, and the query threads until :meth:`set_threads`.
    **params
        Build parameters, recorded verbatim in the results.
    """

    name = "?"
    package = None  # module to import; None: always available
    distribution = None  # pip name, for the version in the results
    sweep = ()
    param_name = "?"
    memory_source = "?"  # how memory_bytes() is obtained, recorded next to it

    def __init__(self, metric, threads, **params):
        self.metric = metric
        self.build_threads = threads
        self.threads = threads
        self.params = params
        self.last_dist_comps = None
        self.x = None
        self.extra = {}  # per-build facts worth recording (e.g. a separate prepare time)

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this engine cannot run on this machine (None: it can)."""
        if cls.package is not None and importlib.util.find_spec(cls.package) is None:
            return f"package {cls.package!r} is not installed"
        return None

    @classmethod
    def available(cls) -> bool:
        return cls.unavailable() is None

    def prepare(self, x):
        """The vectors as this engine indexes them: unit rows for angular data."""
        return unit(x) if self.metric == "angular" else np.ascontiguousarray(x, np.float32)

    def warmup(self, x, q, k):
        """Compile on-first-use code outside the timings; returns seconds (0: nothing to do)."""
        return 0.0

    def set_threads(self, n):
        self.threads = n

    def explore(self, entries, k):
        """Query with each stored vector, ask for k+1 and drop the vertex itself."""
        ids = self.query(self.x[entries], k + 1)
        out = np.full((len(entries), k), -1, dtype=np.int64)
        for r, e in enumerate(entries):
            row = ids[r][ids[r] != e][:k]  # if the vertex itself was missed: first k
            out[r, : len(row)] = row
        return out

    def __str__(self):
        inner = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({inner})"


class Deg(Engine):
    """deg; sweeps (eps, max_degree): the whole graph, then the first 20, 16 and 12 edges of
    each vertex's search view (``Index.search(max_degree=...)``), faster at equal recall where
    distances miss the cache, and at low recall everywhere (SIFT-small angular at 0.95: 16
    needs ~142 distance computations, 12 ~155, the whole graph ~215)."""

    name = "deg"
    distribution = "dynamic-exploration-graph"
    sweep = [(e, None) for e in DEG_EPS] + [(e, m) for m in (20, 16, 12) for e in DEG_EPS]
    param_name = "eps,max_degree"
    memory_source = "Index.nbytes"

    def warmup(self, x, q, k):
        import deg

        # the kernels of a storage type other than float32 compile on its first use:
        # outside the build's timing too
        return deg.warmup(dtypes=(self.params.get("dtype", "float32"),))

    def fit(self, x):
        import deg

        self.x = x
        self.index = deg.Index.build(
            x,
            metric="l2" if self.metric == "euclidean" else "cosine",
            progress=False,
            threads=self.build_threads,
            **self.params,
        )

    def set_query_arguments(self, value):
        self.eps, self.max_degree = value

    def query(self, q, k):
        labels, _, stats = self.index.search(
            q,
            k=k,
            eps=self.eps,
            threads=self.threads,
            max_degree=self.max_degree,
            return_stats=True,
        )
        self.last_dist_comps = float(stats["distance_computations"].mean())
        return labels

    def explore(self, entries, k):
        labels, _, stats = self.index.explore(
            entries,
            k=k,
            eps=self.eps,
            threads=self.threads,
            max_degree=self.max_degree,
            return_stats=True,
        )
        self.last_dist_comps = float(stats["distance_computations"].mean())
        return labels

    def memory_bytes(self):
        return self.index.nbytes

    def prepare_filter(self, allowed, n):
        import deg

        return deg.Filter(self.index, allowed)

    def query_filtered(self, q, k, prepared):
        labels, _, stats = self.index.search(
            q, k=k, eps=self.eps, threads=self.threads, filter=prepared, return_stats=True
        )
        self.last_dist_comps = float(stats["distance_computations"].mean())
        return labels


class DegFloat16(Deg):
    """deg keeping its vectors as float16 (``Index(dtype="float16")``): half the bytes."""

    name = "deg-f16"


class DegUint8(Deg):
    """deg keeping its vectors as uint8 (``Index(dtype="uint8")``): a quarter of the bytes,
    exact for integer data such as Fashion-MNIST's pixels and SIFT's; a set of other values
    (or an angular one, which is normalised) cannot be built and is skipped."""

    name = "deg-u8"


class DegSQ8(Deg):
    """deg walking on one-byte codes and re-ranking exactly (``Index(quantize="sq8")``);
    the vectors stay float32 beside the codes."""

    name = "deg-sq8"


class DegFloat16SQ8(Deg):
    """deg with float16 vectors and one-byte codes: the least memory of deg's settings that
    every set can take."""

    name = "deg-f16-sq8"


class DegRaBitQ(Deg):
    """deg walking on 1-bit edge codes, exact distances for the vertices it expands
    (``Index(quantize="rabitq")``, the SymphonyQG layout over the DEG graph). Its sweep also
    takes ``max_degree`` 24 (the same three groups of eight codes as 20, four more edges) and
    8 (one group), which the plain walk does not gain from."""

    name = "deg-rabitq"
    sweep = [(e, None) for e in DEG_EPS] + [(e, m) for m in (24, 20, 16, 12, 8) for e in DEG_EPS]


class DegFloat16RaBitQ(DegRaBitQ):
    """deg's edge codes over float16 vectors."""

    name = "deg-f16-rabitq"


class DegUint8RaBitQ(DegRaBitQ):
    """deg's edge codes over uint8 vectors (integer sets only, as deg-u8)."""

    name = "deg-u8-rabitq"


class FaissHNSW(Engine):
    """faiss ``IndexHNSWFlat``; sweeps ``efSearch``. Distance computations come from
    ``faiss.cvar.hnsw_stats``."""

    name = "faiss-hnsw"
    package = "faiss"
    distribution = "faiss-cpu"
    sweep = HNSW_EF
    param_name = "ef"
    memory_source = "serialized size"

    def _omp(self, n, call):
        old = self.faiss.omp_get_max_threads()
        self.faiss.omp_set_num_threads(n)
        try:
            return call()
        finally:
            self.faiss.omp_set_num_threads(old)

    def fit(self, x):
        import faiss

        self.faiss = faiss
        self.x = self.prepare(x)
        kind = faiss.METRIC_L2 if self.metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        self.index = faiss.IndexHNSWFlat(x.shape[1], self.params["M"], kind)
        self.index.hnsw.efConstruction = self.params["efConstruction"]
        self._omp(self.build_threads, lambda: self.index.add(self.x))

    def set_query_arguments(self, ef):
        self.index.hnsw.efSearch = ef

    def query(self, q, k):
        q = self.prepare(q)
        stats = self.faiss.cvar.hnsw_stats
        stats.reset()
        _, ids = self._omp(self.threads, lambda: self.index.search(q, k))
        self.last_dist_comps = stats.ndis / len(q)
        return ids

    def memory_bytes(self):
        return int(self.faiss.serialize_index(self.index).nbytes)

    def prepare_filter(self, allowed, n):
        mask = np.zeros(n, bool)
        mask[allowed] = True
        bitmap = np.packbits(mask, bitorder="little")  # IDSelectorBitmap: bit i of byte i/8
        return bitmap, self.faiss.IDSelectorBitmap(n, self.faiss.swig_ptr(bitmap))

    def query_filtered(self, q, k, prepared):
        params = self.faiss.SearchParametersHNSW(sel=prepared[1], efSearch=self.index.hnsw.efSearch)
        stats = self.faiss.cvar.hnsw_stats
        stats.reset()
        _, ids = self._omp(
            self.threads, lambda: self.index.search(self.prepare(q), k, params=params)
        )
        self.last_dist_comps = stats.ndis / len(q)
        return ids


class HnswLib(Engine):
    """hnswlib; sweeps ``ef``. It does not report distance computations."""

    name = "hnswlib"
    package = "hnswlib"
    distribution = "hnswlib"
    sweep = HNSW_EF
    param_name = "ef"
    memory_source = "index_file_size()"

    def fit(self, x):
        import hnswlib

        self.x = self.prepare(x)
        self.index = hnswlib.Index(
            space="l2" if self.metric == "euclidean" else "ip", dim=x.shape[1]
        )
        self.index.init_index(
            max_elements=len(x),
            M=self.params["M"],
            ef_construction=self.params["efConstruction"],
            random_seed=100,
        )
        self.index.add_items(self.x, np.arange(len(x)), num_threads=self.build_threads)

    def set_query_arguments(self, ef):
        self.index.set_ef(ef)

    def query(self, q, k):
        # the per-call num_threads leaves the index's own default untouched
        ids, _ = self.index.knn_query(self.prepare(q), k=k, num_threads=self.threads)
        return ids.astype(np.int64)

    def memory_bytes(self):
        return int(self.index.index_file_size())

    def prepare_filter(self, allowed, n):
        mask = np.zeros(n, bool)
        mask[allowed] = True
        return mask.__getitem__  # hnswlib calls it with each label it meets

    def query_filtered(self, q, k, prepared):
        # a Python filter holds the GIL: hnswlib runs it on one thread; it raises when it
        # finds fewer than k, so ask row by row and pad
        q = self.prepare(q)
        out = np.full((len(q), k), -1, np.int64)
        for i in range(len(q)):
            try:
                ids, _ = self.index.knn_query(q[i : i + 1], k=k, num_threads=1, filter=prepared)
            except RuntimeError:
                continue
            out[i] = ids[0]
        return out


class DegLib(Engine):
    """deglib (the C++ reference DEG) through ``build_from_data`` (LowLID); sweeps eps."""

    name = "deglib"
    package = "deglib"
    distribution = "deglib"
    sweep = DEG_EPS
    param_name = "eps"
    memory_source = "record layout n*(4*dim + 8*d + 4)"

    def fit(self, x):
        import deglib

        self.x = self.prepare(x)
        metric = (
            deglib.Metric.FP32_L2 if self.metric == "euclidean" else deglib.Metric.FP32_InnerProduct
        )
        self.graph = deglib.builder.build_from_data(
            self.x, metric=metric, thread_count=self.build_threads, **self.params
        )
        self.d = self.graph.get_edges_per_vertex()

    def set_query_arguments(self, eps):
        self.eps = eps

    def query(self, q, k):
        ids, _ = self.graph.search(self.prepare(q), eps=self.eps, k=k, threads=self.threads)
        return ids.astype(np.int64)

    def explore(self, entries, k):
        ids, _ = self.graph.explore(
            np.asarray(entries), k, eps=self.eps, include_entry=False, threads=self.threads
        )
        return ids.astype(np.int64)

    def prepare_filter(self, allowed, n):
        from deglib.search import Filter

        return Filter(np.asarray(allowed, np.int32), max_label_count=n)

    def query_filtered(self, q, k, prepared):
        ids, _ = self.graph.search(
            self.prepare(q), eps=self.eps, k=k, threads=self.threads, filter_labels=prepared
        )
        ids = ids.astype(np.int64)
        ids[ids >= len(self.x)] = -1  # deglib pads with uint32's maximum
        return ids

    def memory_bytes(self):
        # deglib has no size API; its vertex record is the vector, d neighbour ids (u32) and
        # weights (f32) and the label (u32)
        return len(self.x) * (4 * self.x.shape[1] + 8 * self.d + 4)


class PyNNDescent(Engine):
    """pynndescent, the numba-based peer; sweeps ``epsilon``.

    Its search function is compiled per index inside ``prepare()``, which is part of its
    build (as in ANN-Benchmarks) and is also recorded on its own as ``prepare_s``.
    """

    name = "pynndescent"
    package = "pynndescent"
    distribution = "pynndescent"
    sweep = NND_EPS
    param_name = "epsilon"
    memory_source = "data + search graph arrays"

    def _numba(self, n, call):
        import numba

        old = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            return call()
        finally:
            numba.set_num_threads(old)

    def _build(self, x):
        import pynndescent

        return pynndescent.NNDescent(
            x,
            metric="euclidean" if self.metric == "euclidean" else "cosine",
            n_jobs=self.build_threads,
            random_state=0,
            low_memory=True,
            # the query kernel runs queries in parallel only when built with this flag
            parallel_batch_queries=True,
            **self.params,
        )

    def warmup(self, x, q, k):
        # numba compiles pynndescent's build kernels on first use: do it on a small sample
        start = time.perf_counter()
        small = self._numba(
            self.build_threads, lambda: self._build(np.ascontiguousarray(x[:2000], np.float32))
        )
        small.prepare()
        small.query(np.ascontiguousarray(q[:5], np.float32), k=k, epsilon=self.sweep[0])
        return time.perf_counter() - start

    def fit(self, x):
        self.x = np.ascontiguousarray(x, np.float32)
        self.index = self._numba(self.build_threads, lambda: self._build(self.x))
        start = time.perf_counter()
        self._numba(self.build_threads, self.index.prepare)
        self.extra["prepare_s"] = time.perf_counter() - start

    def set_query_arguments(self, epsilon):
        self.epsilon = epsilon

    def query(self, q, k):
        q = np.ascontiguousarray(q, np.float32)
        ids, _ = self._numba(self.threads, lambda: self.index.query(q, k=k, epsilon=self.epsilon))
        return ids.astype(np.int64)

    def memory_bytes(self):
        graph = self.index._search_graph
        return int(self.x.nbytes + graph.data.nbytes + graph.indices.nbytes + graph.indptr.nbytes)


QG_EF = [10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 100, 150, 200, 300, 400, 600, 800]
SVS_WINDOW = [10, 15, 20, 25, 30, 40, 50, 64, 80, 100, 128, 160, 200, 256, 320, 400]


def _tree_bytes(path):
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class SymphonyQG(Engine):
    """SymphonyQG (rabitqlib's ``SymqgIndex``, SIGMOD'25): every vertex stores RaBitQ codes of
    its neighbours, scored in batches (FastScan), visited vertices re-ranked exactly; sweeps
    ``ef``. Built as its authors' reproduction scripts do (gouyt13/SymphonyQG
    ``reproduce/settings.py``: ef_construction 400; degree 32, the smallest they use and the
    nearest to deg's 30; a multiple of 32 is required), queries one batch on one thread; the
    ef sweep of their ``reproduce/utils/beam_size.py``."""

    name = "symphonyqg"
    package = "rabitqlib"
    distribution = "rabitqlib"
    sweep = QG_EF
    param_name = "ef"
    memory_source = "saved file size"

    def fit(self, x):
        from rabitqlib import SymqgIndex

        self.x = self.prepare(x)
        metric = "l2" if self.metric == "euclidean" else "ip"
        self.index = SymqgIndex(x.shape[1], self.params["max_degree"], metric=metric)
        self.index.build(self.x, self.params["ef_construction"], num_threads=self.build_threads)

    def set_query_arguments(self, ef):
        self.ef = ef

    def query(self, q, k):
        ids, _ = self.index.search_batch(
            self.prepare(q), k, max(self.ef, k), num_threads=self.threads
        )
        return ids.astype(np.int64)

    def memory_bytes(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "symqg.index")
            self.index.save(path)
            return _tree_bytes(path)


class SVSVamana(Engine):
    """Intel SVS Vamana (``scalable-vs``), float32 vectors; sweeps ``search_window_size``.
    Built with Intel's benchmark settings (IntelLabs/ScalableVectorSearchBenchmarking
    ``src/svsbench/build.py``/``consts.py``: graph_max_degree 64, window 200, candidate pool
    750, prune_to R-4, alpha 1.2 for L2 and 0.95 for inner product)."""

    name = "svs"
    package = "svs"
    distribution = "scalable-vs"
    sweep = SVS_WINDOW
    param_name = "window"
    memory_source = "saved config + graph + data size"

    def build_params(self):
        import svs

        r = self.params["graph_max_degree"]
        return svs.VamanaBuildParameters(
            graph_max_degree=r,
            window_size=self.params["window_size"],
            max_candidate_pool_size=self.params["max_candidate_pool_size"],
            prune_to=r - 4,
            alpha=1.2 if self.metric == "euclidean" else 0.95,
        )

    def data(self, x):
        return self.x

    def fit(self, x):
        import svs

        self.x = self.prepare(x)
        kind = svs.DistanceType.L2 if self.metric == "euclidean" else svs.DistanceType.MIP
        self.index = svs.Vamana.build(
            self.build_params(), self.data(x), kind, num_threads=self.build_threads
        )

    def set_query_arguments(self, window):
        self.index.search_window_size = window

    def query(self, q, k):
        self.index.search_window_size = max(self.index.search_window_size, k)
        self.index.num_threads = self.threads
        ids, _ = self.index.search(self.prepare(q), k)
        return ids.astype(np.int64)

    def memory_bytes(self):
        with tempfile.TemporaryDirectory() as folder:
            parts = [os.path.join(folder, p) for p in ("config", "graph", "data")]
            self.index.save(*parts)
            return sum(_tree_bytes(p) for p in parts)


class SVSLVQ(SVSVamana):
    """SVS Vamana over LVQ-4x8 vectors (4-bit primary codes traversed, 8-bit residuals for
    re-ranking; Turbo layout, padding 32), Intel's choice for high-dimensional data (SVS docs
    ``howtos.rst``; settings as ``SVSVamana``). LVQ loads from a file: the vectors are written
    to a temporary .fvecs first (not timed apart; part of the build)."""

    name = "svs-lvq4x8"

    @classmethod
    def unavailable(cls) -> str | None:
        # scalable-vs ends the whole process (exit status 1, no exception) when LVQ data is
        # loaded on another vendor's CPU: "LVQ and Leanvec functionality of SVS is not
        # supported on non-Intel hardware"
        vendor = cpu_vendor()
        if vendor not in ("GenuineIntel", None):
            return f"scalable-vs runs LVQ on Intel CPUs only, this one is {vendor}"
        return super().unavailable()

    def data(self, x):
        import svs

        from deg.datasets import write_fvecs

        self._folder = tempfile.TemporaryDirectory()
        path = os.path.join(self._folder.name, "train.fvecs")
        write_fvecs(path, self.x)
        loader = svs.VectorDataLoader(path, svs.DataType.float32, dims=self.x.shape[1])
        return svs.LVQLoader(
            loader, primary=4, residual=8, padding=32, strategy=svs.LVQStrategy.Turbo
        )


class FaissHNSWSQ(FaissHNSW):
    """faiss ``IndexHNSWSQ`` with 8-bit scalar quantization (``QT_8bit``, trained on the
    data), the same graph settings as ``faiss-hnsw``; sweeps ``efSearch``."""

    name = "faiss-hnswsq"

    def fit(self, x):
        import faiss

        self.faiss = faiss
        self.x = self.prepare(x)
        kind = faiss.METRIC_L2 if self.metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        self.index = faiss.IndexHNSWSQ(
            x.shape[1], faiss.ScalarQuantizer.QT_8bit, self.params["M"], kind
        )
        self.index.hnsw.efConstruction = self.params["efConstruction"]
        self._omp(self.build_threads, lambda: (self.index.train(self.x), self.index.add(self.x)))


class USearchF16(Engine):
    """usearch with half-precision vectors (``dtype="f16"``; its ``i8`` is for cosine-type
    metrics only); connectivity and expansion as hnswlib's here; sweeps ``expansion_search``."""

    name = "usearch-f16"
    package = "usearch"
    distribution = "usearch"
    sweep = HNSW_EF
    param_name = "ef"
    memory_source = "Index.memory_usage"

    def fit(self, x):
        from usearch.index import Index

        self.x = self.prepare(x)
        self.index = Index(
            ndim=x.shape[1],
            metric="l2sq" if self.metric == "euclidean" else "ip",
            dtype="f16",
            connectivity=self.params["connectivity"],
            expansion_add=self.params["expansion_add"],
        )
        self.index.add(np.arange(len(x)), self.x, threads=self.build_threads)

    def set_query_arguments(self, ef):
        self.index.expansion_search = ef

    def query(self, q, k):
        found = self.index.search(self.prepare(q), k, threads=self.threads)
        return found.keys.astype(np.int64).reshape(len(q), k)

    def memory_bytes(self):
        return int(self.index.memory_usage)


ENGINES = {
    e.name: e
    for e in (
        Deg,
        DegFloat16,
        DegUint8,
        DegSQ8,
        DegFloat16SQ8,
        DegRaBitQ,
        DegFloat16RaBitQ,
        DegUint8RaBitQ,
        FaissHNSW,
        HnswLib,
        DegLib,
        PyNNDescent,
        SymphonyQG,
        SVSVamana,
        SVSLVQ,
        FaissHNSWSQ,
        USearchF16,
    )
}
# comparable degree: HNSW's base layer has 2*M = 30 links, the DEG graphs 30 edges per vertex
DEFAULT_PARAMS = {
    "deg": {"edges_per_vertex": 30},
    "deg-f16": {"edges_per_vertex": 30, "dtype": "float16"},
    "deg-u8": {"edges_per_vertex": 30, "dtype": "uint8"},
    "deg-sq8": {"edges_per_vertex": 30, "quantize": "sq8"},
    "deg-f16-sq8": {"edges_per_vertex": 30, "dtype": "float16", "quantize": "sq8"},
    "deg-rabitq": {"edges_per_vertex": 30, "quantize": "rabitq"},
    "deg-f16-rabitq": {"edges_per_vertex": 30, "dtype": "float16", "quantize": "rabitq"},
    "deg-u8-rabitq": {"edges_per_vertex": 30, "dtype": "uint8", "quantize": "rabitq"},
    "faiss-hnsw": {"M": 15, "efConstruction": 200},
    "hnswlib": {"M": 15, "efConstruction": 200},
    "deglib": {"edges_per_vertex": 30},
    "pynndescent": {"n_neighbors": 30},
    "symphonyqg": {"max_degree": 32, "ef_construction": 400},
    "svs": {"graph_max_degree": 64, "window_size": 200, "max_candidate_pool_size": 750},
    "svs-lvq4x8": {"graph_max_degree": 64, "window_size": 200, "max_candidate_pool_size": 750},
    "faiss-hnswsq": {"M": 15, "efConstruction": 200},
    "usearch-f16": {"connectivity": 15, "expansion_add": 200},
}
