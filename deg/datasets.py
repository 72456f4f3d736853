"""ANN-Benchmarks datasets: registry, HDF5 files, local builds, exact ground truth, downloads.

``load(name)`` resolves a dataset in this order:

1. a cached ``<dir>/<name>.hdf5`` (``dir``: the ``data_dir`` argument, else ``$DEG_DATASETS_DIR``,
   else the repository's ``datasets/`` folder when running from a checkout, else
   ``~/.cache/deg/datasets``);
2. a local build from raw files the registry knows (Fashion-MNIST IDX files, texmex
   ``.fvecs``), searched in ``$DEG_DATA_DIR``, ``<repo>/../shared/datasets`` and
   ``/usr/share/datasets``; the built file is cached;
3. a download of the public ANN-Benchmarks file, with a progress bar, resume of a partial
   ``.part`` file, and size and checksum checks.

Files use the ANN-Benchmarks layout: datasets ``train``, ``test`` (float32), ``neighbors``
(int32, top 100) and ``distances`` (float32; euclidean: not squared; angular: 1 - cos), attrs
``distance``, ``point_type``, ``dimension``. Angular vectors are stored unnormalised.
"""

import dataclasses
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ANN_URL = "https://ann-benchmarks.com/{name}.hdf5"
GT_K = 100
_REPO = Path(__file__).resolve().parent.parent

# name -> (distance, local build or None); every name also has the public URL unless local-only
REGISTRY = {
    "fashion-mnist-784-euclidean": ("euclidean", "fashion-mnist"),
    "mnist-784-euclidean": ("euclidean", None),
    "sift-128-euclidean": ("euclidean", None),
    "gist-960-euclidean": ("euclidean", None),
    "glove-25-angular": ("angular", None),
    "glove-50-angular": ("angular", None),
    "glove-100-angular": ("angular", None),
    "glove-200-angular": ("angular", None),
    "nytimes-256-angular": ("angular", None),
    "deep-image-96-angular": ("angular", None),
    "lastfm-64-dot": ("angular", None),
    # built here only (not on ANN-Benchmarks): the same raw vectors with another metric
    "fashion-mnist-784-angular": ("angular", "fashion-mnist"),
    "siftsmall-128-euclidean": ("euclidean", "siftsmall"),
    "siftsmall-128-angular": ("angular", "siftsmall"),
}
LOCAL_ONLY = {"fashion-mnist-784-angular", "siftsmall-128-euclidean", "siftsmall-128-angular"}
# sizes/checksums of public files, where known; None: not checked (never guessed)
KNOWN_FILES = {}


@dataclasses.dataclass
class Dataset:
    """Train/test vectors with exact ground truth, ANN-Benchmarks style."""

    name: str
    train: np.ndarray
    test: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    metric: str  # "euclidean" | "angular"

    @property
    def deg_metric(self):
        """The ``deg.Index`` metric for this dataset: ``"l2"`` or ``"cosine"``."""
        return "l2" if self.metric == "euclidean" else "cosine"

    def explore_groundtruth(self, entries, k):
        """Exact k-NN of stored vectors ``train[entries]``, each excluding itself (by id).

        Other vectors identical to the entry stay in. Returns ``(ids int32 (m, k), distances
        float32 (m, k))`` in this dataset's distance.
        """
        entries = np.asarray(entries, dtype=np.int64)
        ids, dists = ground_truth(self.train, self.train[entries], k + 1, self.metric)
        out_i = np.empty((len(entries), k), dtype=np.int32)
        out_d = np.empty((len(entries), k), dtype=np.float32)
        for r, e in enumerate(entries):
            keep = ids[r] != e
            if keep.all():  # the entry lost a tie at rank k+1: drop the farthest instead
                keep[-1] = False
            out_i[r], out_d[r] = ids[r][keep][:k], dists[r][keep][:k]
        return out_i, out_d


# ---------------------------------------------------------------------------- ground truth

def ground_truth(train, queries, k=GT_K, metric="euclidean", block=1024):
    """Exact k-NN of ``queries`` in ``train``, computed blockwise.

    float32 BLAS ranks a few extra candidates per query, which are then re-scored in float64,
    so the result is exact while memory stays at ``block x n``. Returns ``(ids int32 (nq, k),
    distances float32 (nq, k))``: Euclidean distances (not squared) or ``1 - cos``.
    """
    x = np.ascontiguousarray(train, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(x))
    if metric == "angular":
        x = _unit(x)
        q = _unit(q)
    sq = np.einsum("ij,ij->i", x, x)
    extra = min(len(x), k + 32)
    ids = np.empty((len(q), k), dtype=np.int32)
    dists = np.empty((len(q), k), dtype=np.float32)
    for lo in range(0, len(q), block):
        qb = q[lo:lo + block]
        score = -2.0 * (qb @ x.T) + sq[None, :] if metric == "euclidean" else -(qb @ x.T)
        cand = np.argpartition(score, extra - 1, axis=1)[:, :extra]
        exact = _exact(x, qb, cand, metric)
        order = np.lexsort((cand, exact), axis=1)[:, :k]
        ids[lo:lo + block] = np.take_along_axis(cand, order, 1)
        dists[lo:lo + block] = np.take_along_axis(exact, order, 1)
    return ids, dists


def _unit(x):
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def _exact(x, q, cand, metric):
    """Float64 distances of each query to its candidate rows."""
    diff = x[cand].astype(np.float64)
    if metric == "euclidean":
        diff -= q[:, None, :]
        return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return 1.0 - np.einsum("ijk,ik->ij", diff, q.astype(np.float64))


# ---------------------------------------------------------------------------- synthetic

def synthetic(n, nq, dim, *, intrinsic_dim=8, metric="euclidean", seed=0):
    """Vectors of low intrinsic dimension in ``dim`` dimensions, with exact ground truth.

    A uniform latent point in ``intrinsic_dim`` dimensions is projected by a fixed random
    matrix, bent by ``sin`` (so the data is not a flat subspace) and slightly noised.
    """
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((intrinsic_dim, dim))

    def draw(m):
        z = rng.random((m, intrinsic_dim))
        return (np.sin(2.0 * z @ proj) + 0.01 * rng.standard_normal((m, dim))).astype(np.float32)

    train, test = draw(n), draw(nq)
    ids, dists = ground_truth(train, test, min(GT_K, n), metric)
    return Dataset(f"synthetic-{dim}-{metric}", train, test, ids, dists, metric)


# ---------------------------------------------------------------------------- file formats

def read_fvecs(path):
    """texmex .fvecs: each record is an int32 dimension d, then d float32 (little-endian)."""
    raw = np.fromfile(path, dtype="<i4")
    dim = int(raw[0])
    return np.ascontiguousarray(raw.reshape(-1, dim + 1)[:, 1:].view("<f4"), dtype=np.float32)


def read_ivecs(path):
    """texmex .ivecs: each record is an int32 dimension d, then d int32."""
    raw = np.fromfile(path, dtype="<i4")
    dim = int(raw[0])
    return np.ascontiguousarray(raw.reshape(-1, dim + 1)[:, 1:])


def read_idx(path):
    """IDX (MNIST family, big-endian header; ``.gz`` or plain) as an ndarray."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    kinds = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[:2] != b"\0\0" or raw[2] not in kinds:
        raise ValueError(f"{path} is not an IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=kinds[raw[2]], offset=4 + 4 * ndim)
    return data.reshape(shape).astype(data.dtype.newbyteorder("="))


def write_hdf5(path, ds):
    """Write ``ds`` in the ANN-Benchmarks layout, atomically (temp file, fsync, rename)."""
    import h5py
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".hdf5", dir=path.parent)
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
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a dataset file is for everyone
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_hdf5(path, name=None):
    """Read an ANN-Benchmarks HDF5 file into a :class:`Dataset`."""
    import h5py
    with h5py.File(path, "r") as f:
        missing = [key for key in ("train", "test", "neighbors", "distances") if key not in f]
        if missing:
            raise ValueError(f"{path} lacks the ANN-Benchmarks datasets {missing}")
        metric = f.attrs.get("distance", "euclidean")
        metric = metric.decode() if isinstance(metric, bytes) else str(metric)
        return Dataset(name or Path(path).stem, np.asarray(f["train"], dtype=np.float32),
                       np.asarray(f["test"], dtype=np.float32),
                       np.asarray(f["neighbors"], dtype=np.int32),
                       np.asarray(f["distances"], dtype=np.float32), metric)


# ---------------------------------------------------------------------------- resolution

def cache_dir(data_dir=None):
    """Where dataset files are cached (see the module docstring)."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("DEG_DATASETS_DIR"):
        return Path(os.environ["DEG_DATASETS_DIR"])
    repo = _REPO / "datasets"
    if repo.is_dir() and os.access(repo, os.W_OK):
        return repo
    return Path.home() / ".cache" / "deg" / "datasets"


def raw_dirs(sub):
    """Folders searched for the raw files of ``sub`` (e.g. ``fashion-mnist``), in order."""
    out = []
    if os.environ.get("DEG_DATA_DIR"):
        base = Path(os.environ["DEG_DATA_DIR"])
        out += [base / sub, base]
    out += [_REPO.parent / "shared" / "datasets" / sub, Path("/usr/share/datasets") / sub]
    return out


_RAW_FILES = {
    "fashion-mnist": ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"),
    "siftsmall": ("siftsmall_base.fvecs", "siftsmall_query.fvecs"),
}


def _find_raw(sub):
    for folder in raw_dirs(sub):
        if all((folder / f).exists() for f in _RAW_FILES[sub]):
            return folder
    return None


def _build_local(name, sub, folder, metric):
    train_file, test_file = (folder / f for f in _RAW_FILES[sub])
    if sub == "fashion-mnist":
        flat = lambda a: np.ascontiguousarray(a.reshape(len(a), -1), dtype=np.float32)  # noqa
        train, test = flat(read_idx(train_file)), flat(read_idx(test_file))
    else:
        train, test = read_fvecs(train_file), read_fvecs(test_file)
    ids, dists = ground_truth(train, test, GT_K, metric)
    return Dataset(name, train, test, ids, dists, metric)


def load(name, *, data_dir=None, download=True, progress=True):
    """Load a registered dataset by ANN-Benchmarks name (see the module docstring)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    metric, sub = REGISTRY[name]
    path = cache_dir(data_dir) / f"{name}.hdf5"
    if path.exists():
        return read_hdf5(path, name)
    if sub is not None:
        folder = _find_raw(sub)
        if folder is not None:
            ds = _build_local(name, sub, folder, metric)
            write_hdf5(path, ds)
            return ds
        if name in LOCAL_ONLY:
            raise FileNotFoundError(
                f"{name} is built from raw {sub} files, not found in: "
                + ", ".join(map(str, raw_dirs(sub))) + " (set DEG_DATA_DIR)")
    if not download:
        raise FileNotFoundError(f"{name}: no cached file at {path} and download=False")
    size, sha = KNOWN_FILES.get(name, (None, None))
    fetch(ANN_URL.format(name=name), path, expected_size=size, sha256=sha, progress=progress)
    return read_hdf5(path, name)


# ---------------------------------------------------------------------------- download

def fetch(url, dest, *, expected_size=None, sha256=None, progress=True, timeout=60):
    """Download ``url`` to ``dest`` via ``dest.part``, resuming a partial file.

    The part file grows with HTTP Range requests; it is renamed into place only once its size
    matches what the server announced (and ``expected_size``) and, when given, its sha256.
    A short or mismatching download raises ``IOError`` and is never renamed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and expected_size == have:  # already complete
            response = None
        else:
            raise IOError(f"download of {url} failed: HTTP {e.code}") from None
    total = have
    if response is not None:
        with response:
            if response.status == 200:
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            _stream(response, part, have, total, progress, dest.name)
    got = part.stat().st_size
    if total is not None and got != total:
        raise IOError(f"download of {url} is truncated: {got} of {total} bytes "
                      f"(kept {part} to resume)")
    if expected_size is not None and got != expected_size:
        part.unlink()
        raise IOError(f"download of {url} has {got} bytes, expected {expected_size}")
    if sha256 is not None:
        digest = _sha256(part)
        if digest != sha256:
            part.unlink()
            raise IOError(f"download of {url} has sha256 {digest}, expected {sha256}")
    os.replace(part, dest)
    return dest


def _stream(response, part, have, total, progress, label):
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=label)
    try:
        with open(part, "ab" if have else "wb") as f:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            f.flush()
            os.fsync(f.fileno())
    except (OSError, http.client.HTTPException) as e:
        raise IOError(f"download interrupted ({e}); kept {part} to resume") from None
    finally:
        if bar is not None:
            bar.close()


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
