"""The types an index keeps its vectors in (``Index(dtype=...)``); distances are float32.

``float32`` keeps what came (4 bytes a coordinate). ``float16`` rounds to IEEE half precision
(2 bytes; lossy, relative error below 2**-11) and is stored as the half bits in ``uint16``,
which the kernels widen (``deg._kernels.values``). ``uint8`` and ``int8`` (1 byte) hold
integer data such as SIFT's exactly and refuse anything else: a value that is not an integer
of the type's range would be silently changed. An integer index cannot store unit vectors or
a rotated basis, so it takes neither ``metric="cosine"`` nor ``rotate=True``.
"""

from __future__ import annotations

import numpy as np

from deg import _validation as check
from deg._kernels.distances import all_integers_in, all_within

DTYPES = ("float32", "float16", "uint8", "int8")
# the array type the kernels get for each
STORED = {
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.uint16),
    "uint8": np.dtype(np.uint8),
    "int8": np.dtype(np.int8),
}
INTEGER_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}
HALF_MAX = float(np.finfo(np.float16).max)  # 65504
HALF_EXPONENT = np.uint16(0x7C00)  # all ones in these bits: an infinite or NaN half


def name_of(dtype) -> object:
    """A dtype given as numpy's (``np.float16``, ``np.dtype("uint8")``) by its name; anything
    else as it came, for the caller to refuse."""
    if isinstance(dtype, str):
        return dtype
    try:
        return np.dtype(dtype).name
    except TypeError:
        return dtype


def named(stored: np.dtype) -> str:
    """The dtype name of a stored array type (``uint16``: float16's bits)."""
    return next(name for name, t in STORED.items() if t == stored)


def is_integer(dtype: str) -> bool:
    return dtype in INTEGER_RANGE


def addable(data, dim: int, metric: str, dtype: str, name: str) -> tuple:
    """``(rows, prepared)``: ``data`` as float32 rows, not normalised, checked as
    ``Index.add`` checks it (shape, finite, the type's values, cosine's non-zero rows), and
    the rows as ``add`` prepares them (unit rows for cosine). For callers that keep or send
    the rows as given (the service's log, a sharded index's shards)."""
    rows = check.prepared(data, dim, "l2", name)
    check_values(rows, dtype, name)
    return rows, check.prepared(rows, dim, metric, name)


def check_values(x: np.ndarray, dtype: str, name: str = "data") -> None:
    """Refuse float32 rows ``x`` (C-contiguous and finite, as ``_validation.prepared`` gives
    them) that ``dtype`` cannot hold: for ``uint8``/``int8`` a value that is not an integer
    of the range, for ``float16`` one beyond its largest finite value (``ValueError`` naming
    the first, its row and column; a kernel's quick pass first, numpy only to name it)."""
    if dtype == "float32" or x.size == 0:
        return
    if dtype == "float16" and all_within(x, np.float32(HALF_MAX)):
        return
    if is_integer(dtype) and all_integers_in(x, *map(np.float32, INTEGER_RANGE[dtype])):
        return
    if dtype == "float16":
        bad = np.abs(x) > HALF_MAX
        expected = f"values within +-{HALF_MAX:g} (the largest finite float16)"
    else:
        lo, hi = INTEGER_RANGE[dtype]
        bad = (x < lo) | (x > hi) | (x != np.round(x))
        expected = f"integers from {lo} to {hi}"
    if bad.any():
        row, col = np.argwhere(bad)[0]
        value = float(x[row, col])
        raise ValueError(
            f"a {dtype} index takes {expected}; {name} row {row} column {col} is {value!r}"
        )


def to_stored(x: np.ndarray, dtype: str) -> np.ndarray:
    """Checked float32 rows as the kernels store them (float16 rounded, as its bits)."""
    if dtype == "float16":
        return x.astype(np.float16).view(np.uint16)
    return x.astype(STORED[dtype], copy=False)


def to_float32(rows: np.ndarray, dtype: str) -> np.ndarray:
    """Stored rows as float32 values (a new array unless they are float32 already)."""
    if dtype == "float16":
        return rows.view(np.float16).astype(np.float32)
    return rows.astype(np.float32, copy=False)


def exposed(rows: np.ndarray, dtype: str) -> np.ndarray:
    """Stored rows in the type the user chose (``get_vectors``): float16 as ``np.float16``."""
    return rows.view(np.float16) if dtype == "float16" else rows


def half_fault(bits: np.ndarray) -> tuple[int, int] | None:
    """The first (row, column) of float16 bits that are infinite or NaN, or None."""
    bad = (bits & HALF_EXPONENT) == HALF_EXPONENT
    if not bad.any():
        return None
    row, col = np.argwhere(bad)[0]
    return int(row), int(col)
