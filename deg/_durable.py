"""A durable index: an ``Index`` in a directory, with snapshots and a write-ahead log.

What the retrieval service (``deg.server``) stands on. The directory holds the newest
snapshot ``snapshot-<seq>.deg`` (an atomic ``Index.save``; ``seq`` is the last write it
holds), the log segments after it (``deg._wal``) and a lock file, so that two services never
share a directory. A write is checked completely, appended to the log, applied to the index
and acknowledged only once the log is on disk (``sync="request"``: one fsync per write, made
before the next write; ``"group"``: concurrent writers share fsyncs). On open, the newest
snapshot is loaded and the log replayed from it, stopping cleanly at a torn last record, so
``kill -9`` at any moment loses no acknowledged write.

Upserts: an add names labels that must be new (``LabelConflict`` otherwise) unless
``replace`` is set, in which case labels already present have their vectors replaced (their
vertex is removed and a new one added, as one log record).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading
import time
import warnings

import numpy as np

from deg import _dtypes as dtypes
from deg import _validation as check
from deg import _wal as wal
from deg import fileformat
from deg.index import Index

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

SYNC_MODES = ("group", "request")
IDLE = "idle"  # the write thread's priority: Linux's SCHED_IDLE class


class LabelConflict(ValueError):
    """Labels of an add that are already in the index, or repeated in one request."""


class Durable:
    """An index kept in ``directory``; see the module's docstring.

    ``params`` (``Index``'s keyword arguments, ``dim`` among them) create a new index when the
    directory holds none; for an existing one they must agree with it where given.
    ``snapshot_bytes``: a snapshot is taken in the background once the log holds this much.
    ``nice``: the CPU priority of the thread that applies writes (Linux), so that searches
    get the cores first: ``"idle"`` (``SCHED_IDLE``, the default) lets it run only where no
    other thread wants a core, and a search's thread takes its core at once on waking (at
    a nice value a woken request thread can wait out the writer's time slice: the one-client
    tail in bench/RESULTS.md); a number 0-19 lowers its nice value by that much instead (0:
    the same priority as searches).
    """

    def __init__(
        self,
        directory,
        params: dict | None = None,
        sync: str = "group",
        snapshot_bytes: int = 256 << 20,
        threads: int = 1,
        nice: int | str = IDLE,
    ):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        self.directory = os.path.abspath(os.fspath(directory))
        self.sync_mode = sync
        self.snapshot_bytes = check.check_int("snapshot_bytes", snapshot_bytes, minimum=1)
        self.threads = threads
        nice = write_priority(nice)
        self._applier = concurrent.futures.ThreadPoolExecutor(
            1, "deg-writes", initializer=_lower_priority, initargs=(nice,)
        )
        self._write = threading.Lock()  # one write (log append and apply) at a time
        self._snapshotting = threading.Lock()
        self.failed = None  # why writes are refused (an internal error while applying one)
        self.replayed = self.skipped = 0
        self.torn = None  # how the log ended at open, if not cleanly
        os.makedirs(self.directory, exist_ok=True)
        self._lock_fd = _lock_directory(self.directory)
        try:
            self._open(params or {})
        except BaseException:
            self._applier.shutdown()
            os.close(self._lock_fd)
            raise

    # ------------------------------------------------------------------ opening

    def _open(self, params: dict) -> None:
        snaps = _snapshots(self.directory)
        if not snaps:
            if "dim" not in params:
                raise ValueError(f"{self.directory} holds no index: give its dimension (--dim)")
            self.index = Index(**params)
            self.seq = 0
            self.index.save(os.path.join(self.directory, _snapshot_name(0)))
        else:
            self.seq, path = snaps[-1]
            self.index = Index.load(path)
            _check_params(self.index, params, path)
        self.snapshot_seq, self.snapshot_time = self.seq, time.time()
        self._replay()
        self._clean(self.snapshot_seq)

    def _replay(self) -> None:
        """Apply the log records after the snapshot; the last segment is then appended to."""
        segs = wal.segments(self.directory)
        last_first, valid = self.seq + 1, None
        for i, (first, path) in enumerate(segs):
            records, valid, why = wal.read_segment(path, self.index.dim)
            if why is not None and i < len(segs) - 1:
                raise ValueError(f"{path}: {why}, and later segments follow it")
            if why is not None:
                self.torn = f"{os.path.basename(path)}: {why}; the log is cut there"
            for rec in records:
                if rec.seq <= self.seq:
                    continue  # in the snapshot already
                if rec.seq != self.seq + 1:
                    raise ValueError(f"{path}: record {rec.seq} follows {self.seq}")
                try:
                    self._apply(rec.op, rec.labels, rec.vectors)
                    self.replayed += 1
                except (ValueError, KeyError) as e:  # refused when it was written, too
                    warnings.warn(f"log record {rec.seq} skipped: {e}", stacklevel=2)
                    self.skipped += 1
                self.seq = rec.seq
            last_first = first
        self.log = wal.Log(self.directory, last_first, self.seq, valid if segs else None)
        self.log_records = self.seq - self.snapshot_seq

    # ------------------------------------------------------------------ writes

    def add(self, labels, vectors, replace: bool = False) -> dict:
        """Add (or with ``replace``, upsert) ``vectors`` under ``labels`` (None: new labels
        after the largest so far); returns the labels, how many replaced and the sequence
        number, once the write is on disk."""
        with self._writing():
            x = self._checked_vectors(vectors)
            store = self.index.internals().store
            if labels is None:
                arr = store.default_labels(x.shape[0])
            else:
                arr = check.lookup_labels(labels)
                repeat = check.first_repeat(arr)
                if repeat is not None:
                    raise LabelConflict(f"label {repeat} is repeated")
                arr = check.as_labels(arr, x.shape[0])
            present = np.array([label in self.index for label in arr.tolist()], dtype=bool)
            if present.any() and not replace:
                raise LabelConflict(
                    f"label {arr[present][0].item()} is already in the index "
                    "(to replace its vector, upsert)"
                )
            if len(self.index) - present.sum() + arr.shape[0] > check.MAX_VERTICES:
                raise ValueError(f"an index holds at most {check.MAX_VERTICES} vectors")
            seq = self._log_and_apply(wal.UPSERT if replace else wal.ADD, arr, x)
        self._synced(seq)
        return {"labels": arr, "replaced": int(present.sum()), "seq": seq}

    def remove(self, labels) -> dict:
        """Remove ``labels`` (all present, distinct: ``KeyError`` / ``LabelConflict``)."""
        with self._writing():
            arr = check.lookup_labels(labels)
            repeat = check.first_repeat(arr)
            if repeat is not None:
                raise LabelConflict(f"label {repeat} is repeated")
            self.index.internals().store.vids(arr)  # KeyError naming an unknown label
            seq = self._log_and_apply(wal.REMOVE, arr, None)
        self._synced(seq)
        return {"removed": int(arr.shape[0]), "seq": seq}

    @contextlib.contextmanager
    def _writing(self):
        with self._write:
            if self.failed is not None:
                raise RuntimeError(f"writes are refused: {self.failed}; restart the service")
            yield

    def _checked_vectors(self, vectors) -> np.ndarray:
        """What ``Index.add`` would take, checked before anything is logged (an add may still
        refuse rows: see ``_log_and_apply``)."""
        p = self.index
        x, unit = dtypes.addable(vectors, p.dim, p.metric, p.dtype, "vectors")  # logged as sent
        parts = p.internals()
        if p.dtype == "float16" and parts.basis.rotated:  # rows that overflow once rotated
            p._builder.rotated_rows(unit, parts.basis.yt, parts.basis.tt, "vector")
        return x

    def _log_and_apply(self, op, labels, vectors) -> int:
        seq = self.seq + 1
        record = wal.encode(op, seq, labels, vectors)
        size = self.log.bytes
        self.log.append(record, seq)
        if self.sync_mode == "request":
            self.log.sync(seq)
        n_before = len(self.index)
        try:
            self._applier.submit(self._apply, op, labels, vectors).result()
        except BaseException as e:
            # Index.add refuses bad rows before it changes anything (the rotation's overflow
            # check comes first only when this add fits the basis): a clean refusal then
            clean = op == wal.ADD and isinstance(e, ValueError) and len(self.index) == n_before
            try:
                self.log.cut(seq - 1, size)
            except OSError:
                clean = False
            if not clean:
                self.failed = f"applying write {seq} failed ({e!r})"  # may be half-applied
            raise
        self.seq = seq
        self.log_records += 1
        return seq

    def _apply(self, op, labels, vectors) -> None:
        index = self.index
        if op == wal.REMOVE:
            index.remove(labels)
            return
        if op == wal.UPSERT:
            present = [label for label in labels.tolist() if label in index]
            if present:
                index.remove(present)
        index.add(vectors, labels=labels, threads=self.threads)

    def _synced(self, seq: int) -> None:
        try:
            self.log.sync(seq)
        except OSError as e:  # what the log holds after a failed fsync is not known
            self.failed = f"the write-ahead log failed ({e!r})"
            raise RuntimeError(f"writes are refused: {self.failed}; restart the service") from e
        if self.log.bytes >= self.snapshot_bytes and not self._snapshotting.locked():
            threading.Thread(target=self._background_snapshot, daemon=True).start()

    def _background_snapshot(self) -> None:
        with contextlib.suppress(Exception):  # the next write tries again
            self.snapshot(blocking=False)

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, blocking: bool = True) -> dict:
        """Save the index as of the last write, then start a new log segment and delete the
        older segments and snapshots. Writers wait while it runs; searches do not."""
        if not self._snapshotting.acquire(blocking=blocking):
            return {"seq": self.snapshot_seq, "skipped": "a snapshot is running"}
        try:
            with self._writing():  # never a state a failed write may have left half-changed
                start = time.perf_counter()
                seq = self.seq
                self.log.sync(seq)
                if seq != self.snapshot_seq:
                    self.index.save(os.path.join(self.directory, _snapshot_name(seq)))
                    old = self.log
                    self.log = wal.Log(self.directory, seq + 1, seq)
                    old.close()
                    self.snapshot_seq, self.snapshot_time = seq, time.time()
                    self.log_records = 0
                    self._clean(seq)
                return {"seq": seq, "seconds": round(time.perf_counter() - start, 3)}
        finally:
            self._snapshotting.release()

    def _clean(self, seq: int) -> None:
        """Delete snapshots older than ``seq`` and the segments they alone needed."""
        for s, path in _snapshots(self.directory):
            if s < seq:
                os.unlink(path)
        current = os.path.basename(self.log.path)
        for first, path in wal.segments(self.directory):
            if first <= seq and os.path.basename(path) != current:
                os.unlink(path)
        fileformat.fsync_directory(self.directory)

    # ------------------------------------------------------------------ state

    def stats(self) -> dict:
        return {
            "seq": self.seq,
            "wal_records": self.log_records,
            "wal_bytes": self.log.bytes,
            "wal_fsyncs": self.log.syncs,
            "sync": self.sync_mode,
            "last_snapshot": {"seq": self.snapshot_seq, "time": self.snapshot_time},
            "replayed_at_start": self.replayed,
            "skipped_at_start": self.skipped,
            "torn_tail_at_start": self.torn,
            "writes_refused": self.failed,
        }

    def close(self, snapshot: bool = True) -> None:
        """Take a last snapshot (if asked and anything changed), then release the
        directory."""
        try:
            if snapshot and self.failed is None:
                self.snapshot()
        finally:
            self._applier.shutdown()
            self.log.close()
            os.close(self._lock_fd)


def write_priority(nice) -> int | str:
    """``nice`` checked: ``"idle"`` or a nice increment 0-19."""
    if nice == IDLE:
        return IDLE
    if isinstance(nice, str):
        raise ValueError(f"nice must be {IDLE!r} or an integer 0-19, got {nice!r}")
    return check.check_int("nice", nice, minimum=0, maximum=19)


def _lower_priority(nice: int | str) -> None:
    """Lower this thread's CPU priority: to ``SCHED_IDLE`` or by ``nice`` (Linux schedules
    threads one by one; elsewhere this may lower the whole process's or fail, then nothing
    changes)."""
    if not nice or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError, AttributeError):
        if nice == IDLE:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.setpriority(os.PRIO_PROCESS, tid, nice)


def _snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.deg"


def _snapshots(directory: str) -> list:
    out = []
    for name in os.listdir(directory):
        if name.startswith("snapshot-") and name.endswith(".deg") and name[9:-4].isdigit():
            out.append((int(name[9:-4]), os.path.join(directory, name)))
    return sorted(out)


def _lock_directory(directory: str) -> int:
    fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(f"{directory} is in use by another deg service") from None
    return fd


def _check_params(index: Index, params: dict, path: str) -> None:
    for name, value in params.items():
        have = getattr(index, name, None)
        if value is not None and have is not None and have != value:
            raise ValueError(f"{path} holds an index with {name}={have!r}, not {value!r}")
