"""``deg.Index``: the Dynamic Exploration Graph behind a small Python API.

A facade: it validates input, takes the lock and delegates to the modules that do the work
(docs/algorithm.md): ``_params`` (the parameters), ``_storage`` (the per-vertex arrays and the
label map), ``_basis`` (the rotated basis), ``_entries`` (the entry tree), ``_view`` (the
search view), ``_construction``, ``_maintenance`` (removal and optimisation), ``_searching``,
``_calibration`` (recall targets) and ``_persistence``. Users only ever see their own int64
``labels``; the graph lives in flat arrays indexed by a dense internal id, worked on by the
numba kernels of ``deg._kernels``.
"""

from __future__ import annotations

import os
import threading
from typing import NamedTuple

import numpy as np

from deg import _basis as basis
from deg import _calibration as calibration
from deg import _construction as construction
from deg import _dtypes as dtypes
from deg import _edgecodes as edgecodes
from deg import _filtering as filtering
from deg import _persistence as persistence
from deg import _validation as check
from deg import fileformat
from deg._concurrency import ReadWriteLock, ScratchPool, Steps, resolve_threads
from deg._entries import EntryTree
from deg._kernels.state import SearchSpec
from deg._maintenance import Maintainer
from deg._params import Params
from deg._quantizer import Quantizer
from deg._searching import Searcher
from deg._storage import Storage
from deg._view import SearchView


class Internals(NamedTuple):
    """An index's parts, for ``deg.analysis``, ``bench`` and tests (not a stable API): the
    live objects, whose arrays may be read (and, by tests, broken) in place."""

    params: Params
    store: Storage
    tree: EntryTree
    basis: basis.Rotation
    view: SearchView
    rand_state: np.ndarray


def _unpickle(metric, params, arrays):
    # read-only arrays (joblib hands large ones over as read-only memory maps) are copied:
    # the kernels take writable arrays, and the index copies them anyway
    arrays = {k: v if v.flags.writeable else np.array(v) for k, v in arrays.items()}
    n = arrays["vectors"].shape[0]
    fileformat.check_arrays("pickled deg.Index", arrays, n, arrays["neighbors"].shape[1], metric)
    return Index._from_parts(metric, params, arrays, "pickled deg.Index", read_only=False)


class Index:
    """A Dynamic Exploration Graph: an even-regular, undirected, connected k-NN search graph.

    Parameters
    ----------
    dim : int
        Vector dimension.
    metric : {"l2", "ip", "cosine"}
        ``"l2"``: distances are **squared** Euclidean. ``"ip"``: ``1 - <a, b>``. ``"cosine"``:
        vectors are normalised on add and on query, then ``1 - <a, b>`` (as hnswlib/deglib),
        computed as half the squared Euclidean distance of the unit vectors (equal up to
        float32 rounding; summed like L2, so far vectors' distances are abandoned early).
    edges_per_vertex : int
        d, the degree of every vertex; even, >= 2. 30 is a good default up to ~1M vectors.
    extend_k : int or None
        Candidates searched per inserted vertex (k_ext); ``None`` means ``4 * d // 3`` (40 for
        d = 30; the reference uses 2d: on Fashion-MNIST and SIFT-small 4d/3 builds graphs as good
        about 15% faster, on uniform 32-D data it needs ~2% more distance computations). At
        least d candidates are always searched.
    extend_eps : float
        Search slack (eps_ext) of the candidate search during construction.
    scheme : {"low-lid", "high-lid", "stream"}
        Which neighbour of a candidate is cut off for the new vertex: ``"low-lid"`` (scheme D,
        least distortion; best for data of low intrinsic dimension), ``"high-lid"`` (scheme C,
        the candidate's longest edge; for high intrinsic dimension such as GloVe) or
        ``"stream"`` (distribution-agnostic, for data whose distribution shifts over time: the
        search starts at a random vertex, the new vertex links to d-1 candidates and the cut-off
        vertices are re-paired by the deletion repair).
    seed : int
        Seed for the randomised parts of the algorithm. Building is deterministic: the same
        data, parameters and seed give the same graph, whatever the thread count.
    improve_k : int or None
        Search size k_opt of the edge optimisation's swap-path searches (``None``: d).
    improve_eps : float
        Search slack eps_opt of those searches.
    max_path_length : int
        Longest swap path i_opt an improvement may use.
    improve_tries : int
        Random improvement tries per inserted vector during construction (0: none; the graph
        can still be optimised later with :meth:`optimize`).
    rotate : bool or None
        Store the vectors in a rotated basis whose first 64 axes are the data's leading
        principal directions (fitted once, when the index first holds 1000 vectors; queries
        are rotated too). Distances are unchanged up to float32 rounding, but a far vector's
        distance adds up within its first coordinates, so the search stops reading it early
        (Fashion-MNIST 784-D: +13-20% search QPS at recall 0.95 on the whole graph and at
        0.99, +23% exploration; see ``deg._basis``). Searches and explorations of a rotated
        index also drop a candidate whose first 64 coordinates alone reach 0.7 of the search
        bound, without reading the rest: a heuristic that trades like ``eps`` (Fashion-MNIST:
        +10-15% QPS at the same recall); construction stays exact. :meth:`get_vectors`
        rotates back, within float32 rounding (~1e-6 relative); ``False`` keeps the vectors
        bit for bit. ``None``: rotate ``"l2"`` and ``"cosine"`` float indices of dimension
        256 or more.
    dtype : {"float32", "float16", "uint8", "int8"}
        The type the vectors are kept in (numpy's dtypes are taken too); distances are
        computed in float32 whatever it is. ``"float16"`` halves the vectors' bytes and rounds
        each coordinate to half precision (lossy; |values| up to 65504). ``"uint8"`` and
        ``"int8"`` take a quarter of the bytes and hold integer data (SIFT-like) exactly: data
        and queries must be integers of the type's range, and neither ``metric="cosine"``
        nor ``rotate=True`` is possible (both need non-integer coordinates). See the README,
        "Compact vectors".
    quantize : {None, "sq8", "rabitq"}
        ``"sq8"``: searches walk the graph on one-byte codes of the vectors (a quarter of
        float32's bytes, kept beside the vectors) and re-rank their best ``rerank``
        candidates with exact distances. ``"rabitq"``: every vertex keeps a 1-bit code of
        each of its edges (D/8 bytes per edge, about the vector's bytes again per vertex at
        d=30 in float32); a search estimates each neighbour's distance from the codes and
        computes exact distances only for the vertices it expands (the SymphonyQG layout,
        docs/algorithm.md §3.8): fewer vector reads, for high-dimensional vectors (the
        estimates err by about 1/sqrt(dim)). The codes follow the graph; after an edit or a
        load the next search encodes the rows that changed. Both are fitted once the index
        holds 1000 vectors (smaller indices search exactly). ``"l2"`` and ``"cosine"`` only.
        Construction, removal, optimisation, :meth:`explore` and filtered searches stay
        exact. See the README, "Compact vectors".

    Notes
    -----
    Thread safety: ``search``, ``explore``, ``neighbors``, ``get_vectors`` and ``save`` may run
    concurrently from many Python threads, and beside ``add``, ``remove`` and ``optimize``:
    those run one at a time and change the index in short exclusive steps (about a quarter
    of a millisecond each: a few vertices wired, one label removed, a few improvement tries), so a
    search waits at most about one step for a write, never for a whole batch. A search
    between steps sees a whole graph holding every vertex wired so far: a vector being added
    may be found before ``add`` returns. ``threads > 1`` runs the serial kernels on a shared
    pool of Python threads (they release the GIL), so any number of such calls may run at once.
    """

    def __init__(
        self,
        dim: int,
        metric: str = "l2",
        edges_per_vertex: int = 30,
        extend_k: int | None = None,
        extend_eps: float = 0.1,
        scheme: str = "low-lid",
        seed: int = 0,
        improve_k: int | None = None,
        improve_eps: float = 0.001,
        max_path_length: int = 5,
        improve_tries: int = 0,
        rotate: bool | None = None,
        dtype: str = "float32",
        quantize: str | None = None,
    ):
        p = Params.make(
            dim,
            metric,
            edges_per_vertex,
            extend_k,
            extend_eps,
            scheme,
            seed,
            improve_k,
            improve_eps,
            max_path_length,
            improve_tries,
            rotate,
            dtype,
            quantize,
        )
        self._params = p
        self._store = Storage(
            p.dim,
            p.d,
            p.metric_code,
            p.dtype,
            coded=p.quantize == "sq8",
            edge_coded=p.quantize == edgecodes.KIND,
        )
        self._basis = basis.Rotation(p.dim)
        self._quant = Quantizer(p.quantize, p.dim, p.seed)
        self._tree = EntryTree(0)  # drawn below, for no vertices yet
        self._view = SearchView(self._quant.edges)
        self._lock = ReadWriteLock()
        self._writer = threading.Lock()  # one add, remove or optimize at a time
        self._steps = Steps(self._lock)  # ... which changes the index in short steps
        self._scratch = ScratchPool()
        self._searcher = Searcher(self._store, self._tree, self._basis, self._scratch, self._quant)
        self._maintainer = Maintainer(
            p, self._store, self._tree, self._basis, self._view, self._scratch, self._steps
        )
        self._builder = construction.Builder(
            p,
            self._store,
            self._tree,
            self._basis,
            self._view,
            self._searcher,
            self._maintainer,
            self._scratch,
            self._quant,
            self._steps,
        )
        self._builder.redraw_tree()
        self._calibrations = calibration.Calibrations()

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        data,
        labels=None,
        metric: str = "l2",
        edges_per_vertex: int = 30,
        progress: bool = True,
        threads: int | None = None,
        **params,
    ) -> Index:
        """Build an index over ``data`` (n, dim); ``params`` go to :class:`Index`.

        Examples
        --------
        >>> import numpy as np, deg
        >>> x = np.random.default_rng(0).random((1000, 16), dtype=np.float32)
        >>> index = deg.Index.build(x, edges_per_vertex=8, progress=False)
        >>> labels, dists = index.search(x[:2], k=3)
        >>> labels[:, 0].tolist()
        [0, 1]
        """
        arr = np.asarray(data)
        if arr.ndim != 2:
            raise ValueError(f"data must be 2-D (n, dim), got shape {arr.shape}")
        index = cls(arr.shape[1], metric=metric, edges_per_vertex=edges_per_vertex, **params)
        index.add(arr, labels=labels, progress=progress, threads=threads)
        return index

    def add(
        self, data, labels=None, progress: bool = False, threads: int | None = None
    ) -> np.ndarray:
        """Insert vectors; returns their labels (int64).

        Parameters
        ----------
        data : array_like, shape (m, dim) or (dim,)
        labels : array_like of int, shape (m,), optional
            Non-negative and unique, not yet in the index. Default: consecutive integers after
            the largest label ever added (0, 1, ... for a new index).
        progress : bool
            Show a tqdm progress bar.
        threads : int, optional
            Threads for the candidate searches (default: all cores). The graph does not depend
            on it.

        Every insertion keeps the graph even-regular, undirected and connected. Invalid input
        raises before anything changes; an interrupted add keeps the vectors inserted so far.
        """
        self._check_writable()
        store = self._store
        x = check.prepared(data, self._params.dim, self._params.metric, "data")
        dtypes.check_values(x, self._params.dtype, "data")
        m = x.shape[0]
        new_labels = None if labels is None else check.as_labels(labels, m)
        threads = resolve_threads(threads)
        with self._writer:
            if new_labels is None:  # after the largest so far: taken while no other add runs
                new_labels = store.default_labels(m)
            store.check_room(new_labels, labels is not None)
            before = store.n
            try:
                if m:
                    self._builder.insert(x, new_labels, progress, threads)
            finally:
                self._calibrations.count(store.n - before)
        return new_labels

    # ------------------------------------------------------------------ dynamics

    def remove(self, labels) -> None:
        """Remove vectors by label; the graph stays even-regular and connected (algorithm.md §6).

        Each removal reconnects the d former neighbours of the vertex with d/2 short edges,
        keeping every component linked, then optimises the new edges. Unknown labels raise
        ``KeyError`` and duplicates ``ValueError``, before anything changes. A removed label
        never comes back from search or explore and may be added again later.
        """
        self._check_writable()
        arr = check.lookup_labels(labels)
        repeat = check.first_repeat(arr)
        if repeat is not None:
            raise ValueError(f"labels to remove contain duplicates, e.g. {repeat}")
        with self._writer:
            self._store.vids(arr)  # raises KeyError for an unknown label, before any change
            before = self._store.n
            try:
                self._maintainer.remove(arr)
            finally:
                self._calibrations.count(before - self._store.n)

    def optimize(
        self, tries: int | None = None, seconds: float | None = None, progress: bool = False
    ) -> dict:
        """Continuous edge optimisation on demand (algorithm.md §7): replace long edges by shorter
        swap paths, keeping the graph even-regular and connected.

        Runs until ``tries`` random improvement tries are made or ``seconds`` have passed,
        whichever comes first (default: one try per vector). Returns a dict with ``tries``,
        ``improved`` (tries that changed the graph), ``aew_before`` and ``aew_after`` (average
        edge weight; it never increases).
        """
        self._check_writable()
        if tries is None and seconds is None:
            tries = len(self)
        tries = None if tries is None else check.check_int("tries", tries, minimum=0)
        seconds = None if seconds is None else check.check_float("seconds", seconds, minimum=0)
        with self._writer:
            return self._maintainer.optimize(tries, seconds, progress)

    # ------------------------------------------------------------------ queries

    def search(
        self,
        queries,
        k: int = 10,
        eps: float | None = None,
        threads: int | None = None,
        max_distance_computations: int = 0,
        return_stats: bool = False,
        max_degree: int | None = None,
        filter=None,
        exclude=None,
        rerank: int | None = None,
        recall: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, dict]:
        """Approximate k nearest neighbours of each query.

        Parameters
        ----------
        queries : array_like, shape (nq, dim) or (dim,)
        k : int
            Neighbours per query (>= 1). Rows are padded with label -1 and distance inf when
            the index holds fewer than k vectors.
        eps : float, optional
            Search slack (>= 0; default 0.1): the search stops once the closest open candidate
            is farther than (1 + eps) times the current k-th distance. Larger is slower and
            more exact.
        threads : int, optional
            Threads for a batch of queries (default: all cores). Results do not depend on it.
        max_distance_computations : int
            Budget per query (0 = unlimited).
        return_stats : bool
            Also return ``{"distance_computations": int64 (nq,)}`` (with ``recall``, also
            ``"setting"``: the ``eps``, ``max_degree`` and ``rerank`` searched and the recall
            the calibration expects of them).
        max_degree : int, optional
            Follow only the first ``max_degree`` edges of each vertex the search expands, in
            the order of the search view (1..d; default d, the whole graph). The view lists a
            vertex's diversified edges first (no kept neighbour is closer to the far end than
            the vertex itself, as in HNSW's neighbour selection), shortest first, then the
            rest. Fewer distance computations per hop: on large vectors that do not fit in the
            cache it is faster at equal recall with a larger eps (Fashion-MNIST, d=30: 16-20
            gave about 25% more QPS at recall 0.95 and 0.99); see the README.
        filter : array_like, deg.Filter or sequence, optional
            Only these labels may be returned: an array of labels, a boolean mask over labels
            (``filter[i]`` allows label ``i``), a :class:`deg.Filter`, or a sequence of those
            with one per query (a list or tuple of ``nq`` of them, None for a query left
            alone, or a 2-D array of ``nq`` rows). Labels not in the index are ignored; a
            query whose allowed set is empty gets a row of padding. Other vertices are still
            traversed, never returned. Each
            query is answered by the graph search or, when its allowed set is small against
            the index or the graph search would have to pass too many others to fill it, by
            an exact scan of the allowed vectors (see the README, "Filtered search").
        exclude : same kinds as ``filter``, optional
            These labels are never returned (with ``filter``: the allowed less these).
        rerank : int, optional
            A quantized index (``quantize``): how many of the least code distances the walk
            computed are ranked again with exact distances (default 2k; fewer than k count
            as k). The walk itself, its radius and stopping rule, are the plain search's.
            Ignored otherwise (``"rabitq"`` ranks every vertex it expands exactly).
            ``distance_computations`` counts the codes read and the exact re-ranks (with
            ``"rabitq"``: the estimates and the exact distances), and
            ``max_distance_computations`` bounds both together.
        recall : float, optional
            A recall@k target in (0, 1] instead of ``eps``, ``max_degree`` and ``rerank`` (give
            either): the search runs the setting that reached it at the least time in this
            index's calibration for ``k`` (see :meth:`calibrate`), which is made first, by the
            first such search, when there is none or the index has changed by its
            ``refresh`` share since (seconds; see the README, "Recall targets"). A target
            above every measured setting warns and runs the best one. Filters are applied to
            that setting as it is.

        Returns
        -------
        labels : int64 ndarray (nq, k)
        distances : float32 ndarray (nq, k), ascending
            Squared L2 for ``"l2"``; ``1 - <a, b>`` for ``"ip"`` and ``"cosine"``. Summed in
            the search kernel's own order: a value may differ from another computation of the
            same distance in its last bits (float32 rounding).
        """
        q = check.prepared(queries, self._params.dim, self._params.metric, "queries")
        if dtypes.is_integer(self._params.dtype):  # float16 queries may be any float32
            dtypes.check_values(q, self._params.dtype, "queries")
        setting = self._target("search", k, recall, eps=eps, max_degree=max_degree, rerank=rerank)
        if setting is not None:
            eps, max_degree, rerank = setting.eps, setting.max_degree, setting.rerank
        eps = 0.1 if eps is None else eps
        spec = SearchSpec(k, eps, None, False, True, False, max_distance_computations, max_degree)
        if rerank is not None:
            rerank = check.check_int("rerank", rerank, minimum=1, maximum=check.MAX_K)
        edges = self._quant.edges
        if max_degree is not None or edges is not None:
            self._view.ensure(self._lock, self._store, self._writer)
        if edges is not None and filter is None and exclude is None:
            edges.ensure(self._lock, self._store, self._writer)
        with self._lock.reading():
            found = self._query(
                q,
                np.zeros((1, 1), np.int32),
                spec,
                threads,
                filter,
                exclude,
                use_tree=True,
                rerank=rerank,
            )
        return _answer(found, return_stats, setting)

    def explore(
        self,
        entry_labels,
        k: int = 10,
        eps: float | None = None,
        include_entry: bool = False,
        threads: int | None = None,
        max_distance_computations: int = 0,
        return_stats: bool = False,
        max_degree: int | None = None,
        filter=None,
        exclude=None,
        recall: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, dict]:
        """Neighbourhood of stored vectors (indexed queries): "what is similar to item X?".

        The search starts at the vertex itself with its own vector as the query. With
        ``include_entry=False`` (default) the entry is never returned; other vertices with an
        identical vector are. ``entry_labels`` is one label or a 1-D array of labels; unknown
        labels raise ``KeyError``. ``filter`` and ``exclude`` as in :meth:`search` (one per
        entry for a sequence); the entry itself comes back only with ``include_entry`` and
        when the filter allows it. ``eps`` defaults to 0. ``recall`` as in :meth:`search`, from
        a calibration of explorations (of stored vectors, ``include_entry=False``). Other
        parameters and the return value as in :meth:`search`.
        """
        arr = check.lookup_labels(entry_labels, "entry_labels", flat=False)
        if recall is not None:  # unknown labels raise before a calibration is made for them
            with self._lock.reading():
                self._store.vids(arr)
        setting = self._target("explore", k, recall, eps=eps, max_degree=max_degree)
        if setting is not None:
            eps, max_degree = setting.eps, setting.max_degree
        eps = 0.0 if eps is None else eps
        spec = SearchSpec(
            k, eps, None, False, bool(include_entry), True, max_distance_computations, max_degree
        )
        if max_degree is not None:
            self._view.ensure(self._lock, self._store, self._writer)
        with self._lock.reading():
            vids = self._store.vids(arr)
            found = self._query(
                self._store.vectors[vids],
                vids.astype(np.int32).reshape(-1, 1),
                spec,
                threads,
                filter,
                exclude,
            )
        return _answer(found, return_stats, setting)

    def calibrate(
        self,
        queries=None,
        k: int = 10,
        method: str = "search",
        sample: int = calibration.SAMPLE,
        seed: int = 0,
        refresh: float = calibration.REFRESH,
    ) -> dict:
        """Measure recall@k and time per query along a sweep of search settings, kept for
        ``search(..., recall=)`` (or ``explore``, with ``method="explore"``) at this ``k``.

        The sweep: ``eps`` from 0 to 0.5 on each of seven ``max_degree`` curves (d down to 0.2
        d), with ``rerank`` 2k and 4k on a quantized index; exact neighbours by a brute-force
        scan; one thread. It runs on a copy of the index (one more index in memory while it
        runs; searches and writes go on). The sample: ``queries`` if given (``sample`` of them
        at random, kept in memory, not saved, for refreshes), else ``sample`` vectors (at most
        a tenth of the index) held out of the copy and searched as new queries; explorations
        start at ``sample`` stored vectors. The calibration is made again when vectors
        added and removed since reach ``refresh`` of its size; saved and loaded with the index.
        Returns it: ``method``, ``k``, ``source``, ``n``, ``refresh``, ``sample`` and
        ``points`` (one dict per setting: ``max_degree``, ``eps``, ``rerank``, ``recall``,
        ``distance_computations``, ``seconds`` per query).
        """
        method = check.check_choice("method", method, calibration.METHODS)
        k = check.check_int("k", k, minimum=1, maximum=check.MAX_K)
        sample = check.check_int("sample", sample, minimum=1, maximum=calibration.MAX_SAMPLE)
        seed = check.check_int("seed", seed, minimum=0, maximum=2**64 - 1)
        refresh = check.check_float("refresh", refresh, minimum=0.0)
        if queries is not None:
            if method == "explore":
                raise ValueError("explorations are calibrated on stored vectors: queries=None")
            queries = check.prepared(queries, self._params.dim, self._params.metric, "queries")
            if dtypes.is_integer(self._params.dtype):
                dtypes.check_values(queries, self._params.dtype, "queries")
            if not len(queries):
                raise ValueError("queries to calibrate on must not be empty")
        with self._calibrations.lock:
            table = self._calibrations.calibrate(self, method, k, queries, sample, seed, refresh)
        return table.summary()

    def _target(self, method, k, recall, **given):
        """The calibrated setting for a ``recall`` target (None without one)."""
        if recall is None:
            return None
        target = calibration.check_target(recall)
        named = [name for name, value in given.items() if value is not None]
        if named:
            raise ValueError(
                f"recall={recall!r} picks {', '.join(given)} itself; "
                f"got {', '.join(named)} too: give either"
            )
        k = check.check_int("k", k, minimum=1, maximum=check.MAX_K)
        return self._calibrations.setting(self, method, k, target)

    def _snapshot(self):
        """An in-memory copy of the index as it is (without calibrations), and the change
        count it was taken at."""
        self._view.ensure(self._lock, self._store, self._writer)
        with self._lock.reading():
            arrays = persistence.pickled_arrays(self._store, self._basis, self._tree)
            params = self._saved_params(calibrations=False)
            changed = self._calibrations.changed
        copy = Index._from_parts(self._params.metric, params, arrays, "a copy", read_only=False)
        return copy, changed

    def _query(
        self, queries, entries, spec, threads, allowed, exclude, use_tree=False, rerank=None
    ):
        """The searcher's answers for a batch (the caller holds the reading lock), planned
        part by part when per-query filters would take much memory at once
        (``filtering.batches``). Queries of a search (``use_tree``) are in the input basis."""
        if allowed is None and exclude is None:  # unfiltered: no planning on the hot path
            return self._searcher.query(
                queries, entries, spec, threads, use_tree=use_tree, rotate=use_tree, rerank=rerank
            )
        parts = []
        for lo, hi, a, e in filtering.batches(allowed, exclude, queries.shape[0], self._store):
            plan = filtering.plan(a, e, hi - lo, self._store)
            parts.append(
                self._searcher.query(
                    queries[lo:hi],
                    entries if entries.shape[0] == 1 else entries[lo:hi],
                    spec,
                    threads,
                    use_tree=use_tree,
                    rotate=use_tree,
                    plan=plan,
                )
            )
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))

    # ------------------------------------------------------------------ inspection

    def __len__(self) -> int:
        return self._store.n

    def __contains__(self, label) -> bool:
        """True for a label in the index; an integral float counts as that integer, anything
        else that is not an integer (a string, a bool, 1.5) is never in it."""
        key = check.label_key(label)
        return key is not None and self._store.vid_of.contains(key, self._store.labels)

    def __repr__(self) -> str:
        p = self._params
        return (
            f"deg.Index(dim={p.dim}, metric={p.metric!r}, edges_per_vertex={p.d}, "
            f"n={len(self)}{'' if p.dtype == 'float32' else f', dtype={p.dtype!r}'}"
            f"{', read-only' if self.read_only else ''})"
        )

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._params.dim

    @property
    def metric(self) -> str:
        """``"l2"``, ``"ip"`` or ``"cosine"``."""
        return self._params.metric

    @property
    def edges_per_vertex(self) -> int:
        """d, the degree of every vertex."""
        return self._params.d

    @property
    def extend_k(self) -> int:
        return self._params.extend_k

    @property
    def extend_eps(self) -> float:
        return self._params.extend_eps

    @property
    def scheme(self) -> str:
        return self._params.scheme

    @property
    def seed(self) -> int:
        return self._params.seed

    @property
    def improve_k(self) -> int:
        return self._params.improve_k

    @property
    def improve_eps(self) -> float:
        return self._params.improve_eps

    @property
    def max_path_length(self) -> int:
        return self._params.max_path_length

    @property
    def improve_tries(self) -> int:
        return self._params.improve_tries

    @property
    def rotate(self) -> bool | None:
        """The ``rotate`` setting (``None``: automatic); :attr:`rotated` says whether the
        basis is in use yet."""
        return self._params.rotate

    @property
    def rotated(self) -> bool:
        """True once the vectors are stored in the rotated basis (see ``rotate``)."""
        return self._basis.rotated

    @property
    def dtype(self) -> str:
        """The type the vectors are kept in: ``"float32"``, ``"float16"``, ``"uint8"`` or
        ``"int8"``."""
        return self._params.dtype

    @property
    def quantize(self) -> str | None:
        """The ``quantize`` setting: ``None``, ``"sq8"`` or ``"rabitq"``."""
        return self._params.quantize

    @property
    def read_only(self) -> bool:
        """True for an index loaded with ``mmap=True``."""
        return self._store.read_only

    @property
    def nbytes(self) -> int:
        """Bytes the index holds: the per-vertex arrays (vectors, neighbours, weights, labels,
        row hashes, codes; capacity included), the label map, the entry tree and the rotated
        basis."""
        return self._store.nbytes + self._tree.nbytes + self._basis.nbytes

    @property
    def labels(self) -> np.ndarray:
        """All labels, in internal order (a copy)."""
        return self._store.labels[: len(self)].copy()

    def get_vectors(self, labels) -> np.ndarray:
        """Stored vectors of ``labels`` (m, dim) in the index's ``dtype`` (``np.float16`` for
        ``"float16"``); cosine vectors are normalised. In a rotated index (``rotate``) they
        are rotated back, equal to the added ones within float32 rounding (float16: rounded
        again to half precision)."""
        store, dtype = self._store, self._params.dtype
        with self._lock.reading():
            vids = store.vids(labels)
            if not self._basis.rotated:
                return dtypes.exposed(store.vectors[vids], dtype)  # indexing copied them
            back = self._basis.back(store.floats(vids))
        return back if dtype == "float32" else back.astype(np.float16)

    def neighbors(self, labels) -> tuple[np.ndarray, np.ndarray]:
        """The graph itself: neighbour labels (m, d) int64 and edge weights (m, d) float32.

        Row i is ``labels[i]``'s; its neighbours come in the order of the search view (see
        ``search``'s ``max_degree``) once a search has used it or the index was saved, and
        may change order after any add, remove or optimize. While the index holds d vertices
        or fewer, empty slots show as label -1 with weight inf.
        """
        store = self._store
        with self._lock.reading():
            vids = store.vids(labels)
            nb = store.neighbors[vids]
            empty = nb == vids[:, None]
            out = np.where(empty, -1, store.labels[nb])
            w = np.where(empty, np.float32(np.inf), store.weights[vids])
        return out, w

    def internals(self) -> Internals:
        """The index's parts (``Internals``), for analysis, benchmarks and tests."""
        return Internals(
            self._params,
            self._store,
            self._tree,
            self._basis,
            self._view,
            self._maintainer.rand_state,
        )

    # ------------------------------------------------------------------ persistence

    def save(self, path) -> None:
        """Write the index to ``path`` atomically (see :mod:`deg.fileformat`)."""
        self._view.ensure(self._lock, self._store, self._writer)
        with self._lock.reading():
            store, n = self._store, len(self)
            fileformat.write(
                path,
                self._params.metric,
                self._saved_params(),
                store.vectors[:n],
                store.neighbors[:n],
                store.weights[:n],
                store.labels[:n],
                store.file_signatures(),
                self._basis.pair(),
                self._tree.arrays(),
            )

    @classmethod
    def load(cls, path, mmap: bool = False, verify: bool = True) -> Index:
        """Load an index saved by :meth:`save`.

        With ``mmap=True`` the arrays are memory-mapped (pages load on demand, several processes
        share them) and the index is read-only: search and explore work, ``add`` raises.
        Raises ``ValueError`` naming what is wrong for a file that is not a valid deg index:
        bad magic or version, truncated, checksum mismatch, parameters out of bounds, or a
        graph that is not one deg could have written (ids out of range, a vertex listed
        twice, a directed edge, a weight that is not the distance of its vectors, a vector
        that ``add`` would refuse, a disconnected graph).

        ``verify=False`` skips the checksum and the checks that read every vector (weights,
        norms, connectivity): Fashion-MNIST (60k x 784) loads in a quarter of the time (see the
        README). The checks that keep the kernels within their arrays (ids, repeats, edge
        symmetry, the entry tree) always run. Use it only for files this program wrote.
        """
        metric, params, arrays = fileformat.read(path, mmap=mmap, verify=verify)
        return cls._from_parts(metric, params, arrays, os.fspath(path), read_only=mmap)

    @classmethod
    def _from_parts(cls, metric, params, a, source, read_only) -> Index:
        """An index over validated arrays (from a file or a pickle); see :meth:`load`."""
        kwargs, saved = persistence.from_dict(params, a, metric, source)
        index = cls(**kwargs)
        index._maintainer.rand_state[0] = saved.rand_state
        persistence.restore(
            index._store,
            index._basis,
            index._tree,
            index._quant,
            index._params.seed,
            a,
            read_only,
            saved,
        )
        index._view.refresh(index._store)
        index._calibrations = calibration.Calibrations(saved.calibrations)
        return index

    def _saved_params(self, calibrations: bool = True) -> dict:
        out = persistence.to_dict(
            self._params, self._store, self._tree, self._maintainer.rand_state, self._quant
        )
        if calibrations and self._calibrations.tables:
            out["calibration"] = self._calibrations.to_json()
        return out

    def __reduce__(self):
        """Pickle support (multiprocessing, Ray): the same content and checks as save/load.

        An index loaded with ``mmap=True`` unpickles as an ordinary in-memory copy.
        """
        self._view.ensure(self._lock, self._store, self._writer)
        with self._lock.reading():
            arrays = persistence.pickled_arrays(self._store, self._basis, self._tree)
            return _unpickle, (self._params.metric, self._saved_params(), arrays)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ValueError(
                "this index was loaded with mmap=True and is read-only; "
                "load it with mmap=False to modify it"
            )


def _answer(found, return_stats, setting=None):
    labels, dists, n_dc = found
    if not return_stats:
        return labels, dists
    stats = {"distance_computations": n_dc}
    if setting is not None:
        stats["setting"] = setting._asdict()
    return labels, dists, stats
