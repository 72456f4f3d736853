"""Dataset readers (texmex .fvecs/.ivecs, IDX). The full dataset registry lands with issue #3."""

import gzip

import numpy as np


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
