"""``deg.Index``: the Dynamic Exploration Graph behind a small Python API.

The graph lives in flat arrays indexed by a dense internal id (``vid``); users only ever see
their own int64 ``labels``. All graph work happens in the numba kernels of ``deg._kernels``;
this module validates input, owns the arrays, and maps labels in and out.
"""

import contextlib
import functools
import os

import numba
import numpy as np

from deg import _aligned as aligned
from deg import _basis as basis
from deg import _entries as entries_tree
from deg import _pipeline, fileformat
from deg import _validation as check
from deg._concurrency import ReadWriteLock, ScratchPool
from deg._kernels import build as kbuild
from deg._kernels import labels as klabels
from deg._kernels import optimize as kopt
from deg._kernels import remove as kremove
from deg._kernels import rotation as krot
from deg._kernels import search as ksearch
from deg._kernels import view as kview
from deg._kernels.distances import CHUNK, COS, FIRST_CHUNK, IP, L2, edge_distances
from deg._kernels.entry_tree import ENTRIES
from deg._labelmap import LabelMap

_METRIC_CODE = {"l2": L2, "ip": IP, "cosine": COS}
_SCHEME_CODE = {
    "low-lid": kbuild.SCHEME_D,
    "high-lid": kbuild.SCHEME_C,
    "stream": kbuild.SCHEME_STREAM,
}
_MAX_BUILD_BATCH = 256  # vertices whose candidate searches run together (DEG_SPEC 16.6)
# batches at least this large search their candidates beside the previous batch's wiring
_OVERLAP_MIN = 32
# candidate searches per claim (~2 ms on Fashion-MNIST): small, so that the threads finish a
# batch together
_BUILD_CHUNK = 4
_VIEW_PARTS = 16  # row ranges of a view refresh, handed out to threads as they free up
_PROGRESS_MIN = 20_000  # adds at least this large show a progress bar when asked
_SERIAL_BELOW = 4  # queries per thread below which one thread is faster than a launch
# The threads of a batch claim its queries in chunks as they go (search.search_shared): each
# thread makes at least _CLAIMS claims, of at most _MAX_CHUNK queries, so that they finish
# within a few queries of each other. SIFT-small, 100 queries on 2 threads (chunk 12): 1.92x
# one thread's speed, against 1.88x with 6, 1.87x with 3 and 1.80x with 1 (the tree descent is
# done a chunk at a time, and a chunk's output rows share cache lines with the next one's).
_CLAIMS = 4
_MAX_CHUNK = 16
# Queries and explorations of a rotated index reject a candidate once its first distance chunk
# (the 64 leading directions) alone passes this fraction of the search bound: on Fashion-MNIST
# those directions hold 88% of the variance, so such a row is almost surely past the bound, and
# its remaining 90% of bytes are not read. FM, 2000 queries, alternating A/B: 0.7 gives
# +10-15% QPS at the same recall (0.951 at m=20 eps 0.02: 20.3-22.1k -> 22.9-23.2k), 0.6
# more speed for -0.01 recall at each eps (+11-14% at equal recall), 0.8 +0-5%. Re-measured
# against 0.7 on the final search code: 0.6 +2-5% at recall 0.95-0.99 but -8% at 0.996, and
# 0.6 + eps -7-10% at 0.998, so 0.7 keeps the high-recall end (bench/RESULTS.md).
_LEAD = 0.7
# distances each construction search keeps for the wiring to reuse (choose_cut): a search
# for 2d candidates computes a few hundred to a thousand or so
_EXTEND_LOG = 4096
_OPTIMIZE_CHUNK = 500  # improvement tries per kernel call (between time/progress checks)
_BUILD_TREE = os.environ.get("DEG_BUILD_TREE", "1") == "1"  # construction enters by the tree
# the entry tree's arrays (deg._kernels.entry_tree) and their types, as files and pickles hold them
_TREE = {"members": np.int32, "pairs": np.int32, "planes": np.float32, "offsets": np.float32}


# construction parameters kept in files and pickles (attribute "_" + name on Index)
_PARAMS = (
    "extend_k",
    "extend_eps",
    "scheme",
    "seed",
    "improve_k",
    "improve_eps",
    "max_path_length",
    "improve_tries",
    "rotate",
)


def _unpickle(metric, params, arrays):
    n = arrays["vectors"].shape[0]
    fileformat.check_arrays("pickled deg.Index", arrays, n, arrays["neighbors"].shape[1], metric)
    return Index._from_parts(metric, params, arrays, "pickled deg.Index", read_only=False)


def _build_batch(n):
    """How many vertices to insert together when the graph holds ``n``.

    Batch-mates cannot see each other during their candidate search, so the batch stays a small
    fraction (1/32) of the graph; it depends on n only, never on the thread count, so the same
    seed and data give the same graph on any machine.
    """
    return max(1, min(_MAX_BUILD_BATCH, n // 32))


def _wired_rows(neighbors, lo, hi):
    """The rows that wiring vertices ``lo..hi-1`` may have changed: theirs and their
    neighbours'. A wiring step (v, candidate c, cut neighbour n) edits only the rows of v, c and
    n, and leaves c and n adjacent to v; a later step removes such an edge only to replace it by
    one to its own new vertex. So every edited row ends adjacent to a vertex of the batch."""
    return np.unique(np.concatenate([np.arange(lo, hi), neighbors[lo:hi].ravel()]))


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
        bit for bit. ``None``: rotate ``"l2"`` and ``"cosine"`` indices of dimension 256 or
        more.

    Notes
    -----
    Thread safety: ``search``, ``explore``, ``neighbors``, ``get_vectors`` and ``save`` may run
    concurrently from many Python threads; ``add`` waits until they finish and blocks them while
    it runs. ``threads > 1`` runs the serial kernels on a shared pool of Python threads (they
    release the GIL), so any number of such calls may run at once.
    """

    def __init__(
        self,
        dim,
        metric="l2",
        edges_per_vertex=30,
        extend_k=None,
        extend_eps=0.1,
        scheme="low-lid",
        seed=0,
        improve_k=None,
        improve_eps=0.001,
        max_path_length=5,
        improve_tries=0,
        rotate=None,
    ):
        self._dim = check.check_int("dim", dim, minimum=1, maximum=check.MAX_DIM)
        self._metric = check.check_choice("metric", metric, check.METRICS)
        self._d = check.check_edges_per_vertex(edges_per_vertex)
        if extend_k is None:
            extend_k = 4 * self._d // 3
        self._extend_k = check.check_int(
            "extend_k", extend_k, minimum=1, maximum=check.MAX_EXTEND_K
        )
        self._extend_eps = check.check_float(
            "extend_eps", extend_eps, minimum=0.0, maximum=check.MAX_EPS
        )
        self._scheme = check.check_choice("scheme", scheme, check.SCHEMES)
        self._seed = check.check_int("seed", seed, minimum=0, maximum=check.MAX_SEED)
        if improve_k is None:
            improve_k = self._d
        self._improve_k = check.check_int(
            "improve_k", improve_k, minimum=0, maximum=check.MAX_IMPROVE_K
        )
        self._improve_eps = check.check_float(
            "improve_eps", improve_eps, minimum=0.0, maximum=check.MAX_EPS
        )
        self._max_path_length = check.check_int(
            "max_path_length", max_path_length, minimum=0, maximum=check.MAX_PATH_LENGTH
        )
        self._improve_tries = check.check_int(
            "improve_tries", improve_tries, minimum=0, maximum=check.MAX_IMPROVE_TRIES
        )
        if rotate is not None and not isinstance(rotate, (bool, np.bool_)):
            raise TypeError(f"rotate must be True, False or None, got {rotate!r}")
        self._rotate = None if rotate is None else bool(rotate)
        # the stored basis (deg._basis); no rows: the input basis
        self._yt = np.zeros((0, self._dim), dtype=np.float32)
        self._tt = np.zeros((0, 0), dtype=np.float32)
        # splitmix64 stream for the random improvement tries; saved with the index
        self._rand_state = np.array([self._seed & (2**64 - 1)], dtype=np.uint64)
        self._n = 0
        self._next_label = 0
        self._epoch = 1  # the next vector generation (deg._kernels.view); 0 is a loaded one's
        self._read_only = False
        self._vid_of = LabelMap()
        self._allocate(0)
        self._view_stale = False
        self._refresh_entries()
        self._lock = ReadWriteLock()
        self._scratch = ScratchPool()

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        data,
        labels=None,
        metric="l2",
        edges_per_vertex=30,
        progress=True,
        threads=None,
        **params,
    ):
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

    def add(self, data, labels=None, progress=False, threads=None):
        """Insert vectors; returns their labels (int64).

        Parameters
        ----------
        data : array_like, shape (m, dim) or (dim,)
        labels : array_like of int, shape (m,), optional
            Non-negative and unique, not yet in the index. Default: consecutive integers after
            the largest label ever added (0, 1, ... for a new index).
        progress : bool
            Show a tqdm progress bar for adds of 20 000 vectors or more.
        threads : int, optional
            Threads for the candidate searches (default: all cores). The graph does not depend
            on it.

        Every insertion keeps the graph even-regular, undirected and connected. Invalid input
        raises before anything changes; an interrupted add keeps the vectors inserted so far.
        """
        self._check_writable()
        x = check.as_vectors(data, self._dim, "data", self._metric != "cosine")
        if self._metric == "cosine":
            x = check.normalize_rows(x, "data")
        m = x.shape[0]
        if labels is None:
            if self._next_label + m - 1 > check.MAX_LABEL:
                raise ValueError(
                    f"default labels would pass {check.MAX_LABEL} (they continue "
                    f"after the largest label added, {self._next_label - 1}); "
                    f"pass labels explicitly"
                )
            new_labels = np.arange(self._next_label, self._next_label + m, dtype=np.int64)
        else:
            new_labels = check.as_labels(labels, m)
        threads = self._resolve_threads(threads)
        with self._lock.writing():
            if labels is not None:  # default labels start above every label ever added
                clash = self._vid_of.first_present(new_labels, self._labels)
                if clash is not None:
                    raise ValueError(f"label {clash} is already in the index")
            if self._n + m > check.MAX_VERTICES:
                raise ValueError(
                    f"an index holds at most {check.MAX_VERTICES} vectors; it holds "
                    f"{self._n}, and {m} more came"
                )
            if m:
                self._fit_basis(x)
                self._insert(x, new_labels, progress and m >= _PROGRESS_MIN, threads)
        return new_labels

    def _fit_basis(self, x):
        """Adopt the rotated basis (``deg._basis``) when this add first brings the index to
        ``basis.MIN_VECTORS``: fitted on the stored vectors and ``x`` together; the stored
        ones are rotated and their edge weights recomputed (the same graph, the distances
        rounded in the new basis), then the entry tree and the search view are renewed."""
        n = self._n
        if (
            self._yt.shape[0]
            or n + x.shape[0] < basis.MIN_VECTORS
            or not basis.wanted(self._rotate, self._metric, self._dim)
        ):
            return
        rows = basis.sample_rows(n + x.shape[0])
        sample = np.concatenate([self._vectors[rows[rows < n]], x[rows[rows >= n] - n]])
        yt, tt = basis.fit(sample)
        if not n:
            self._yt, self._tt = yt, tt
            return
        rotated = np.empty((n, self._dim), dtype=np.float32)
        krot.rotate_rows(self._vectors[:n], yt, tt, rotated)
        # empty slots (self-loops) keep weight 0, which is what edge_distances gives them
        weights = edge_distances(rotated, self._neighbors[:n], _METRIC_CODE[self._metric], n)
        # the switch: vectors, weights and basis together (nothing that can fail in between)
        self._vectors[:n], self._weights[:n], self._yt, self._tt = rotated, weights, yt, tt
        self._sig[:n] = kview.EMPTY_SIG  # every view row is computed again
        self._refresh_entries(min(self._entries_drawn_at, n))  # removals may have shrunk n
        self._view_changed(n)

    def _insert(self, x, new_labels, progress, threads):
        start = self._n
        end = start + x.shape[0]
        self._reserve(end)
        if self._yt.shape[0]:
            krot.rotate_rows(x, self._yt, self._tt, self._vectors[start:end])
            # a guard: rows within as_vectors' norm bound cannot overflow here
            finite = np.isfinite(self._vectors[start:end]).all(axis=1)
            if not finite.all():  # rows beyond n: nothing is inserted yet
                row = int(np.flatnonzero(~finite)[0])
                raise ValueError(
                    f"data row {row} overflows float32 when rotated into the index's "
                    f"basis (norm {np.linalg.norm(x[row].astype(np.float64)):.3g}); "
                    f"use rotate=False for vectors this large"
                )
        else:
            self._vectors[start:end] = x
        self._labels[start:end] = new_labels
        self._gen[start:end] = self._next_generation()
        kbuild.reset_rows(self._neighbors, self._weights, start, end)
        self._sig[start:end] = kview.EMPTY_SIG
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=end - start, desc="deg add", unit="vec")
        code = _METRIC_CODE[self._metric]
        try:
            v = start
            while v < end and v <= self._d:  # bootstrap: the first d+1 form a complete graph
                kbuild.bootstrap(self._vectors, self._neighbors, self._weights, code, v)
                self._commit(v, v + 1)
                if bar is not None:
                    bar.update(1)
                v += 1
            if v < end and self._scheme == "stream":
                self._extend_stream(v, end, threads, bar)
            elif v < end:
                self._extend(v, end, threads, bar)
        finally:
            # a large add, or a graph grown by half: the entry tree for the new size
            if 8 * (end - start) >= self._n or entries_tree.stale(self._n, self._entries_drawn_at):
                self._refresh_entries()
            self._view_changed(end - start, threads)
            if bar is not None:
                bar.close()

    def _refresh_entries(self, drawn_at=None):
        """Draw the search's entry tree over vertices ``0..drawn_at-1`` (default: all). In a
        rotated index it splits on the first distance chunk, which holds most of each
        distance; otherwise on the first ``CHUNK`` coordinates at most."""
        drawn_at = self._n if drawn_at is None else drawn_at
        width = FIRST_CHUNK if self._yt.shape[0] and self._dim > CHUNK else min(self._dim, CHUNK)
        self._entries_drawn_at = drawn_at
        self._members, self._pairs, self._planes, self._offsets = entries_tree.draw(
            self._vectors, drawn_at, self._seed, width
        )

    def _tree(self):
        """The entry tree's arrays, in the order of ``_TREE``: the kernels', the file's."""
        return self._members, self._pairs, self._planes, self._offsets

    def _renumber_entries(self, removed, n_before):
        """After removals (``removed``: the ids, in order): redraw the entry tree when the graph
        shrank by half, else keep it with its members renumbered (``_entries.renumber``): a
        small remove should not pay a pass over all vectors."""
        if entries_tree.stale(self._n, self._entries_drawn_at):
            self._refresh_entries()
        elif len(removed) and self._members.size:
            self._members = entries_tree.renumber(self._members, removed, n_before)
            if not self._members.size:
                self._refresh_entries()

    def _view_changed(self, amount, threads=None):
        """After a mutation of ``amount`` vertices (or tries): bring the search view up to
        date now when that was a large share of the graph, else on its first use (a small
        add or remove should not pay a pass over all rows; see ``_ensure_view``)."""
        self._view_stale = True
        if 8 * amount >= self._n:
            self._refresh_view(threads)

    def _ensure_view(self):
        """Refresh a stale search view before it is read (search or explore with
        max_degree < d, save, pickle, checks). Takes the write lock: call without a lock."""
        if self._view_stale:
            with self._lock.writing():
                if self._view_stale:
                    self._refresh_view()

    def _refresh_view(self, threads=None):
        """Put the rows of every vertex whose edges changed back in search-view order (see
        ``deg._kernels.view``). The caller holds the write lock."""
        self._view_stale = False
        n = self._n
        threads = self._resolve_threads(threads) if n >= _VIEW_PARTS * 64 else 1
        bounds = [n * c // _VIEW_PARTS for c in range(_VIEW_PARTS + 1)]

        def part(t, c):
            kview.refresh_view(
                self._vectors,
                self._neighbors,
                self._weights,
                _METRIC_CODE[self._metric],
                bounds[c],
                bounds[c + 1],
                self._sig,
                self._gen,
            )

        _pipeline.overlap(None, part, _VIEW_PARTS, threads)

    def _batches(self, start, end):
        """The insertion batches of ``start..end-1`` (sizes depend on the graph size only)."""
        out = []
        while start < end:
            stop = min(end, start + _build_batch(start))
            out.append((start, stop))
            start = stop
        return out

    def _extend(self, start, end, threads, bar):
        """Insert ``start..end-1`` batch by batch: candidate search, then wiring (LowLID or
        HighLID).

        Pipelined: while batch b is wired (one thread, it changes the graph), the candidates of
        batch b+1 are searched on a copy of the graph as it was before batch b (the other
        threads, joined by the wiring one when it is done). Batch b+1 therefore does not see
        batch b: it may only connect to older vertices, which is what batch-mates already
        accept among themselves. The copy (``shadow``) is brought up to date after each
        wiring by copying the rows it changed. Batches below ``_OVERLAP_MIN`` vertices (small
        graphs, small adds) are searched after the previous wiring, on the current graph.
        """
        batches = self._batches(start, end)
        shadow = np.empty_like(self._neighbors[:end])
        shadow[:start] = self._neighbors[:start]
        found = self._candidates(*batches[0], shadow, start, threads)
        for b, (lo, hi) in enumerate(batches):
            wire = functools.partial(self._wire, lo, hi, found)
            following = batches[b + 1] if b + 1 < len(batches) else None
            if following and following[1] - following[0] >= _OVERLAP_MIN:
                found = self._candidates(*following, shadow, lo, threads, wire)
            else:
                wire()
            self._commit(lo, hi)
            if self._improve_tries:  # the optimisation may touch any row
                self._improve((hi - lo) * self._improve_tries)
                shadow[:hi] = self._neighbors[:hi]
            else:
                rows = _wired_rows(self._neighbors, lo, hi)
                shadow[rows] = self._neighbors[rows]
            if following and following[1] - following[0] < _OVERLAP_MIN:
                found = self._candidates(*following, shadow, hi, threads)
            if bar is not None:
                bar.update(hi - lo)

    def _candidates(self, lo, hi, graph, visible, threads, first=None):
        """Candidate searches for vertices ``lo..hi-1`` over the neighbour rows ``graph``, in
        which vertices ``0..visible-1`` are wired; ``first`` (the previous batch's wiring) runs
        on the calling thread before it joins the searches. Returns ``(cand_i, cand_d, log)``
        as ``_run_search`` does."""
        if _BUILD_TREE and visible >= 2 * self._entries_drawn_at:  # a fresh tree as n grows
            self._refresh_entries(visible)
        cand_i, cand_d, _, log = self._run_search(
            self._vectors[lo:hi],
            np.zeros((1, 1), dtype=np.int32),
            max(self._extend_k, self._d),
            self._extend_eps,
            True,
            0,
            threads,
            tree=_BUILD_TREE,
            log_capacity=_EXTEND_LOG,
            graph=graph,
            first=first,
            chunk=_BUILD_CHUNK,
        )
        return cand_i, cand_d, log

    def _wire(self, lo, hi, found):
        """Connect vertices ``lo..hi-1`` to the candidates ``found`` for them."""
        cand_i, cand_d, log = found
        failed = kbuild.connect_batch(
            self._vectors,
            self._neighbors,
            self._weights,
            _METRIC_CODE[self._metric],
            lo,
            hi,
            cand_i,
            cand_d,
            _SCHEME_CODE[self._scheme],
            log,
        )
        if failed >= 0:  # cannot happen on a healthy graph; never leave a half-wired vertex
            raise RuntimeError(f"internal error: vertex {failed} could not be connected")

    def _extend_stream(self, start, end, threads, bar):
        """Streaming insertion (DEG_SPEC 5.5), batch by batch: each vertex searches 2d
        candidates from a random vertex, links to d-1 of them and the cut-off vertices are
        re-paired by the deletion repair."""
        code = _METRIC_CODE[self._metric]
        for lo, hi in self._batches(start, end):
            k = max(self._extend_k, 2 * self._d)
            entries = np.array(
                [kopt.rand_below(self._rand_state, lo) for _ in range(lo, hi)], dtype=np.int32
            ).reshape(-1, 1)
            cand_i, cand_d, _, _ = self._run_search(
                self._vectors[lo:hi], entries, k, self._extend_eps, True, 0, threads
            )
            with self._optimizer() as (opt, scr, log, owner, touched):
                failed = kbuild.connect_stream_batch(
                    self._vectors,
                    self._neighbors,
                    self._weights,
                    code,
                    lo,
                    hi,
                    cand_i,
                    cand_d,
                    opt,
                    scr,
                    log,
                    owner,
                    touched,
                )
            if failed >= 0:
                raise RuntimeError(f"internal error: vertex {failed} could not be connected")
            self._commit(lo, hi)
            if self._improve_tries:
                self._improve((hi - lo) * self._improve_tries)
            if bar is not None:
                bar.update(hi - lo)

    def _commit(self, start, stop):
        """Make vertices ``start..stop-1`` visible: count them and register their labels."""
        new = self._labels[start:stop]
        self._vid_of.add(start, stop, self._labels)
        self._n = stop
        self._next_label = max(self._next_label, int(new.max()) + 1)

    # ------------------------------------------------------------------ dynamics

    def remove(self, labels):
        """Remove vectors by label; the graph stays even-regular and connected (DEG_SPEC 6).

        Each removal reconnects the d former neighbours of the vertex with d/2 short edges,
        keeping every component linked, then optimises the new edges. Unknown labels raise
        ``KeyError`` and duplicates ``ValueError``, before anything changes. A removed label
        never comes back from search or explore and may be added again later.
        """
        self._check_writable()
        arr = np.asarray(labels).reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
        uniq, counts = np.unique(arr, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"labels to remove contain duplicates, e.g. {uniq[counts > 1][0].item()}"
            )
        with self._lock.writing():
            self._vids(arr)  # raises KeyError for an unknown label, before any change
            removed = []  # ids removed, in order; the last vertex takes each one's id
            n_before = self._n
            try:
                for label in arr.tolist():
                    removed.append(self._remove_one(label))
            finally:
                self._renumber_entries(removed, n_before)
                self._view_changed(arr.size)

    def _remove_one(self, label):
        vid = self._vid_of.pop(label, self._labels)
        n = self._n
        involved = np.empty(self._d, dtype=np.int64)
        count = kremove.remove_vertex(
            self._vectors, self._neighbors, self._weights, self._labels, n, vid, involved
        )
        if vid != n - 1:  # another vector behind id vid: rows listing it are ordered again
            self._vid_of.move(n - 1, vid, self._labels)
            self._gen[vid] = self._next_generation()
        self._labels[n - 1] = -1
        self._n = n - 1
        if self._n <= min(n, self._d):
            return vid  # n <= d: the complete graph on n vertices, empty slots are expected
        with self._optimizer() as (opt, scr, log, owner, touched):
            status = kremove.restore_graph(
                self._vectors,
                self._neighbors,
                self._weights,
                _METRIC_CODE[self._metric],
                involved,
                count,
                True,
                opt,
                scr,
                log,
                owner,
                touched,
            )
        if status != kremove.OK:
            raise RuntimeError(
                f"internal error: graph repair after removing label {label} failed (code {status})"
            )
        return vid

    def optimize(self, tries=None, seconds=None, progress=False):
        """Continuous edge optimisation on demand (DEG_SPEC 7): replace long edges by shorter
        swap paths, keeping the graph even-regular and connected.

        Runs until ``tries`` random improvement tries are made or ``seconds`` have passed,
        whichever comes first (default: one try per vector). Returns a dict with ``tries``,
        ``improved`` (tries that changed the graph), ``aew_before`` and ``aew_after`` (average
        edge weight; it never increases).
        """
        self._check_writable()
        if tries is None and seconds is None:
            tries = self._n
        tries = None if tries is None else check.check_int("tries", tries, minimum=0)
        seconds = None if seconds is None else check.check_float("seconds", seconds, minimum=0)
        import time

        with self._lock.writing():
            before = self._aew()
            done = improved = 0
            deadline = None if seconds is None else time.monotonic() + seconds
            bar = None
            if progress and tries:
                from tqdm.auto import tqdm

                bar = tqdm(total=tries, desc="deg optimize", unit="try")
            try:
                while self._n > self._d + 1:
                    if tries is not None and done >= tries:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    step = _OPTIMIZE_CHUNK if tries is None else min(_OPTIMIZE_CHUNK, tries - done)
                    improved += self._improve(step)
                    done += step
                    if bar is not None:
                        bar.update(step)
            finally:
                self._view_changed(done)
                if bar is not None:
                    bar.close()
            return {
                "tries": done,
                "improved": improved,
                "aew_before": before,
                "aew_after": self._aew(),
            }

    def _improve(self, tries):
        with self._optimizer() as (opt, scr, log, _, _):
            return kopt.improve_many(
                self._vectors,
                self._neighbors,
                self._weights,
                _METRIC_CODE[self._metric],
                self._n,
                tries,
                opt,
                scr,
                log,
                self._rand_state,
            )

    @contextlib.contextmanager
    def _optimizer(self):
        """Single-thread scratch for the optimisation and repair kernels."""
        k = max(self._improve_k, 1)
        opt = (self._improve_k, self._improve_eps, self._max_path_length)
        log_len = kopt.log_capacity(self._max_path_length)
        log = (
            np.empty(log_len, np.int32),
            np.empty(log_len, np.int32),
            np.empty(log_len, np.int32),
            np.empty(log_len, np.float32),
        )
        with self._scratch.take(self._capacity, 1) as s:
            scr = (
                s.visited[0],
                s.tags[0],
                s.cand[0],
                np.empty(k + 4, np.float32),
                np.empty(k + 4, np.int32),
                np.empty(k + 4, np.float32),
                np.empty(k + 4, np.int32),
                np.empty(self._d, np.int32),
                np.empty(ksearch.GROUP_MAX, np.int32),
                np.empty(ksearch.GROUP_MAX, np.float32),
            )
            yield opt, scr, log, s.owner, s.touched

    def _aew(self):
        return float(self._weights[: self._n].mean(dtype=np.float64)) if self._n else 0.0

    # ------------------------------------------------------------------ queries

    def search(
        self,
        queries,
        k=10,
        eps=0.1,
        threads=None,
        max_distance_computations=0,
        return_stats=False,
        max_degree=None,
    ):
        """Approximate k nearest neighbours of each query.

        Parameters
        ----------
        queries : array_like, shape (nq, dim) or (dim,)
        k : int
            Neighbours per query (>= 1). Rows are padded with label -1 and distance inf when
            the index holds fewer than k vectors.
        eps : float
            Search slack (>= 0): the search stops once the closest open candidate is farther
            than (1 + eps) times the current k-th distance. Larger is slower and more exact.
        threads : int, optional
            Threads for a batch of queries (default: all cores). Results do not depend on it.
        max_distance_computations : int
            Budget per query (0 = unlimited).
        return_stats : bool
            Also return ``{"distance_computations": int64 (nq,)}``.
        max_degree : int, optional
            Follow only the first ``max_degree`` edges of each vertex the search expands, in
            the order of the search view (1..d; default d, the whole graph). The view lists a
            vertex's diversified edges first (no kept neighbour is closer to the far end than
            the vertex itself, as in HNSW's neighbour selection), shortest first, then the
            rest. Fewer distance computations per hop: on large vectors that do not fit in the
            cache it is faster at equal recall with a larger eps (Fashion-MNIST, d=30: 16-20
            gave about 25% more QPS at recall 0.95 and 0.99); see the README.

        Returns
        -------
        labels : int64 ndarray (nq, k)
        distances : float32 ndarray (nq, k), ascending
            Squared L2 for ``"l2"``; ``1 - <a, b>`` for ``"ip"`` and ``"cosine"``. Summed in
            the search kernel's own order: a value may differ from another computation of the
            same distance in its last bits (float32 rounding).
        """
        q = check.as_vectors(queries, self._dim, "queries", self._metric != "cosine")
        if self._metric == "cosine":
            q = check.normalize_rows(q, "queries")
        entries = np.zeros((1, 1), dtype=np.int32)
        if max_degree is not None:
            self._ensure_view()
        with self._lock.reading():
            return self._query(
                q,
                entries,
                k,
                eps,
                True,
                threads,
                max_distance_computations,
                return_stats,
                max_degree,
                tree=True,
                rotate=True,
            )

    def explore(
        self,
        entry_labels,
        k=10,
        eps=0.0,
        include_entry=False,
        threads=None,
        max_distance_computations=0,
        return_stats=False,
        max_degree=None,
    ):
        """Neighbourhood of stored vectors (indexed queries): "what is similar to item X?".

        The search starts at the vertex itself with its own vector as the query. With
        ``include_entry=False`` (default) the entry is never returned; other vertices with an
        identical vector are. ``entry_labels`` is one label or a 1-D array of labels; unknown
        labels raise ``KeyError``. Other parameters and the return value as in :meth:`search`.
        """
        arr = np.asarray(entry_labels)
        if arr.ndim > 1:
            raise ValueError(f"entry_labels must be a label or a 1-D array, got shape {arr.shape}")
        arr = arr.reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"entry_labels must be integers, got dtype {arr.dtype}")
        if max_degree is not None:
            self._ensure_view()
        with self._lock.reading():
            vids = self._vids(arr)
            entries = vids.astype(np.int32).reshape(-1, 1)
            return self._query(
                self._vectors[vids],
                entries,
                k,
                eps,
                bool(include_entry),
                threads,
                max_distance_computations,
                return_stats,
                max_degree,
                own_entry=True,
            )

    def _query(
        self,
        queries,
        entries,
        k,
        eps,
        include_entry,
        threads,
        max_dc,
        return_stats,
        max_degree,
        tree=False,
        own_entry=False,
        rotate=False,
    ):
        """Validate the search parameters and run; the caller holds the read lock."""
        k = check.check_int("k", k, minimum=1, maximum=check.MAX_K)
        if max_degree is None:
            max_degree = self._d
        max_degree = check.check_int("max_degree", max_degree, minimum=1, maximum=self._d)
        eps = check.check_float("eps", eps, minimum=0.0)
        max_dc = check.check_int("max_distance_computations", max_dc, minimum=0)
        threads = self._resolve_threads(threads)
        if self._n == 0:
            nq = queries.shape[0]
            labels = np.full((nq, k), -1, dtype=np.int64)
            dists = np.full((nq, k), np.inf, dtype=np.float32)
            n_dc = np.zeros(nq, dtype=np.int64)
        else:  # the search keeps at most n results (the same ones for any k >= n): pad the rest
            found = min(k, self._n)
            vids, dists, n_dc, _ = self._run_search(
                queries,
                entries,
                found,
                eps,
                include_entry,
                max_dc,
                threads,
                tree,
                max_degree,
                own_entry=own_entry,
                rotate=rotate,
                lead=_LEAD if self._yt.shape[0] else 1.0,
                exact=False,
            )
            labels = klabels.labels_of(vids, self._labels)
            if found < k:
                labels = np.pad(labels, ((0, 0), (0, k - found)), constant_values=-1)
                dists = np.pad(dists, ((0, 0), (0, k - found)), constant_values=np.inf)
        if return_stats:
            return labels, dists, {"distance_computations": n_dc}
        return labels, dists

    def _run_search(
        self,
        queries,
        entries,
        k,
        eps,
        include_entry,
        max_dc,
        threads,
        tree=False,
        max_degree=None,
        log_capacity=0,
        own_entry=False,
        graph=None,
        first=None,
        chunk=None,
        rotate=False,
        lead=1.0,
        exact=True,
    ):
        """Run the search kernel over ``queries``; returns vids, distances, distance counts
        and the distance log ``(log_i, log_d, log_n)`` (up to ``log_capacity`` per query).

        With ``tree`` each query enters the graph at the members of its leaf of the entry tree
        instead of ``entries`` (query search, construction); exploration and the streaming
        scheme pass their own entries (one row for all queries, or one per query). ``own_entry``
        (exploration): each query is its entry's own vector, whose neighbours' distances are the
        stored edge weights. ``graph`` replaces the neighbour rows (construction's copy). With
        several threads, each runs the kernel with its own scratch set, and they claim the
        queries ``chunk`` at a time (default: see ``_CLAIMS``) until none are left; ``first``
        runs on the calling thread before it joins in (see ``deg._pipeline.side_by_side``).
        ``rotate``: the queries are in the input basis (``search``); each chunk is rotated into
        the stored basis by the kernel that rotated the stored vectors, so a stored vector given
        as a query is found at distance 0 (by the same machine code: a file moved to another CPU
        may round a few vectors differently). ``lead`` < 1: candidates whose first distance
        chunk passes ``lead`` times the bound are rejected there (``_LEAD``; 1 = exact, as
        construction and optimisation search). ``exact=False`` (query search, exploration): the
        kernel may sum rows four at a time, equal to ``distance`` up to float32 rounding;
        construction's distances become edge weights and stay exact.
        """
        if max_degree is None:
            max_degree = self._d
        members = self._members if tree else self._members[:0]
        nq = queries.shape[0]
        blocks = min(threads, max(1, nq // _SERIAL_BELOW))
        if chunk is None:
            chunk = nq if blocks == 1 else min(_MAX_CHUNK, max(1, nq // (_CLAIMS * blocks)))
        out_i = np.empty((nq, k), dtype=np.int32)
        out_d = np.empty((nq, k), dtype=np.float32)
        out_dc = np.empty(nq, dtype=np.int64)
        # every entry enters the result heap (include_entry): a row of entries, or a leaf's
        heap = k + max(entries.shape[1], ENTRIES if tree else 0) + 1
        log_i = np.empty((nq, log_capacity), dtype=np.int32)
        log_d = np.empty((nq, log_capacity), dtype=np.float32)
        log_n = np.zeros(nq, dtype=np.int64)
        graph = self._neighbors if graph is None else graph
        code = _METRIC_CODE[self._metric]
        rotate = rotate and self._yt.shape[0] > 0

        basis = (self._yt, self._tt) if rotate else (self._yt[:0], self._tt[:0])
        rotated = np.empty_like(queries) if rotate else queries[:0]
        sync = np.zeros(16, dtype=np.int64)  # the claim and done counters, a cache line apart
        claim, done = sync[:1], sync[8:9]

        with self._scratch.take(self._capacity, blocks) as s:
            res_d, res_i, fresh = s.rows(heap, self._d)

            def work(t):
                ksearch.search_shared(
                    t,
                    claim,
                    done,
                    chunk,
                    self._vectors,
                    graph,
                    self._weights,
                    code,
                    queries,
                    basis,
                    rotated,
                    entries,
                    (members, self._pairs, self._planes, self._offsets),
                    k,
                    eps,
                    np.float32(lead),
                    exact,
                    include_entry,
                    own_entry,
                    max_dc,
                    max_degree,
                    s.visited,
                    s.tags,
                    s.cand,
                    res_d,
                    res_i,
                    fresh,
                    out_i,
                    out_d,
                    out_dc,
                    (log_i, log_d, log_n),
                )

            _pipeline.side_by_side(first, work, blocks, done, nq)
        return out_i, out_d, out_dc, (log_i, log_d, log_n)

    # ------------------------------------------------------------------ inspection

    def __len__(self):
        return self._n

    def __contains__(self, label):
        """True for a label in the index; an integral float counts as that integer, anything
        else that is not an integer (a string, a bool, 1.5) is never in it."""
        key = check.label_key(label)
        return key is not None and self._vid_of.contains(key, self._labels)

    def __repr__(self):
        return (
            f"deg.Index(dim={self._dim}, metric={self._metric!r}, edges_per_vertex={self._d},"
            f" n={self._n}{', read-only' if self._read_only else ''})"
        )

    @property
    def dim(self):
        return self._dim

    @property
    def metric(self):
        return self._metric

    @property
    def edges_per_vertex(self):
        return self._d

    @property
    def extend_k(self):
        return self._extend_k

    @property
    def extend_eps(self):
        return self._extend_eps

    @property
    def scheme(self):
        return self._scheme

    @property
    def seed(self):
        return self._seed

    @property
    def improve_k(self):
        return self._improve_k

    @property
    def improve_eps(self):
        return self._improve_eps

    @property
    def max_path_length(self):
        return self._max_path_length

    @property
    def improve_tries(self):
        return self._improve_tries

    @property
    def rotate(self):
        """The ``rotate`` setting (``None``: automatic); :attr:`rotated` says whether the
        basis is in use yet."""
        return self._rotate

    @property
    def rotated(self):
        """True once the vectors are stored in the rotated basis (see ``rotate``)."""
        return self._yt.shape[0] > 0

    @property
    def read_only(self):
        """True for an index loaded with ``mmap=True``."""
        return self._read_only

    @property
    def nbytes(self):
        """Bytes the index holds: the per-vertex arrays (vectors, neighbours, weights, labels,
        row hashes; capacity included), the label map, the entry tree and the rotated basis."""
        return (
            sum(a.nbytes for a in self._storage())
            + self._vid_of.nbytes
            + sum(a.nbytes for a in self._tree())
            + self._yt.nbytes
            + self._tt.nbytes
        )

    @property
    def labels(self):
        """All labels, in internal order (a copy)."""
        return self._labels[: self._n].copy()

    def get_vectors(self, labels):
        """Stored vectors of ``labels`` as float32 (m, dim); cosine vectors are normalised.
        In a rotated index (``rotate``) they are rotated back, equal to the added ones within
        float32 rounding."""
        with self._lock.reading():
            z = self._vectors[self._vids(labels)]
            return basis.unrotate(z, self._yt, self._tt) if self._yt.shape[0] else z.copy()

    def neighbors(self, labels):
        """The graph itself: neighbour labels (m, d) int64 and edge weights (m, d) float32.

        Row i is ``labels[i]``'s; its neighbours come in the order of the search view (see
        ``search``'s ``max_degree``) once a search has used it or the index was saved, and
        may change order after any add, remove or optimize. While the index holds d vertices
        or fewer, empty slots show as label -1 with weight inf.
        """
        with self._lock.reading():
            vids = self._vids(labels)
            nb = self._neighbors[vids]
            empty = nb == vids[:, None]
            out = np.where(empty, -1, self._labels[nb])
            w = np.where(empty, np.float32(np.inf), self._weights[vids])
        return out, w

    def _vids(self, labels):
        arr = np.asarray(labels).reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
        return self._vid_of.find(arr, self._labels)  # KeyError naming the first unknown label

    # ------------------------------------------------------------------ persistence

    def save(self, path):
        """Write the index to ``path`` atomically (see :mod:`deg.fileformat`)."""
        self._ensure_view()
        with self._lock.reading():
            params = self._params()
            n = self._n
            fileformat.write(
                path,
                self._metric,
                params,
                self._vectors[:n],
                self._neighbors[:n],
                self._weights[:n],
                self._labels[:n],
                self._file_signatures(),
                (self._yt, self._tt),
                self._tree(),
            )

    @classmethod
    def load(cls, path, mmap=False, verify=True):
        """Load an index saved by :meth:`save`.

        With ``mmap=True`` the arrays are memory-mapped (pages load on demand, several processes
        share them) and the index is read-only: search and explore work, ``add`` raises.
        Raises ``ValueError`` naming what is wrong for a file that is not a valid deg index:
        bad magic or version, truncated, checksum mismatch, parameters out of bounds, or a
        graph that is not one deg could have written (ids out of range, a vertex listed
        twice, a directed edge, a weight that is not the distance of its vectors, a vector
        that ``add`` would refuse, a disconnected graph).

        ``verify=False`` skips the checksum and the checks that read every vector (weights,
        norms, connectivity): Fashion-MNIST (60k x 784) loads in about half the time (see the
        README). The checks that keep the kernels within their arrays (ids, repeats, edge
        symmetry, the entry tree) always run. Use it only for files this program wrote.
        """
        metric, params, arrays = fileformat.read(path, mmap=mmap, verify=verify)
        return cls._from_parts(metric, params, arrays, os.fspath(path), read_only=mmap)

    @classmethod
    def _from_parts(cls, metric, params, a, source, read_only):
        """An index over validated arrays (from a file or a pickle); see :meth:`load`."""
        n, dim = a["vectors"].shape
        try:
            given = {key: params[key] for key in _PARAMS if key != "rotate"}
            index = cls(
                dim,
                metric=metric,
                edges_per_vertex=a["neighbors"].shape[1],
                rotate=params.get("rotate", False),
                **given,
            )  # files before rotate: False
            next_label = check.check_int(
                "next_label", params["next_label"], minimum=0, maximum=check.MAX_LABEL + 1
            )
            drawn_at = check.check_int(  # named pivots_drawn_at before the entry tree
                "entries_drawn_at",
                params.get("entries_drawn_at", params.get("pivots_drawn_at", n)),
                minimum=0,
                maximum=check.MAX_VERTICES,
            )
            index._rand_state[0] = check.check_int(
                "rand_state", params["rand_state"], minimum=0, maximum=2**64 - 1
            )
        except KeyError as e:
            raise ValueError(f"{source} has invalid parameters: {e.args[0]!r} is missing") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source} has invalid parameters: {e}") from None
        nb, w, sig = a["neighbors"], a["weights"], a.get("sig")
        if "order" in a:  # versions 2-5: sorted rows and their (current) search order
            order = a["order"].astype(np.intp)
            nb = np.take_along_axis(nb, order, axis=1)
            w = np.take_along_axis(w, order, axis=1)
            sig = np.empty(n, dtype=np.uint32)
            kview.sign_rows(nb, n, sig)
        elif sig is None:  # version 1: rows in no search order yet (computed below)
            sig = np.full(n, kview.EMPTY_SIG, dtype=np.uint32)
        if read_only:  # a copy-on-write map: the refresh below may still reorder rows
            index._vectors, index._neighbors = a["vectors"], nb
            index._weights, index._labels, index._sig = w, a["labels"], sig
            index._gen = np.zeros(n, dtype=np.uint32)  # generations start again at 0
            index._read_only = True
        else:
            index._allocate(n)
            for name, arr in (
                ("vectors", a["vectors"]),
                ("neighbors", nb),
                ("weights", w),
                ("labels", a["labels"]),
                ("sig", sig),
            ):
                getattr(index, "_" + name)[:n] = arr
        if "rotation" in a:
            index._yt = np.array(a["rotation"], dtype=np.float32)
            index._tt = np.array(a["rotation_t"], dtype=np.float32)
        index._capacity = n
        index._n = n
        index._vid_of.rebuild(a["labels"])
        index._next_label = max(next_label, int(a["labels"].max()) + 1 if n else 0)
        if "pairs" in a:  # the saved tree, renumbered by removals as it was
            index._entries_drawn_at = drawn_at
            index._members, index._pairs, index._planes, index._offsets = (
                aligned.copy(a[name], dtype) for name, dtype in _TREE.items()
            )
        else:  # files before the tree or before its pairs (version 4): draw it
            index._refresh_entries(min(drawn_at, n))
        index._refresh_view()
        return index

    def _params(self):
        """Everything besides the arrays that a saved or pickled index needs."""
        out = {key: getattr(self, "_" + key) for key in _PARAMS}
        out.update(
            next_label=self._next_label,
            rand_state=int(self._rand_state[0]),
            entries_drawn_at=self._entries_drawn_at,
        )
        return out

    def __reduce__(self):
        """Pickle support (multiprocessing, Ray): the same content and checks as save/load.

        An index loaded with ``mmap=True`` unpickles as an ordinary in-memory copy.
        """
        self._ensure_view()
        with self._lock.reading():
            n = self._n
            arrays = {
                name: np.array(getattr(self, "_" + name)[:n])
                for name in ("vectors", "neighbors", "weights", "labels")
            }
            arrays["sig"] = self._file_signatures()
            arrays.update(rotation=self._yt.copy(), rotation_t=self._tt.copy())
            arrays.update(zip(_TREE, (a.copy() for a in self._tree())))
            return _unpickle, (self._metric, self._params(), arrays)

    # ------------------------------------------------------------------ storage

    def _allocate(self, capacity):
        self._capacity = capacity
        self._vectors = aligned.zeros((capacity, self._dim), np.float32)
        self._neighbors = aligned.zeros((capacity, self._d), np.int32)
        self._weights = aligned.zeros((capacity, self._d), np.float32)
        self._labels = np.full(capacity, -1, dtype=np.int64)
        self._sig = np.full(capacity, kview.EMPTY_SIG, dtype=np.uint32)
        self._gen = np.zeros(capacity, dtype=np.uint32)

    def _reserve(self, needed):
        """Grow capacity by doubling so that ``needed`` vertices fit."""
        if needed <= self._capacity:
            return
        cap = max(needed, 2 * self._capacity, 64)
        old = self._storage()
        n = self._n
        self._allocate(cap)
        for new, prev in zip(self._storage(), old):
            new[:n] = prev[:n]
        self._scratch.clear()

    def _storage(self):
        """Every per-vertex array, in one fixed order."""
        return self._vectors, self._neighbors, self._weights, self._labels, self._sig, self._gen

    def _next_generation(self):
        """A vector generation not given before (deg._kernels.view; wraps after 2**32 - 1)."""
        gen = self._epoch
        self._epoch = gen % 0xFFFFFFFF + 1
        return np.uint32(gen)

    def _file_signatures(self):
        """The row signatures as a file stores them (generations 0; see ``kview``)."""
        out = np.empty(self._n, dtype=np.uint32)
        kview.plain_signatures(self._neighbors, self._n, self._sig, self._gen, out)
        return out

    def _check_writable(self):
        if self._read_only:
            raise ValueError(
                "this index was loaded with mmap=True and is read-only; "
                "load it with mmap=False to modify it"
            )

    @staticmethod
    def _resolve_threads(threads):
        """``None``: all cores (``NUMBA_NUM_THREADS``, which defaults to the core count and
        lets users cap every library at once); more than that is capped."""
        if threads is None:
            return numba.config.NUMBA_NUM_THREADS
        threads = check.check_int("threads", threads, minimum=1)
        return min(threads, numba.config.NUMBA_NUM_THREADS)
