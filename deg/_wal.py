"""The write-ahead log of the retrieval service (``deg.server``): every add, upsert and removal
as a length-prefixed, checksummed record, on disk before the write is acknowledged.

A log is a series of segment files ``wal-<first seq>.log`` in the service's directory; a
snapshot at sequence number S (``deg._durable``) starts a new segment at S + 1 and the older
ones are deleted. A record is a 16-byte header (magic, payload length, CRC-32 of the payload,
zero) and a payload (operation, sequence number, row count m, dimension, then m int64 labels
and, for an add or upsert, m * dim float32 values), all little-endian. A crash can leave only
the last record of the last segment torn; reading stops cleanly there and the segment is cut
back to its last whole record before anything is appended.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from typing import NamedTuple

import numpy as np

from deg.fileformat import fsync_directory

MAGIC = b"DEGW"
HEADER = struct.Struct("<4sIII")  # magic, payload length, crc32, reserved
FIXED = struct.Struct("<B7xQQQ")  # op, seq, m, dim
ADD, REMOVE, UPSERT = 1, 2, 3
OPS = {ADD: "add", REMOVE: "remove", UPSERT: "upsert"}
MAX_PAYLOAD = (1 << 32) - 1  # what the length field holds


class Record(NamedTuple):
    op: int
    seq: int
    labels: np.ndarray  # int64 (m,)
    vectors: np.ndarray | None  # float32 (m, dim), None for a removal


def encode(op: int, seq: int, labels: np.ndarray, vectors: np.ndarray | None) -> bytes:
    """One record's bytes (header and payload)."""
    labels = np.ascontiguousarray(labels, dtype="<i8")
    dim = 0 if vectors is None else vectors.shape[1]
    parts = [FIXED.pack(op, seq, labels.shape[0], dim), labels.tobytes()]
    if vectors is not None:
        parts.append(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a write of {len(payload)} bytes is too large for one log record")
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload), 0) + payload


def decode(payload: bytes, dim: int) -> Record:
    """A record from its payload (checksum already checked); ``ValueError`` if it does not
    describe a write to an index of dimension ``dim``."""
    if len(payload) < FIXED.size:
        raise ValueError("log record shorter than its fixed part")
    op, seq, m, rec_dim = FIXED.unpack_from(payload)
    if op not in OPS:
        raise ValueError(f"log record {seq}: unknown operation {op}")
    want_dim = 0 if op == REMOVE else dim
    if rec_dim != want_dim or len(payload) != FIXED.size + 8 * m + 4 * m * rec_dim:
        raise ValueError(f"log record {seq}: its sizes do not match (m={m}, dim={rec_dim})")
    labels = np.frombuffer(payload, dtype="<i8", count=m, offset=FIXED.size).astype(np.int64)
    vectors = None
    if op != REMOVE:
        vectors = np.frombuffer(
            payload, dtype="<f4", count=m * dim, offset=FIXED.size + 8 * m
        ).reshape(m, dim)
    return Record(op, seq, labels, vectors)


def segment_name(first_seq: int) -> str:
    return f"wal-{first_seq:020d}.log"


def segments(directory: str) -> list:
    """``(first seq, path)`` of every segment in the directory, in order."""
    out = []
    for name in os.listdir(directory):
        if name.startswith("wal-") and name.endswith(".log"):
            digits = name[4:-4]
            if digits.isdigit():
                out.append((int(digits), os.path.join(directory, name)))
    return sorted(out)


def read_segment(path: str, dim: int) -> tuple[list, int, str | None]:
    """The whole records of one segment, the byte length they take, and why reading stopped
    before the end of the file (None: it did not)."""
    with open(path, "rb") as f:
        data = f.read()
    records, pos = [], 0
    while pos < len(data):
        if len(data) - pos < HEADER.size:
            return records, pos, f"torn header at byte {pos}"
        magic, length, crc, _ = HEADER.unpack_from(data, pos)
        if magic != MAGIC:
            return records, pos, f"no record magic at byte {pos}"
        end = pos + HEADER.size + length
        if end > len(data):
            return records, pos, f"torn record at byte {pos} ({len(data) - pos} of {end - pos})"
        payload = data[pos + HEADER.size : end]
        if zlib.crc32(payload) != crc:
            if end < len(data):  # a torn write is the last thing in the file, never followed
                raise ValueError(
                    f"{path}: checksum mismatch in the record at byte {pos}, with "
                    f"{len(data) - end} bytes after it: the log is damaged, not torn"
                )
            return records, pos, f"checksum mismatch in the last record (byte {pos})"
        records.append(decode(payload, dim))
        pos = end
    return records, pos, None


class Log:
    """The segment being appended to, and group commit: ``sync(seq)`` returns once record
    ``seq`` is on disk, and one fsync covers every record written before it started, so
    concurrent writers share fsyncs. ``append`` is called by one writer at a time (the
    service's write lock); ``sync`` by any number of threads."""

    def __init__(
        self, directory: str, first_seq: int, last_seq: int, valid_bytes: int | None = None
    ):
        """Append to the segment starting at ``first_seq`` (created if absent) whose records
        so far end with ``last_seq`` (on disk: synced here), cut to ``valid_bytes`` (its whole
        records) if given."""
        self.directory = directory
        self.path = os.path.join(directory, segment_name(first_seq))
        created = not os.path.exists(self.path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if valid_bytes is not None and os.fstat(self.fd).st_size != valid_bytes:
            os.ftruncate(self.fd, valid_bytes)  # a torn tail: cut before appending
            os.fsync(self.fd)
        os.fsync(self.fd)
        if created:
            fsync_directory(directory)
        self.bytes = os.fstat(self.fd).st_size
        self._cond = threading.Condition()
        self._written = self._synced = last_seq  # seq of the last record written / synced
        self._syncing = False
        self.broken = None  # a failed write or fsync: nothing after it can be promised
        self.syncs = 0  # fsyncs made, for the service's statistics

    def append(self, record: bytes, seq: int) -> None:
        """Write a record (not yet synced). On a failed or short write the segment is cut back
        to where it was, so no partial record is followed by another."""
        if self.broken is not None:
            raise OSError(f"the log failed before: {self.broken}")
        at = self.bytes
        try:
            written = os.write(self.fd, record)
            if written != len(record):
                raise OSError(f"short write to the log ({written} of {len(record)} bytes)")
        except BaseException as e:
            try:
                os.ftruncate(self.fd, at)
            except OSError:
                self.broken = repr(e)
            raise
        self.bytes = at + len(record)
        with self._cond:
            self._written = seq

    def cut(self, seq: int, size: int) -> None:
        """Drop the record after byte ``size``, the last one written (a write that could not
        be applied); ``seq`` is the record before it. The caller holds the write lock, so
        no other record follows it."""
        os.ftruncate(self.fd, size)
        os.fsync(self.fd)
        self.bytes = size
        with self._cond:
            self._written = self._synced = seq
            self._cond.notify_all()

    def sync(self, seq: int) -> None:
        """Return once every record up to ``seq`` is on disk."""
        with self._cond:
            while self._synced < seq:
                if self.broken is not None:  # Linux may drop the pages of a failed fsync
                    raise OSError(f"the log failed before: {self.broken}")
                if seq > self._written:
                    raise ValueError(f"record {seq} was never written (an internal error)")
                if self._syncing:  # another writer's fsync may cover this record too
                    self._cond.wait()
                    continue
                self._syncing = True
                target = self._written
                self._cond.release()
                try:
                    os.fsync(self.fd)
                except BaseException as e:
                    self.broken = repr(e)
                    raise
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                self._synced = max(self._synced, target)
                self.syncs += 1

    def close(self) -> None:
        os.close(self.fd)
