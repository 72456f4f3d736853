"""The deg index file format, version 7 (little-endian).

=======  ======  ===============================================================
offset   type    field
=======  ======  ===============================================================
0        8s      magic ``b"DEGINDEX"``
8        u32     format version (7; versions 1 to 6 are read too)
12       u32     metric code: 0 l2 (squared), 1 ip (1 - <a,b>), 2 cosine
16       u32     dim
20       u32     d (edges per vertex)
24       u64     n (vertices)
32       u32     length P of the parameter block (UTF-8 JSON)
36       u32     r, rows of the rotated basis (0: vectors in the input basis; version 3)
40       P       parameter JSON (construction parameters, next default label; from version 4
                 ``entry_tree``, the shapes of A8-A11: ``[m, t, w]`` in version 4,
                 ``[m, t, w, p]`` from version 5; from version 7 ``dtype``, the vectors'
                 type, which sets A1's: float32, float16 (as u16 bits), uint8 or int8)
...              zero padding to a multiple of 64
A1       dtype   vectors   (n, dim), row = internal id (f32 before version 7)
A2       i32     neighbors (n, d), internal ids, each row in search-view order
                           (deg._kernels.view; ascending ids before version 6)
A3       f32     weights   (n, d), distance of each edge, same order
A4       i64     labels    (n,), external label of each internal id
A5       u32     sig       (n,), each row's hash when it was last put in order (version 6;
                           a row whose hash differs is ordered again on load)
         u8      order     (n, d) in versions 2 to 5 instead: the search view as a
                           permutation of each (sorted) row's slots; applied on load. Version 1
                           has neither: the rows are ordered on load
A6       f32     rotation  (r, dim), reflection vectors of the stored basis (deg._basis)
A7       f32     rotation_t (r, r), its triangular factor ``tt`` (A6, A7 from version 3)
A8       i32     members   (m,), the search's entry tree (deg._kernels.entry_tree): vertex ids
A9       i32     pairs     (t, 2), each node's two places in ``members`` (from version 5)
A10      f32     planes    (p, w), the hyperplanes of the upper nodes (all t in version 4)
A11      f32     offsets   (t,) (A8, A10, A11 from version 4; the tree is drawn on load from
                           files before version 5)
end-8    u32     CRC-32 of every byte before it
end-4    4s      ``b"DEND"``
=======  ======  ===============================================================

Each array starts at the next multiple of 64 bytes after the previous one (zero padding), so a
memory map gives aligned views. Writing is atomic: a temporary file in the same folder
(``.deg-HASH-XXXXXXXX.tmp``, HASH from the target's name; locked while it is written) is
written, fsynced and renamed over the target, which keeps the mode the target had (a new
file: 0666 less the umask); temporary files that a killed writer left (unlocked) are removed
by the next save to the same target.
Reading checks magic, version, header values, the exact file size, the checksum and the array
contents, the graph itself included (``check_arrays``); it never unpickles anything.
"""

import glob
import json
import os
import stat
import struct
import tempfile
import zlib

import numpy as np

from deg import _basis as basis
from deg import _dtypes as dtypes
from deg import _pipeline
from deg import _validation as check
from deg._kernels import verify as kverify
from deg._kernels.distances import METRIC_CODES

try:
    import fcntl
except ImportError:  # not on Windows: leftover temporary files stay there
    fcntl = None

MAGIC = b"DEGINDEX"
VERSION = 7
READABLE = (1, 2, 3, 4, 5, 6, 7)
_HEADER = struct.Struct("<8sIIIIQII")
_TRAILER = struct.Struct("<I4s")
_END = b"DEND"
ALIGN = 64
_MAX_PARAMS = 1 << 20
_TMP = ".tmp"
_CHECK_PARTS = 16  # row ranges of the value checks, handed out to threads as they free up


def _align(x):
    return (x + ALIGN - 1) // ALIGN * ALIGN


def _layout(dim, d, n, params_len, version=VERSION, rank=0, tree=(0, 0, 0, 0), dtype="float32"):
    """Offsets of the arrays and the total file size; ``tree = (m, t, w, p)`` (p = t in
    version 4), ``dtype`` the vectors' (``deg._dtypes``)."""
    specs = [
        ("vectors", dtypes.STORED[dtype].newbyteorder("<"), (n, dim)),
        ("neighbors", "<i4", (n, d)),
        ("weights", "<f4", (n, d)),
        ("labels", "<i8", (n,)),
    ]
    if version >= 6:
        specs.append(("sig", "<u4", (n,)))
    elif version >= 2:
        specs.append(("order", "<u1", (n, d)))
    if version >= 3:
        specs += [("rotation", "<f4", (rank, dim)), ("rotation_t", "<f4", (rank, rank))]
    if version >= 4:
        m, t, w, p = tree
        specs.append(("members", "<i4", (m,)))
        if version >= 5:
            specs.append(("pairs", "<i4", (t, 2)))
        specs += [("planes", "<f4", (p, w)), ("offsets", "<f4", (t,))]
    pos = _align(_HEADER.size + params_len)
    out = []
    for name, dtype, shape in specs:
        out.append((name, np.dtype(dtype), shape, pos))
        pos = _align(pos + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return out, pos + _TRAILER.size


def write(path, metric, params, vectors, neighbors, weights, labels, sig, rotation=None, tree=None):
    """Atomically write an index file (arrays are the first n rows, C-contiguous);
    ``rotation = (yt, tt)`` is the stored basis, ``tree = (members, pairs, planes, offsets)``
    the entry tree (default: none of either)."""
    n, dim = vectors.shape
    d = neighbors.shape[1]
    if rotation is None:
        rotation = (np.zeros((0, dim), np.float32), np.zeros((0, 0), np.float32))
    if tree is None:
        tree = (
            np.zeros(0, np.int32),
            np.zeros((0, 2), np.int32),
            np.zeros((0, 0), np.float32),
            np.zeros(0, np.float32),
        )
    rank = rotation[0].shape[0]
    shapes = (tree[0].shape[0], tree[1].shape[0], tree[2].shape[1], tree[2].shape[0])
    vtype = params.get("dtype", "float32")
    blob = json.dumps(dict(params, entry_tree=shapes, dtype=vtype), sort_keys=True).encode()
    header = _HEADER.pack(MAGIC, VERSION, METRIC_CODES[metric], dim, d, n, len(blob), rank)
    layout, total = _layout(dim, d, n, len(blob), rank=rank, tree=shapes, dtype=vtype)
    arrays = {
        "vectors": vectors,
        "neighbors": neighbors,
        "weights": weights,
        "labels": labels,
        "sig": sig,
        "rotation": rotation[0],
        "rotation_t": rotation[1],
        "members": tree[0],
        "pairs": tree[1],
        "planes": tree[2],
        "offsets": tree[3],
    }
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = temp_prefix(path)
    remove_leftovers(folder, prefix)
    mode = _mode_for(path)
    fd, tmp = _locked_temp(folder, prefix)
    try:
        with os.fdopen(fd, "wb") as f:
            crc = 0
            pos = 0

            def put(buf):
                nonlocal crc, pos
                f.write(buf)
                crc = zlib.crc32(buf, crc)
                pos += len(buf)

            put(header)
            put(blob)
            for name, dtype, _, offset in layout:
                put(bytes(offset - pos))
                put(
                    memoryview(
                        np.ascontiguousarray(arrays[name], dtype=dtype).reshape(-1).view(np.uint8)
                    )
                )
            put(bytes(total - _TRAILER.size - pos))
            f.write(_TRAILER.pack(crc, _END))
            f.flush()
            os.fchmod(f.fileno(), mode)  # last: a killed save leaves a file we can open
            os.fsync(f.fileno())
            os.replace(tmp, path)  # while the lock is held: no cleaner takes it first
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(folder)


def fsync_directory(folder) -> None:
    """Make a file's creation, rename or deletion in ``folder`` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def temp_prefix(path):
    """The start of a save's temporary file names: a hash of the target's name, so that the
    name has a fixed length and no other target's files match it."""
    import hashlib

    digest = hashlib.sha256(os.path.basename(os.fspath(path)).encode()).hexdigest()[:16]
    return f".deg-{digest}-"


def _locked_temp(folder, prefix):
    """A new temporary file for a save, locked (the lock is held until it is closed, so
    ``remove_leftovers`` sees a live writer). A cleaner that took the file in the instant
    between its creation and the lock has unlinked it: then take another."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_TMP, dir=folder)
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while a cleaner holds it
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)


def _mode_for(path):
    """The mode a saved file gets: the one of the file it replaces, else 0666 less the umask
    (as ``open`` would create it; ``mkstemp`` makes 0600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o777  # not setuid, setgid, sticky
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask():
    try:  # read, not set: setting it would race with other threads creating files
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_leftovers(folder, prefix):
    """Delete the temporary files that killed saves of one target left in ``folder``: those
    whose lock no writer holds (a live save keeps its own locked). Best effort: a file that
    cannot be opened or removed stays."""
    if fcntl is None:
        return
    pattern = glob.escape(prefix) + "?" * 8 + _TMP  # mkstemp's 8 random characters
    for name in glob.glob(os.path.join(glob.escape(folder), pattern)):
        try:  # not a FIFO (opening one would block) or a link to follow
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(name)  # still locked by us: no writer can have taken it in between
        except OSError:
            pass  # a live writer holds it
        finally:
            os.close(fd)


def _bad(path, why):
    return ValueError(f"{os.fspath(path)!s} is not a valid deg index file: {why}")


def read(path, mmap=False, verify=True):
    """Read and validate an index file.

    Returns ``(metric, params, arrays)`` with arrays ``vectors, neighbors, weights, labels``,
    ``order`` in versions 2 to 5, ``sig`` from version 6 on, from version 3 on ``rotation,
    rotation_t``, in version 4 ``members, planes, offsets`` (a tree without ``pairs``, not
    checked: it is drawn again) and from version 5 on ``members, pairs, planes, offsets``.
    With ``mmap=True`` the arrays are copy-on-write views of a memory map (pages load lazily and
    the file is never written). ``verify=False`` skips the checksum and the checks that read
    every vector (``check_arrays``), keeping those the kernels' memory safety rests on.
    """
    size = os.path.getsize(path)
    if size < _HEADER.size + _TRAILER.size:
        raise _bad(path, f"{size} bytes is shorter than the {_HEADER.size}-byte header")
    if mmap:
        buf = np.memmap(path, dtype=np.uint8, mode="c")
    else:
        buf = np.empty(size, dtype=np.uint8)
        with open(path, "rb") as f:
            f.readinto(memoryview(buf))
    magic, version, code, dim, d, n, plen, rank = _HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise _bad(path, f"magic is {magic!r}, expected {MAGIC!r}")
    if version not in READABLE:
        raise _bad(
            path,
            f"format version {version}, this deg reads versions {', '.join(map(str, READABLE))}",
        )
    metrics = {v: k for k, v in METRIC_CODES.items()}
    if code not in metrics:
        raise _bad(path, f"unknown metric code {code}")
    if version < 3:
        rank = 0  # a reserved field then
    if (
        not 1 <= dim <= check.MAX_DIM
        or not 2 <= d <= check.MAX_DEGREE
        or d % 2
        or n > check.MAX_VERTICES
        or plen > min(_MAX_PARAMS, size)
        or rank > min(dim, basis.MAX_RANK)
    ):
        raise _bad(
            path,
            f"implausible header (dim={dim}, d={d}, n={n}, params={plen} bytes, "
            f"rotation rank {rank})",
        )
    # what the header's sizes cannot say is judged after the checksum: a damaged file is
    # reported as damaged, a consistent but wrong one by what is wrong in it
    params, why = _parse_params(buf[_HEADER.size : _HEADER.size + plen])
    tree = (0, 0, 0, 0)
    if why is None and version >= 4:  # the tree's shapes are in the parameter block
        tree, why = _tree_shapes(params, version, n, dim)
    vtype = "float32"
    if why is None and version >= 7:
        vtype = params.get("dtype")
        if vtype not in dtypes.DTYPES:
            why = f"vector type {vtype!r:.40} is none of {', '.join(dtypes.DTYPES)}"
    if why is not None:
        if verify and not _checksum_ok(buf, size):
            raise _bad(path, "checksum mismatch (the file is corrupted)")
        raise _bad(path, why)
    layout, total = _layout(dim, d, n, plen, version, rank, tree, vtype)
    if size != total:
        raise _bad(path, f"size is {size} bytes, the header implies {total} (truncated?)")
    if verify and not _checksum_ok(buf, size):
        raise _bad(path, "checksum mismatch (the file is corrupted)")
    arrays = {}
    for name, dtype, shape, offset in layout:
        nbytes = int(np.prod(shape)) * dtype.itemsize
        arrays[name] = np.asarray(buf[offset : offset + nbytes]).view(dtype).reshape(shape)
    check_arrays(path, arrays, n, d, metrics[code], verify)
    return metrics[code], params, arrays


def _parse_params(raw):
    """The parameter block as a dict, and why not (or None)."""
    try:
        params = json.loads(bytes(raw).decode())
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError too; nesting too deep
        return None, f"parameter block is not JSON ({type(e).__name__}: {e})"
    if not isinstance(params, dict):
        return None, f"parameter block is a JSON {type(params).__name__}, not an object"
    return params, None


def _tree_shapes(params, version, n, dim):
    """The entry tree's shapes ``(m, t, w, p)`` from the parameter block, and why not."""
    try:
        tree = tuple(int(v) for v in params["entry_tree"])
    except KeyError:
        return None, "parameter block has no entry_tree shapes"
    except (ValueError, TypeError, OverflowError):
        return None, f"entry_tree shapes {params['entry_tree']!r:.80} are not integers"
    if version == 4 and len(tree) == 3:
        tree = tree + tree[1:2]  # every node's hyperplane stored
    if (
        len(tree) != 4
        or min(tree) < 0
        or tree[2] > dim
        or tree[0] > 2 * n
        or tree[3] > tree[1]
        or tree[1] > 2 * n
    ):
        return None, f"implausible entry tree shapes {list(tree)} for n={n}, dim={dim}"
    return tree, None


def _checksum_ok(buf, size):
    crc, end = _TRAILER.unpack_from(buf, size - _TRAILER.size)
    actual = 0
    step = 1 << 24
    for lo in range(0, size - _TRAILER.size, step):
        actual = zlib.crc32(buf[lo : min(lo + step, size - _TRAILER.size)], actual)
    return end == _END and crc == actual


_STRUCTURE = {
    kverify.OUT_OF_RANGE: "row {u} slot {j}: neighbor id {v} is out of range 0..{last}",
    kverify.REPEATED: "row {u} lists vertex {v} twice",
    kverify.EMPTY_SLOTS: "row {u} has {j} empty slots (its own id), a graph of {n} vertices "
    "and degree {d} has {empty}",
    kverify.EMPTY_WEIGHT: "row {u} slot {j}: an empty slot with weight {w}, not 0",
    kverify.ASYMMETRIC: "edge {u}-{v} is listed by vertex {u} but not by vertex {v} (the graph "
    "must be undirected)",
    kverify.UNEQUAL: "edge {u}-{v} has weight {w} at {u} and another at {v}",
    kverify.WEIGHT_NOT_FINITE: "row {u} slot {j}: weight {w} is not finite",
}
_VALUES = {
    kverify.NOT_FINITE: "vector {u} has a NaN or infinite coordinate",
    kverify.TOO_LONG: "vector {u} has norm {norm:.3g}, beyond the {bound:.3g} that add takes",
    kverify.NOT_UNIT: "vector {u} has norm {norm:.6g}, but a cosine index stores unit vectors",
    kverify.WRONG_WEIGHT: "edge {u}-{v} has weight {w}, but its vectors are at distance {x} "
    "under the {metric} metric",
}


def check_arrays(path, a, n, d, metric, verify=True):
    """Contents a checksum cannot vouch for (a file written by a buggy or foreign writer, or
    edited with its checksum made right): the labels, the search view, the basis and the tree,
    and the graph (``deg._kernels.verify``): ids in range, no repeats, undirected with one
    weight per edge, and the right empty slots, always; with ``verify`` also the vectors
    (finite, within add's bound, unit length for cosine), every weight against the distance
    of its vectors, and connectivity."""
    nb, w = a["neighbors"], a["weights"]
    labels = a["labels"]
    if a["vectors"].dtype not in dtypes.STORED.values():
        raise _bad(path, f"vectors of type {a['vectors'].dtype}, not one an index keeps")
    if n and (labels.min() < 0 or np.unique(labels).size != n):
        raise _bad(path, "labels are negative or not unique")
    if "order" in a and n and (np.sort(a["order"], axis=1) != np.arange(d)).any():
        raise _bad(path, "search view rows are not permutations of the slots")
    key = np.uint64(int.from_bytes(os.urandom(8), "little"))
    fault = kverify.structure_fault(nb, w, n, np.empty(n, np.int64), key)
    if fault[0] != kverify.OK:
        raise _bad(path, _describe(_STRUCTURE, fault, a, n, d, metric))
    if verify and a["vectors"].dtype == dtypes.STORED["float16"]:
        at = dtypes.half_fault(a["vectors"])
        if at is not None:
            raise _bad(path, f"vector {at[0]} has a NaN or infinite coordinate (float16)")
    if verify:
        fault = _value_fault(a["vectors"], nb, w, METRIC_CODES[metric], n)
        if fault[0] != kverify.OK:
            raise _bad(path, _describe(_VALUES, fault, a, n, d, metric))
        if kverify.reached(nb, n, np.empty(n, np.int64)) < n:
            raise _bad(path, "the graph is not connected")
    if "rotation" in a:
        why = basis.check(a["rotation"], a["rotation_t"], a["vectors"].shape[1])
        if why:
            raise _bad(path, why)
    if "pairs" in a:
        why = check_tree(
            a["members"], a["pairs"], a["planes"], a["offsets"], n, a["vectors"].shape[1]
        )
        if why:
            raise _bad(path, why)


def _value_fault(vectors, nb, w, code, n):
    """``kverify.vector_fault`` then ``weight_fault`` over all rows, in row ranges shared by
    the threads (Fashion-MNIST: ~0.37 s of reading and distances on one thread); the first
    fault by row range."""
    import numba

    parts = _CHECK_PARTS if n >= 64 * _CHECK_PARTS else 1
    bounds = [n * c // parts for c in range(parts + 1)]
    norms = np.empty(n, np.float64)
    faults = [None] * parts
    half = vectors.dtype == dtypes.STORED["float16"]
    unit = kverify.UNIT_HALF if half else kverify.UNIT

    def vector_part(t, c):
        faults[c] = kverify.vector_fault(
            vectors, code, bounds[c], bounds[c + 1], check.MAX_SQ_NORM, norms, unit
        )

    def weight_part(t, c):
        faults[c] = kverify.weight_fault((vectors, nb, w, code), bounds[c], bounds[c + 1], norms)

    threads = numba.config.NUMBA_NUM_THREADS
    for part in (vector_part, weight_part):  # the weights need every norm
        _pipeline.overlap(None, part, parts, threads)
        fault = next((f for f in faults if f[0] != kverify.OK), None)
        if fault is not None:
            return fault
    return kverify.OK, -1, -1


def _describe(messages, fault, a, n, d, metric):
    """The message for a fault ``(code, u, j)`` of ``deg._kernels.verify``."""
    from deg._kernels.distances import distance

    code, u, j = (int(x) for x in fault)
    nb, w, x = a["neighbors"], a["weights"], a["vectors"]
    v = int(nb[u, j]) if 0 <= j < d else -1
    norm = float(np.linalg.norm(dtypes.to_float32(x[u], dtypes.named(x.dtype)).astype(np.float64)))
    exact = (
        float(distance(METRIC_CODES[metric], x[u], x[v])) if code == kverify.WRONG_WEIGHT else None
    )
    return messages[code].format(
        u=u,
        j=j,
        v=v,
        w=float(w[u, j]) if 0 <= j < d else None,
        last=n - 1,
        n=n,
        d=d,
        empty=max(0, d - (n - 1)),
        norm=norm,
        bound=check.MAX_SQ_NORM**0.5,
        x=exact,
        metric=metric,
    )


def repeats_a_neighbor(nb):
    """Does a row list a vertex other than its own twice? (Its own id marks empty slots.)"""
    own = np.arange(nb.shape[0], dtype=nb.dtype)[:, None]
    rows = np.sort(np.where(nb == own, -1, nb), axis=1)
    return bool(((rows[:, 1:] == rows[:, :-1]) & (rows[:, 1:] >= 0)).any())


def check_tree(members, pairs, planes, offsets, n, dim):
    """Why an entry tree cannot be searched (None if it can): the kernels descend ``pairs``
    and ``planes`` as complete binary trees, index ``members`` with the pairs and vectors with
    ``members``."""
    t, p = pairs.shape[0], planes.shape[0]
    if t & (t + 1) or p & (p + 1) or p > t or offsets.shape[0] != t or pairs.shape[1:] != (2,):
        return (
            f"entry tree of {pairs.shape} hyperplane pairs, {p} hyperplanes and "
            f"{offsets.shape[0]} offsets"
        )
    if planes.shape[1] > dim:
        return f"entry tree over {planes.shape[1]} coordinates of {dim}"
    if (members.size == 0) != (t == 0) or (t and members.size < t + 1):
        return f"entry tree of {t} hyperplanes over {members.size} members"
    if members.size and (members.min() < 0 or members.max() >= n):
        return "entry tree members out of range"
    if t and (pairs.min() < 0 or pairs.max() >= members.size):
        return "entry tree hyperplane pairs out of range"
    if not np.isfinite(planes).all() or not np.isfinite(offsets).all():
        return "non-finite entry tree hyperplanes"
    return None
