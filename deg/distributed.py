"""``deg.distributed.ShardedIndex``: a collection split over several ``deg.Index`` shards, each
held by a Ray actor (``pip install 'dynamic-exploration-graph[distributed]'``).

``ray.init()`` starts a local cluster (tests, one machine); ``ray.init(address="auto")`` or
``ray.init(address="ray://head:10001")`` joins a real one, where the actors are spread over
the nodes. Vectors go to a shard by a hash of their label (default) or of a caller's shard
key; searches fan out to every shard (one ``ray.put`` of the queries) and the shards' top-k
are merged into the global top-k, in ``Index.search``'s format. Each shard is a whole DEG of
its own: removals repair it, filters pass through, and ``save``/``load`` write one file per
shard plus a manifest, atomically. A shard whose actor died raises ``ShardUnavailable``
naming it; ``recover()`` reloads dead shards from the last ``save`` (writes since then are
lost unless a write-ahead log, such as ``deg serve``'s, is in front of the index).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np

from deg import _dtypes as dtypes
from deg import _validation as check
from deg import fileformat

try:
    import ray
except ImportError as e:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "deg.distributed needs Ray: pip install 'dynamic-exploration-graph[distributed]'"
    ) from e

MANIFEST = "manifest.json"
INLINE_BYTES = 64 << 10  # queries up to this size travel with each shard's call
START_SECONDS = 120  # for the shards' actors to start (they import deg and load their file)
CALL_SECONDS = 600.0  # the default call_timeout: a shard that hangs fails a call, not the caller
FORMAT = 1
_MIX = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's constants: an even spread of any labels


class ShardUnavailable(RuntimeError):
    """A shard's actor died or cannot be reached; ``recover()`` reloads it from its save."""

    def __init__(self, shard: int, cause: BaseException):
        super().__init__(
            f"shard {shard} is unavailable ({type(cause).__name__}: {cause}); call recover() "
            "to reload it from the last save (writes to it since then are lost)"
        )
        self.shard = shard


class ShardTimeout(ShardUnavailable):
    """A shard did not answer within ``call_timeout`` seconds (its call may still finish)."""

    def __init__(self, shard: int, seconds: float):
        RuntimeError.__init__(
            self,
            f"shard {shard} did not answer within {seconds} s (call_timeout); its call may "
            "still complete, so a write to it may or may not have happened",
        )
        self.shard = shard


def shard_of(keys, shards: int) -> np.ndarray:
    """The shard (0..shards-1) of each int64 key: splitmix64 of the key, modulo ``shards``."""
    z = np.asarray(keys, dtype=np.int64).astype(np.uint64) + _MIX
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(shards)).astype(np.int64)


@ray.remote
class _Shard:
    """One shard: a ``deg.Index`` in an actor. Calls run one at a time (Ray's default), each
    kernel on ``threads`` threads."""

    def __init__(self, params: dict | None, path: str | None, threads: int):
        import deg

        self.threads = threads
        self.index = deg.Index.load(path) if path else deg.Index(**params)

    def add(self, data, rows, labels):
        x = data if rows is None else data[rows]
        self.index.add(x, labels=labels, threads=self.threads)
        return len(self.index)

    def remove(self, labels):
        self.index.remove(labels)
        return len(self.index)

    def contains(self, labels):
        index = self.index
        return np.fromiter((int(v) in index for v in labels), dtype=bool, count=len(labels))

    def search(self, queries, k, eps, filter, exclude, recall=None):
        return self.index.search(
            queries,
            k=k,
            eps=eps,
            recall=recall,
            threads=self.threads,
            filter=filter,
            exclude=exclude,
        )

    def explore(self, labels, k, eps, include_entry, filter, exclude, recall=None):
        return self.index.explore(
            labels,
            k=k,
            eps=eps,
            recall=recall,
            include_entry=include_entry,
            threads=self.threads,
            filter=filter,
            exclude=exclude,
        )

    def get_vectors(self, labels):
        return self.index.get_vectors(labels).astype(np.float32)

    def info(self):
        index = self.index
        labels = index.labels
        return {
            "n": len(index),
            "nbytes": index.nbytes,
            "max_label": int(labels.max()) if labels.size else -1,
        }

    def save(self, path):
        self.index.save(path)
        return path


class ShardedIndex:
    """``shards`` DEG indices over Ray actors; ``params`` go to each shard's ``Index``.

    ``threads``: kernel threads per shard (default 1: shards search in parallel with one
    another). ``cpus_per_shard``: Ray CPUs each actor reserves (default: 1, or the cluster's
    CPUs shared out when there are more shards than CPUs). ``call_timeout``: seconds any
    call waits for its shards (default None: ``CALL_SECONDS``; ``float("inf")``: no limit)
    before it raises ``ShardTimeout`` naming the first shard that did not answer. An add that
    fails on a shard is taken back from the shards that made it (all or nothing).
    """

    def __init__(
        self,
        dim: int,
        shards: int = 2,
        metric: str = "l2",
        threads: int = 1,
        cpus_per_shard: float | None = None,
        call_timeout: float | None = None,
        **params,
    ):
        self.shards = check.check_int("shards", shards, minimum=1, maximum=4096)
        self.threads = check.check_int("threads", threads, minimum=1, maximum=1024)
        self.call_timeout = _timeout(call_timeout)
        import deg

        probe = deg.Index(dim, metric=metric, **params)  # bad parameters raise here
        # as the index holds them (numpy types to plain ones): a manifest is JSON
        plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
        self.params = {**plain, "dim": probe.dim, "metric": probe.metric, "dtype": probe.dtype}
        self._cpus = _cpus(self.shards, cpus_per_shard)
        self._saved = None  # the directory and files of the last save or load
        self.next_label = 0
        self._actors = [self._start(None) for _ in range(self.shards)]
        self._ready(range(self.shards))

    def _start(self, path):
        opts = {"num_cpus": self._cpus}
        return _Shard.options(**opts).remote(self.params, path, self.threads)

    def _ready(self, shards) -> None:
        """Wait until the shards' actors run; an actor Ray cannot place (each reserves
        ``cpus_per_shard`` CPUs) would otherwise leave every call waiting for ever."""
        refs = {s: self._actors[s].info.remote() for s in shards}
        _, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=START_SECONDS)
        if pending:
            late = [s for s, ref in refs.items() if ref in pending]
            raise RuntimeError(
                f"shards {late} did not start within {START_SECONDS} s: each actor reserves "
                f"{self._cpus} CPUs (cpus_per_shard) and the cluster has "
                f"{ray.available_resources().get('CPU', 0)} free"
            )
        self._wait(refs)

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        data,
        labels=None,
        shards: int = 2,
        shard_keys=None,
        threads: int = 1,
        **params,
    ) -> ShardedIndex:
        """Build ``shards`` shards over ``data`` (n, dim) in parallel (one ``ray.put`` of the
        data; each actor takes its rows from the object store)."""
        arr = np.asarray(data)
        if arr.ndim != 2:
            raise ValueError(f"data must be 2-D (n, dim), got shape {arr.shape}")
        index = cls(arr.shape[1], shards=shards, threads=threads, **params)
        index.add(arr, labels=labels, shard_keys=shard_keys)
        return index

    def add(self, data, labels=None, shard_keys=None) -> np.ndarray:
        """Insert vectors into their shards (by label hash, or by ``shard_keys``: one int per
        vector); returns their labels. Labels must be new to every shard."""
        p = self.params
        # what every shard's Index.add would refuse, refused before any shard changes; the
        # rows are sent as given: each shard normalises
        x, _ = dtypes.addable(data, p["dim"], p["metric"], p["dtype"], "data")
        m = x.shape[0]
        if labels is None:
            if self.next_label + m - 1 > check.MAX_LABEL:
                raise ValueError(f"default labels would pass {check.MAX_LABEL}; pass labels")
            new = np.arange(self.next_label, self.next_label + m, dtype=np.int64)
        else:
            new = check.as_labels(labels, m)
            present = self._present(new)
            if present.any():
                raise ValueError(f"label {new[present][0].item()} is already in the index")
        keys = new if shard_keys is None else check.lookup_labels(shard_keys, "shard_keys")
        if keys.shape[0] != m:
            raise ValueError(f"{keys.shape[0]} shard keys for {m} vectors")
        owner = shard_of(keys, self.shards)
        if m:  # taken even if a shard fails below: no later add reuses them
            self.next_label = max(self.next_label, int(new.max()) + 1)
        ref = ray.put(x)
        calls = {}
        for s in range(self.shards):
            rows = np.flatnonzero(owner == s)
            if rows.size:
                calls[s] = self._actors[s].add.remote(ref, rows, new[rows])
        done, failed = self._settle(calls)
        if failed:  # the shards that took their rows give them back: all or nothing
            undo = {s: self._actors[s].remove.remote(new[owner == s]) for s in done}
            _, stuck = self._settle(undo)
            error = next(iter(failed.values()))
            if stuck:
                raise RuntimeError(
                    f"an add failed on shard {next(iter(failed))} ({error}) and could not be "
                    f"undone on shards {sorted(stuck)}: they hold its rows"
                ) from error
            raise error
        return new

    def remove(self, labels) -> None:
        """Remove labels from their shards; unknown labels raise ``KeyError`` first."""
        arr = check.lookup_labels(labels)
        repeat = check.first_repeat(arr)
        if repeat is not None:
            raise ValueError(f"labels to remove contain duplicates, e.g. {repeat}")
        owner = self._owners(arr)
        self._wait(
            {
                s: self._actors[s].remove.remote(arr[owner == s])
                for s in range(self.shards)
                if (owner == s).any()
            }
        )

    # ------------------------------------------------------------------ queries

    def search(
        self,
        queries,
        k: int = 10,
        eps: float | None = None,
        filter=None,
        exclude=None,
        recall: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each shard's top-k of each query, merged: ``Index.search``'s labels and distances
        (padding label -1, distance inf). ``filter``/``exclude`` go to every shard, and so
        does ``recall`` (each shard meets it on its own part: every global neighbour is in
        its shard's top-k, found there with that recall)."""
        k = check.check_int("k", k, minimum=1, maximum=check.MAX_K)
        q = np.asarray(queries, dtype=np.float32)
        q = q.reshape(1, -1) if q.ndim == 1 else q
        # one copy in the object store for all shards; a few queries go inline with the calls
        ref = ray.put(q) if q.nbytes > INLINE_BYTES else q
        calls = {s: a.search.remote(ref, k, eps, filter, exclude, recall) for s, a in self._live()}
        return _merge(list(self._wait(calls).values()), k)

    def explore(
        self,
        entry_labels,
        k: int = 10,
        eps: float | None = None,
        include_entry: bool = False,
        filter=None,
        exclude=None,
        recall: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Neighbourhoods of stored vectors: explored on the shard holding each entry, and
        searched with its vector on the others, merged. ``eps`` defaults to 0 on both;
        ``recall`` is met by each shard's own calibration, of explorations or searches."""
        if eps is None and recall is None:
            eps = 0.0
        k = check.check_int("k", k, minimum=1, maximum=check.MAX_K)
        arr = check.lookup_labels(entry_labels, "entry_labels")
        owner = self._owners(arr)
        vectors = self.get_vectors(arr, owner)
        parts_l = np.full((arr.shape[0], self.shards * k), -1, dtype=np.int64)
        parts_d = np.full((arr.shape[0], self.shards * k), np.inf, dtype=np.float32)
        calls = {}
        for s in range(self.shards):
            mine = np.flatnonzero(owner == s)
            others = np.flatnonzero(owner != s)
            a = self._actors[s]
            if mine.size:
                f, e = _rows_of(filter, mine), _rows_of(exclude, mine)
                own = a.explore.remote(arr[mine], k, eps, include_entry, f, e, recall)
                calls[(s, "own")] = (mine, own)
            if others.size:
                f, e = _rows_of(filter, others), _rows_of(exclude, others)
                other = a.search.remote(vectors[others], k, eps, f, e, recall)
                calls[(s, "other")] = (others, other)
        got = self._wait({key: ref for key, (_, ref) in calls.items()})
        for key, (rows, _) in calls.items():
            lab, dist = got[key]
            s = key[0]
            parts_l[rows, s * k : (s + 1) * k] = _pad(lab, k, -1)
            parts_d[rows, s * k : (s + 1) * k] = _pad(dist, k, np.inf)
        return _merge([(parts_l, parts_d)], k)

    def get_vectors(self, labels, owner=None) -> np.ndarray:
        """Stored vectors (m, dim) float32, from their shards."""
        arr = check.lookup_labels(labels)
        owner = self._owners(arr) if owner is None else owner
        out = np.empty((arr.shape[0], self.params["dim"]), dtype=np.float32)
        calls = {
            s: self._actors[s].get_vectors.remote(arr[owner == s])
            for s in range(self.shards)
            if (owner == s).any()
        }
        for s, rows in self._wait(calls).items():
            out[owner == s] = rows
        return out

    def __len__(self) -> int:
        return sum(i["n"] for i in self._info())

    def __contains__(self, label) -> bool:
        key = check.label_key(label)
        return key is not None and bool(self._present(np.array([key], dtype=np.int64))[0])

    @property
    def nbytes(self) -> int:
        return sum(i["nbytes"] for i in self._info())

    @property
    def sizes(self) -> list:
        """Vectors per shard."""
        return [i["n"] for i in self._info()]

    # ------------------------------------------------------------------ persistence

    def save(self, directory) -> None:
        """One file per shard (``shard-<i>.deg``, each an atomic ``Index.save``) and then the
        manifest, written atomically: a load sees the old manifest or the new one. The
        directory must be reachable from every node holding a shard (shared storage)."""
        directory = os.path.abspath(os.fspath(directory))
        os.makedirs(directory, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        files = [f"shard-{s}-{stamp}.deg" for s in range(self.shards)]
        calls = {
            s: a.save.remote(os.path.join(directory, files[s])) for s, a in enumerate(self._actors)
        }
        self._wait(calls)
        manifest = {
            "format": FORMAT,
            "shards": self.shards,
            "files": files,
            "params": self.params,
            "threads": self.threads,
            "next_label": self.next_label,
        }
        text = json.dumps(manifest, indent=1)  # before anything is replaced
        _write_atomic(os.path.join(directory, MANIFEST), text)
        for name in os.listdir(directory):  # earlier saves' files: nothing names them now
            if name.startswith("shard-") and name.endswith(".deg") and name not in files:
                os.unlink(os.path.join(directory, name))
        self._saved = (directory, files)

    @classmethod
    def load(
        cls, directory, threads: int | None = None, cpus_per_shard=None, call_timeout=None
    ) -> ShardedIndex:
        """The index a ``save`` wrote to ``directory`` (each shard loaded in its actor)."""
        directory = os.path.abspath(os.fspath(directory))
        manifest = _read_manifest(directory)
        self = cls.__new__(cls)
        self.call_timeout = _timeout(call_timeout)
        self.shards = manifest["shards"]
        self.threads = threads or manifest["threads"]
        self.params = manifest["params"]
        self.next_label = manifest["next_label"]
        self._cpus = _cpus(self.shards, cpus_per_shard)
        self._saved = (directory, manifest["files"])
        self._actors = [self._start(os.path.join(directory, f)) for f in manifest["files"]]
        self._ready(range(self.shards))
        return self

    def recover(self) -> list:
        """Reload every shard whose actor died from the last save; returns their numbers."""
        dead = []
        for s, a in enumerate(self._actors):
            try:
                ray.get(a.info.remote(), timeout=START_SECONDS)
            except ray.exceptions.ActorDiedError:
                dead.append(s)
        if dead and self._saved is None:
            raise RuntimeError(f"shards {dead} died and the index was never saved")
        if dead:
            directory, files = self._saved  # this index's own save, whatever saved since
            missing = [f for f in files if not os.path.exists(os.path.join(directory, f))]
            if missing:
                raise RuntimeError(f"the save to recover from is gone from {directory}: {missing}")
            for s in dead:
                ray.kill(self._actors[s], no_restart=True)
                self._actors[s] = self._start(os.path.join(directory, files[s]))
            self._ready(dead)
        return dead

    def close(self) -> None:
        """End the shards' actors (what was not saved is gone)."""
        for a in self._actors:
            ray.kill(a)
        self._actors = []

    # ------------------------------------------------------------------ helpers

    def _live(self):
        return list(enumerate(self._actors))

    def _wait(self, calls: dict) -> dict:
        """The results of ``{key: object ref}`` (a key is a shard or a tuple starting with
        one); the first failure, in key order, is raised: ``ShardUnavailable`` for a dead
        actor, ``ShardTimeout`` past ``call_timeout``, or the shard's own error."""
        done, failed = self._settle(calls)
        if failed:
            raise next(iter(failed.values()))
        return done

    def _settle(self, calls: dict) -> tuple[dict, dict]:
        """Every call's outcome, ``({key: value}, {key: exception})`` in key order, waiting
        at most ``call_timeout`` seconds for all of them together."""
        keys = list(calls)
        refs = [calls[key] for key in keys]
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=self.call_timeout)
        late = set(pending)
        done, failed = {}, {}
        for key, ref in zip(keys, refs):
            shard = key[0] if isinstance(key, tuple) else key
            if ref in late:
                failed[key] = ShardTimeout(shard, self.call_timeout)
                continue
            try:
                done[key] = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                failed[key] = ShardUnavailable(shard, e)
            except ray.exceptions.RayTaskError as e:  # the shard's own error, e.g. a KeyError
                failed[key] = e.as_instanceof_cause()
        return done, failed

    def _info(self) -> list:
        got = self._wait({s: a.info.remote() for s, a in enumerate(self._actors)})
        return [got[s] for s in range(self.shards)]

    def _present(self, labels: np.ndarray) -> np.ndarray:
        return self._holders(labels) >= 0

    def _owners(self, labels: np.ndarray) -> np.ndarray:
        """The shard holding each label; ``KeyError`` naming the first held by none."""
        owner = self._holders(labels)
        if (owner < 0).any():
            raise KeyError(f"label {labels[owner < 0][0].item()} is not in the index")
        return owner

    def _holders(self, labels: np.ndarray) -> np.ndarray:
        """The shard holding each label, -1 for none (every shard asked at once)."""
        got = self._wait({s: a.contains.remote(labels) for s, a in enumerate(self._actors)})
        owner = np.full(labels.shape[0], -1, dtype=np.int64)
        for s in range(self.shards):
            owner[got[s]] = s
        return owner


def _rows_of(spec, rows):
    """A filter for the queries ``rows``: a per-query sequence cut to them, else as it is."""
    from deg._filtering import _is_sequence_of_sets

    if spec is None or not _is_sequence_of_sets(spec):
        return spec
    if isinstance(spec, np.ndarray):
        return spec[rows]
    return [spec[i] for i in rows.tolist()]


def _pad(a: np.ndarray, k: int, fill) -> np.ndarray:
    if a.shape[1] >= k:
        return a[:, :k]
    out = np.full((a.shape[0], k), fill, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


def _merge(parts: list, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k least distances of each row over every part's (labels, distances)."""
    labels = np.concatenate([p[0] for p in parts], axis=1)
    dists = np.concatenate([p[1] for p in parts], axis=1)
    order = np.argsort(dists, axis=1, kind="stable")[:, :k]
    out_l = np.take_along_axis(labels, order, axis=1)
    out_d = np.take_along_axis(dists, order, axis=1)
    if out_l.shape[1] < k:
        out_l, out_d = _pad(out_l, k, -1), _pad(out_d, k, np.inf)
    return out_l.astype(np.int64), out_d.astype(np.float32)


def _timeout(seconds) -> float | None:
    """A call timeout: None or a positive number of seconds (None given: ``CALL_SECONDS``)."""
    if seconds is None:
        return CALL_SECONDS
    if seconds == float("inf"):
        return None
    return check.check_float("call_timeout", seconds, minimum=1e-9)


def _cpus(shards: int, cpus_per_shard) -> float:
    if cpus_per_shard is not None:
        return float(cpus_per_shard)
    total = ray.cluster_resources().get("CPU", 1.0)
    return min(1.0, total / shards)


def _read_manifest(directory: str) -> dict:
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{directory} holds no sharded index ({MANIFEST} is missing)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a deg manifest: {e}") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), list):
        raise ValueError(f"{path}: unknown manifest format {manifest.get('format')!r}")
    if len(manifest["files"]) != manifest.get("shards"):
        raise ValueError(
            f"{path}: {len(manifest['files'])} files for {manifest.get('shards')} shards"
        )
    for name in manifest["files"]:
        if os.path.basename(name) != name or not os.path.exists(os.path.join(directory, name)):
            raise ValueError(f"{path} names a shard file that is not in {directory}: {name!r}")
    return manifest


def _write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fileformat.fsync_directory(folder)
