"""ANN-Benchmarks datasets: registry, HDF5 files, local builds, exact ground truth, downloads.

``load(name)`` resolves a registered dataset in this order:

1. a cached ``<dir>/<name>.hdf5``, where ``dir`` is the ``data_dir`` argument, else
   ``$DEG_DATASETS_DIR``, else the ``datasets/`` folder of a source checkout (if writable),
   else ``~/.cache/deg/datasets`` (see :func:`cache_dir`);
2. a local build from raw files the registry knows (Fashion-MNIST IDX files, texmex
   ``.fvecs``), found in ``$DEG_DATA_DIR[/<source>]``, ``<repo>/../shared/datasets/<source>``
   or ``/usr/share/datasets/<source>`` (see :func:`raw_dirs`); the built file is cached;
3. a download of ``https://ann-benchmarks.com/<name>.hdf5`` with a progress bar, resume of a
   partial ``.part`` file, and size and checksum checks (see :func:`download`).

Files use the ANN-Benchmarks layout: datasets ``train`` (n, dim) and ``test`` (nq, dim) float32,
``neighbors`` (nq, 100) int32 nearest first and ``distances`` (nq, 100) float32 (euclidean: not
squared; angular: 1 - cos); attrs ``distance``, ``point_type`` (``"float"``), ``dimension``.
Angular vectors are stored unnormalised (``deg.Index(metric="cosine")`` normalises).

This module needs numpy, tqdm and, for HDF5 files, h5py (``pip install
dynamic-exploration-graph[datasets]``): it never imports numba or ``deg.index``.

Examples
--------
>>> from deg import datasets
>>> ds = datasets.synthetic(2000, 20, 32, seed=0)
>>> ds.train.shape, ds.neighbors.shape, ds.deg_metric
((2000, 32), (20, 100), 'l2')
>>> ids, dists = ds.explore_groundtruth([0, 5], k=10)
>>> bool((ids[:, 0] != [0, 5]).all())
True
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import tempfile
from pathlib import Path

import numpy as np

from deg import _download
from deg._download import DownloadError, download, sha256_file

__all__ = [
    "GT_K",
    "REGISTRY",
    "Dataset",
    "DownloadError",
    "Entry",
    "cache_dir",
    "download",
    "ground_truth",
    "load",
    "raw_dirs",
    "read_fvecs",
    "read_hdf5",
    "read_idx",
    "read_ivecs",
    "sha256_file",
    "synthetic",
    "write_fvecs",
    "write_hdf5",
    "write_ivecs",
]

GT_K = 100  # ground-truth depth of every ANN-Benchmarks file
ANN_URL = "https://ann-benchmarks.com/{name}.hdf5"
METRICS = ("euclidean", "angular")
_DEG_METRIC = {"euclidean": "l2", "angular": "cosine"}
_REPO = Path(__file__).resolve().parent.parent
_SCORE_BYTES = 128 << 20  # one (queries x train) float32 score block of ground_truth
_PAIR_FLOATS = 1 << 21  # vector components gathered per exact-rescoring chunk (~50 MB)
_U32 = 2.0**-24  # float32 unit roundoff


# ---------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered dataset.

    Attributes
    ----------
    name : str
        ANN-Benchmarks style ``<data>-<dim>-<metric>``.
    metric : {"euclidean", "angular"}
    dim : int
    url : str or None
        Public HDF5 file; None for datasets that only exist as local builds.
    size, sha256 : int or None, str or None
        Of the public file, where known; None means "not checked" (never a guess).
    source : str or None
        Raw-file recipe for a local build (``"fashion-mnist"`` or ``"siftsmall"``).
    rows : int or None
        Train vectors of a collection grown from its source by deformations (``None``: the
        source's own).
    """

    name: str
    metric: str
    dim: int
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    source: str | None = None
    rows: int | None = None


def _entry(name, *, source=None, public=True, rows=None):
    dim, metric = name.split("-")[-2:]
    url = ANN_URL.format(name=name) if public else None
    return Entry(name, metric, int(dim), url, source=source, rows=rows)


REGISTRY = {
    e.name: e
    for e in (
        _entry("fashion-mnist-784-euclidean", source="fashion-mnist"),
        _entry("mnist-784-euclidean"),
        _entry("sift-128-euclidean"),
        _entry("gist-960-euclidean"),
        _entry("glove-25-angular"),
        _entry("glove-50-angular"),
        _entry("glove-100-angular"),
        _entry("glove-200-angular"),
        _entry("nytimes-256-angular"),
        _entry("deep-image-96-angular"),
        # local builds only (not on ANN-Benchmarks): the same raw vectors under another metric,
        # and the 10k texmex subset, small enough for tests and quick benchmarks
        _entry("fashion-mnist-784-angular", source="fashion-mnist", public=False),
        _entry("siftsmall-128-euclidean", source="siftsmall", public=False),
        _entry("siftsmall-128-angular", source="siftsmall", public=False),
        # Fashion-MNIST grown by deformations of its train images (deg._deformed): each is a
        # prefix of the next, the first 60k rows are Fashion-MNIST's; its test images query
        *(
            _entry(
                f"fashion-mnist-{size}-784-euclidean",
                source="fashion-mnist",
                public=False,
                rows=rows,
            )
            for size, rows in (("250k", 250_000), ("1m", 1_000_000), ("2m", 2_000_000))
        ),
    )
}

# raw files of each local-build source: (train vectors, test vectors)
_SOURCES = {
    "fashion-mnist": ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"),
    "siftsmall": ("siftsmall_base.fvecs", "siftsmall_query.fvecs"),
}


# ---------------------------------------------------------------------------- Dataset


@dataclasses.dataclass(eq=False, repr=False)
class Dataset:
    """Train and test vectors with exact ground truth, as in an ANN-Benchmarks file.

    Attributes
    ----------
    train : ndarray of float32, shape (n, dim)
    test : ndarray of float32, shape (nq, dim)
    neighbors : ndarray of int32, shape (nq, k)
        Row ids in ``train`` of each query's exact nearest neighbours, nearest first.
    distances : ndarray of float32, shape (nq, k)
        Their distances: Euclidean (not squared) or ``1 - cos``.
    metric : {"euclidean", "angular"}
    name : str
    """

    train: np.ndarray
    test: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    metric: str = "euclidean"
    name: str = "unnamed"

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        dims = self.train.ndim, self.test.ndim, self.neighbors.ndim, self.distances.ndim
        if (
            dims != (2, 2, 2, 2)
            or self.train.shape[1] != self.test.shape[1]
            or self.neighbors.shape != self.distances.shape
            or self.neighbors.shape[0] != self.test.shape[0]
        ):
            raise ValueError(
                f"inconsistent dataset {self.name!r}: train {self.train.shape}, test "
                f"{self.test.shape}, neighbors {self.neighbors.shape}, distances "
                f"{self.distances.shape}; expected (n, dim), (nq, dim), (nq, k), (nq, k)"
            )

    def __repr__(self):
        return (
            f"Dataset({self.name!r}, metric={self.metric!r}, train={self.train.shape}, "
            f"test={self.test.shape}, k={self.neighbors.shape[1]})"
        )

    @property
    def deg_metric(self):
        """The matching ``deg.Index`` metric: ``"l2"`` or ``"cosine"``."""
        return _DEG_METRIC[self.metric]

    @property
    def dim(self):
        """Vector dimension."""
        return self.train.shape[1]

    def explore_groundtruth(self, entries, k):
        """Exact neighbours of stored vectors, each excluding itself: indexed-query ground truth.

        Only the entry's own row id is excluded; other rows holding the same vector stay (at
        distance 0), as a graph exploration from the entry vertex would find them.

        Parameters
        ----------
        entries : array_like of int, shape (m,)
            Row ids in ``train``.
        k : int
            Neighbours per entry, at most ``n - 1``.

        Returns
        -------
        ids : ndarray of int32, shape (m, k)
        dists : ndarray of float32, shape (m, k)
            In this dataset's distance (Euclidean, or ``1 - cos``), nearest first.
        """
        entries = np.asarray(entries)
        if entries.ndim != 1 or (entries.size and not np.issubdtype(entries.dtype, np.integer)):
            raise ValueError(
                f"entries must be a 1-D array of train row ids, got dtype "
                f"{entries.dtype} and shape {entries.shape}"
            )
        entries = entries.astype(np.int64)
        if entries.size and (entries.min() < 0 or entries.max() >= len(self.train)):
            raise ValueError(
                f"entries must lie in [0, {len(self.train)}), got "
                f"[{entries.min()}, {entries.max()}]"
            )
        return ground_truth(self.train, self.train[entries], k, self.metric, exclude=entries)


# ---------------------------------------------------------------------------- ground truth


def ground_truth(
    train,
    queries,
    k: int = GT_K,
    metric: str = "euclidean",
    *,
    exclude=None,
    block: int | None = None,
    progress: bool = False,
) -> tuple:
    """Exact k nearest neighbours of ``queries`` in ``train``, computed blockwise with BLAS.

    A float32 matrix product ranks each block of queries against all of ``train``; a rigorous
    bound on its rounding error widens the selection so that it surely holds the true top k,
    and those candidates are then measured again in float64. The result is exact (ties go to
    the lower id) while memory stays near 128 MB per block plus the inputs.

    Parameters
    ----------
    train : array_like, shape (n, dim)
    queries : array_like, shape (nq, dim)
    k : int
        Neighbours per query (at most n, or n - 1 with ``exclude``).
    metric : {"euclidean", "angular"}
        Angular ranks by cosine similarity; zero vectors have cosine 0 to everything.
    exclude : array_like of int, shape (nq,), optional
        A train row id per query that must not be returned (the query's own id).
    block : int, optional
        Queries per block; by default as many as keep the score block near 128 MB.
    progress : bool
        Show a tqdm progress bar over the queries.

    Returns
    -------
    ids : ndarray of int32, shape (nq, k)
    dists : ndarray of float32, shape (nq, k)
        Euclidean distances (not squared) or ``1 - cos``, ascending.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    x = _as_matrix(train, "train")
    q = _as_matrix(queries, "queries", x.shape[1])
    (n, dim), nq = x.shape, len(q)
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64)
        if exclude.shape != (nq,):
            raise ValueError(f"exclude must have shape ({nq},), got {exclude.shape}")
    most = n - (exclude is not None)
    if not 1 <= k <= most:
        raise ValueError(f"k must be in [1, {most}] for {n} train vectors, got {k}")
    block = block or max(1, _SCORE_BYTES // (4 * n))
    euclid = metric == "euclidean"
    x_sq, q_sq = _sq_norms(x), _sq_norms(q)
    if euclid:
        x_sq32 = x_sq.astype(np.float32)
        # |error| of a float32 score ||x||^2 - 2 q.x is below (dim + 4) u (||q|| + ||x||)^2
        tol = (dim + 4) * _U32 * (np.sqrt(q_sq) + np.sqrt(x_sq.max())) ** 2
    else:
        with np.errstate(divide="ignore"):
            x_inv = np.where(x_sq > 0, 1.0 / np.sqrt(x_sq), 0.0).astype(np.float32)
        tol = (dim + 4) * _U32 * np.sqrt(q_sq)  # score -q.x/||x|| is within this
    ids = np.empty((nq, k), dtype=np.int32)
    dists = np.empty((nq, k), dtype=np.float32)
    from tqdm.auto import tqdm

    with tqdm(total=nq, desc="ground truth", unit="query", disable=not progress) as bar:
        for lo in range(0, nq, block):
            hi = min(nq, lo + block)
            score = q[lo:hi] @ x.T  # smaller is nearer after the next two lines
            if euclid:
                score *= -2.0
                score += x_sq32
            else:
                score *= -x_inv
            if exclude is not None:
                score[np.arange(hi - lo), exclude[lo:hi]] = np.inf
            rows, cols = _candidates(score, k, tol[lo:hi])
            del score
            exact = _exact(x, q[lo:hi], rows, cols, x_sq, q_sq[lo:hi], euclid)
            ids[lo:hi], dists[lo:hi] = _top_k(rows, cols, exact, hi - lo, k)
            bar.update(hi - lo)
    return ids, dists


def _as_matrix(a, name, dim=None):
    a = np.asarray(a)
    if a.ndim != 2 or (dim is not None and a.shape[1] != dim) or a.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 2-D array of vectors"
            f"{f' of dimension {dim}' if dim else ''}, got shape {a.shape}"
        )
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def _sq_norms(a):
    """Squared row norms in float64, in chunks (so no float64 copy of a large matrix)."""
    out = np.empty(len(a))
    step = max(1, _PAIR_FLOATS // a.shape[1])
    for lo in range(0, len(a), step):
        c = a[lo : lo + step].astype(np.float64)
        out[lo : lo + step] = np.einsum("ij,ij->i", c, c)
    return out


def _candidates(score, k, tol):
    """(row, col) pairs of ``score`` (b, n) that surely include each row's exact top k.

    A row's k-th smallest group minimum bounds its k-th smallest score from above (k groups
    have an element at or below it), which is far cheaper than a partition of the whole row.
    Any true top-k element has a float32 score at most that bound + 2 tol.
    """
    b, n = score.shape
    g = max(1, n // (4 * k))  # about 4k groups: the bound lands near the k-th score
    full = n - n % g
    mins = score[:, :full].reshape(b, full // g, g).min(axis=2)
    if full < n:
        mins = np.concatenate([mins, score[:, full:].min(axis=1, keepdims=True)], axis=1)
    bound = np.partition(mins, k - 1, axis=1)[:, k - 1] + 2.0 * tol
    # rounding to float32 is monotone, so no float32 score <= bound is lost here
    return np.nonzero(score <= bound.astype(np.float32)[:, None])


def _exact(x, q, rows, cols, x_sq, q_sq, euclid):
    """Float64 distances of pairs (q[rows], x[cols]) from coordinate differences, so that
    identical vectors come out at exactly 0."""
    out = np.empty(len(rows))
    step = max(1, _PAIR_FLOATS // x.shape[1])
    if not euclid:  # compare unit vectors: 1 - cos = ||u - v||^2 / 2
        x_norm = np.sqrt(np.where(x_sq > 0, x_sq, 1.0))
        q_norm = np.sqrt(np.where(q_sq > 0, q_sq, 1.0))
    for lo in range(0, len(rows), step):
        r, c = rows[lo : lo + step], cols[lo : lo + step]
        if euclid:
            diff = np.subtract(x[c], q[r], dtype=np.float64)
        else:
            diff = x[c] / x_norm[c, None] - q[r] / q_norm[r, None]
        out[lo : lo + step] = np.einsum("ij,ij->i", diff, diff)
    if euclid:
        return np.sqrt(out)
    out *= 0.5
    out[(x_sq[cols] == 0) | (q_sq[rows] == 0)] = 1.0
    return out


def _top_k(rows, cols, dist, b, k):
    """The k nearest candidates of each of ``b`` rows, ties to the lower id."""
    order = np.lexsort((cols, dist, rows))
    counts = np.bincount(rows, minlength=b)
    assert counts.min() >= k, "ground_truth candidate bound failed"
    starts = np.cumsum(counts) - counts
    pick = order[starts[:, None] + np.arange(k)]
    return cols[pick].astype(np.int32), dist[pick].astype(np.float32)


# ---------------------------------------------------------------------------- synthetic


def synthetic(
    n: int, nq: int, dim: int, *, intrinsic_dim: int = 8, metric: str = "euclidean", seed: int = 0
) -> Dataset:
    """Seeded vectors of low intrinsic dimension in ``dim`` dimensions, with exact ground truth.

    A uniform latent point in ``intrinsic_dim`` dimensions goes through a fixed random
    projection to ``dim`` dimensions and a ``sin`` (so the data is curved, not a flat subspace,
    like faiss' ``SyntheticDataset``), plus 1% noise. Queries come from the same distribution.

    Parameters
    ----------
    n, nq, dim : int
        Train vectors, test vectors, dimension.
    intrinsic_dim : int
    metric : {"euclidean", "angular"}
        Metric of the ground truth; the vectors are the same either way.
    seed : int

    Returns
    -------
    Dataset
        Named ``synthetic-<dim>-<metric>``, with ``min(100, n)`` neighbours per query.
    """
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((intrinsic_dim, dim))

    def draw(m):
        z = rng.random((m, intrinsic_dim))
        return (np.sin(2.0 * z @ proj) + 0.01 * rng.standard_normal((m, dim))).astype(np.float32)

    train, test = draw(n), draw(nq)
    ids, dists = ground_truth(train, test, min(GT_K, n), metric)
    return Dataset(train, test, ids, dists, metric, f"synthetic-{dim}-{metric}")


# ---------------------------------------------------------------------------- file formats


def _read_vecs(path, dtype):
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        raise ValueError(f"{path} is empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1) or (raw.reshape(-1, dim + 1)[:, 0] != dim).any():
        raise ValueError(
            f"{path} is not a .{dtype[1]}vecs file of dimension {dim} (truncated, "
            f"or records of different dimensions)"
        )
    # the view reinterprets the int32 words; the copy makes the result native and contiguous
    return np.ascontiguousarray(raw.reshape(-1, dim + 1)[:, 1:].view(dtype), dtype=dtype[1:])


def read_fvecs(path) -> np.ndarray:
    """Read a texmex ``.fvecs`` file: per record a little-endian int32 d, then d float32.

    Returns
    -------
    ndarray of float32, shape (n, d)
    """
    return _read_vecs(path, "<f4")


def read_ivecs(path) -> np.ndarray:
    """Read a texmex ``.ivecs`` file: per record a little-endian int32 d, then d int32.

    Returns
    -------
    ndarray of int32, shape (n, d)
    """
    return _read_vecs(path, "<i4")


def _write_vecs(path, a, dtype):
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {a.shape}")
    rec = np.empty((len(a), a.shape[1] + 1), dtype="<i4")
    rec[:, 0] = a.shape[1]
    rec[:, 1:] = np.ascontiguousarray(a, dtype=dtype).view("<i4")
    rec.tofile(path)


def write_fvecs(path, a: np.ndarray) -> None:
    """Write a 2-D array as a texmex ``.fvecs`` file (float32)."""
    _write_vecs(path, a, "<f4")


def write_ivecs(path, a: np.ndarray) -> None:
    """Write a 2-D array as a texmex ``.ivecs`` file (int32)."""
    _write_vecs(path, a, "<i4")


_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (MNIST family: big-endian header and data), gzipped or plain.

    Returns
    -------
    ndarray
        In native byte order, shaped as the header says, e.g. uint8 (n, 28, 28) for images.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES or len(raw) < 4 + 4 * raw[3]:
        raise ValueError(f"{path} is not an IDX file (magic {raw[:4].hex()})")
    ndim, dtype = raw[3], np.dtype(_IDX_TYPES[raw[2]])
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(
            f"{path}: header says shape {shape} of {dtype}, but "
            f"{len(raw) - offset} data bytes follow (truncated?)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_hdf5(path, ds: Dataset) -> None:
    """Write a :class:`Dataset` in the ANN-Benchmarks layout, atomically.

    The file is written under a temporary name in the same folder, fsynced, then renamed, so
    a concurrent reader or an interrupted write never leaves a partial ``path``.
    """
    h5py = _h5py()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a ".part" name, like a partial download: git and a later load both ignore it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["distance"] = ds.metric
            f.attrs["point_type"] = "float"
            f.attrs["dimension"] = ds.train.shape[1]
            f.create_dataset("train", data=np.asarray(ds.train, dtype=np.float32))
            f.create_dataset("test", data=np.asarray(ds.test, dtype=np.float32))
            f.create_dataset("neighbors", data=np.asarray(ds.neighbors, dtype=np.int32))
            f.create_dataset("distances", data=np.asarray(ds.distances, dtype=np.float32))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a dataset file is for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_hdf5(path, name: str | None = None) -> Dataset:
    """Read an ANN-Benchmarks HDF5 file into a :class:`Dataset` (fully into memory).

    Parameters
    ----------
    path : str or os.PathLike
    name : str, optional
        Defaults to the file name without ``.hdf5``.

    Raises
    ------
    ValueError
        If a dataset is missing or the distance is neither euclidean nor angular.
    """
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        missing = [key for key in ("train", "test", "neighbors", "distances") if key not in f]
        if missing:
            raise ValueError(f"{path} lacks the ANN-Benchmarks datasets {missing}")
        metric = hdf5_distance(f)
        if metric not in METRICS:
            raise ValueError(f"{path} has distance {metric!r}; deg supports {METRICS}")
        return Dataset(
            np.asarray(f["train"], dtype=np.float32),
            np.asarray(f["test"], dtype=np.float32),
            np.asarray(f["neighbors"], dtype=np.int32),
            np.asarray(f["distances"], dtype=np.float32),
            metric,
            name or Path(path).stem,
        )


# ---------------------------------------------------------------------------- resolution


def cache_dir(data_dir=None) -> Path:
    """The folder holding ``<name>.hdf5`` files.

    The ``data_dir`` argument, else ``$DEG_DATASETS_DIR``, else the ``datasets/`` folder of a
    source checkout (next to ``pyproject.toml``) if writable, else ``~/.cache/deg/datasets``.
    """
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("DEG_DATASETS_DIR"):
        return Path(os.environ["DEG_DATASETS_DIR"])
    repo = _REPO / "datasets"
    # pyproject.toml marks a checkout: an installed deg's parent is site-packages, which may
    # well hold some other package's "datasets" folder
    if (_REPO / "pyproject.toml").is_file() and repo.is_dir() and os.access(repo, os.W_OK):
        return repo
    return Path.home() / ".cache" / "deg" / "datasets"


def raw_dirs(source: str) -> list:
    """Folders searched, in order, for the raw files of ``source`` (e.g. ``"siftsmall"``)."""
    out = []
    if os.environ.get("DEG_DATA_DIR"):
        base = Path(os.environ["DEG_DATA_DIR"])
        out += [base, base / source]
    return out + [
        _REPO.parent / "shared" / "datasets" / source,
        Path("/usr/share/datasets") / source,
    ]


def _build(entry, progress):
    """Build ``entry`` from raw files, or None when they are nowhere to be found."""
    names = _SOURCES[entry.source]
    folder = next(
        (d for d in raw_dirs(entry.source) if all((d / f).is_file() for f in names)), None
    )
    if folder is None:
        return None
    if entry.source == "fashion-mnist":
        train, test = (read_idx(folder / f) for f in names)
        train = train.reshape(len(train), -1).astype(np.float32)
        test = test.reshape(len(test), -1).astype(np.float32)
        if entry.rows is not None:
            from deg._deformed import deformed

            train = deformed(train, entry.rows)
    else:
        train, test = (read_fvecs(folder / f) for f in names)
    ids, dists = ground_truth(train, test, min(GT_K, len(train)), entry.metric, progress=progress)
    return Dataset(train, test, ids, dists, entry.metric, entry.name)


def load(name: str, *, data_dir=None, download: bool = True, progress: bool = True) -> Dataset:
    """Load a registered dataset: cached file, else local build, else download.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`, e.g. ``"fashion-mnist-784-euclidean"``.
    data_dir : str or os.PathLike, optional
        Cache folder; see :func:`cache_dir` for the default.
    download : bool
        Allow fetching the public ANN-Benchmarks file.
    progress : bool
        Progress bars for the ground truth of local builds and for downloads.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones), or a cached file that does not match
        the registry.
    FileNotFoundError
        Nothing cached, no raw files, and no download allowed or possible; says where it looked.
    DownloadError
        The download failed or did not verify.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    path = cache_dir(data_dir) / f"{name}.hdf5"
    if not path.exists():
        ds = _build(entry, progress) if entry.source else None
        if ds is not None:
            write_hdf5(path, ds)
            return ds
        looked = [f"no {path}"]
        if entry.source:
            looked.append(
                f"no raw {entry.source} files ({', '.join(_SOURCES[entry.source])}) "
                f"in {', '.join(map(str, raw_dirs(entry.source)))} (set DEG_DATA_DIR)"
            )
        if entry.url is None or not download:
            why = "it is built locally only" if entry.url is None else "download=False"
            raise FileNotFoundError(f"cannot load {name}: {'; '.join(looked)}; and {why}")
        _download.download(entry.url, path, size=entry.size, sha256=entry.sha256, progress=progress)
    try:
        ds = read_hdf5(path, name)
    except OSError as e:
        raise OSError(
            f"{path} is not a readable HDF5 file ({e}); delete it to fetch or build it again"
        ) from None
    if ds.metric != entry.metric or ds.dim != entry.dim:
        raise ValueError(
            f"{path} holds {ds.metric} vectors of dimension {ds.dim}, but {name} "
            f"is {entry.metric} of dimension {entry.dim}"
        )
    return ds


def hdf5_distance(f) -> str:
    """An open ANN-Benchmarks file's ``distance`` attribute (bytes or str; default
    euclidean)."""
    metric = f.attrs.get("distance", "euclidean")
    return metric.decode() if isinstance(metric, bytes) else str(metric)


def _h5py():
    """h5py, or an ImportError saying how to get it (it is an extra of deg's)."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError(
            "deg.datasets reads and writes HDF5 files with h5py, which is not installed: "
            "pip install 'dynamic-exploration-graph[datasets]' (or h5py)"
        ) from e
    return h5py
