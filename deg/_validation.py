"""Input checks with messages that say what was expected and what came.

Everything a kernel receives passes through here first; kernels trust their input.
"""

import functools
import math
import numbers

import numpy as np

from deg._kernels.distances import METRIC_CODES, all_within, unit_rows

METRICS = tuple(METRIC_CODES)  # "l2", "ip", "cosine"

# The bounds of every parameter (constructor, file, pickle, search): beyond them an index would
# take unbounded time or memory for no gain. README "Parameters" lists them.
MAX_DIM = 1 << 20
MAX_DEGREE = 1024  # edges_per_vertex
MAX_EXTEND_K = 4096
MAX_EPS = 10.0  # extend_eps, improve_eps: 10 already searches far past any useful slack
MAX_IMPROVE_K = 1024
MAX_PATH_LENGTH = 64
MAX_IMPROVE_TRIES = 100  # per inserted vector; optimize() runs any number, bounded in time
MAX_SEED = 2**64 - 1
MAX_K = 1 << 20  # neighbours per query; the search itself never keeps more than the index holds
MAX_VERTICES = 2**31 - 1  # internal ids are int32


def check_int(name, value, minimum=None, maximum=None):
    if type(value) is not int:  # plain ints skip the slower abstract-type checks
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(name, value, minimum=None, maximum=None):
    if type(value) is not float and type(value) is not int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_edges_per_vertex(d):
    d = check_int("edges_per_vertex", d)
    if d < 2 or d % 2 or d > MAX_DEGREE:
        raise ValueError(f"edges_per_vertex must be an even number from 2 to {MAX_DEGREE}, got {d}")
    return d


# a vector's squared norm at most this: the squared distance of two such vectors (at most four
# times it) and an inner product still fit in float32; beyond, distances would be inf
MAX_SQ_NORM = float(np.finfo(np.float32).max) / 4
_FINITE = np.finfo(np.float32).max  # all_within(x, _FINITE): no NaN, no inf


def as_vectors(x, dim, name="data", bounded=True):
    """Return ``x`` as a C-contiguous float32 ``(m, dim)`` array; a 1-D vector is one row.

    Rejects non-numeric dtypes, ndim other than 1 or 2, a wrong width, NaN/inf and (with
    ``bounded``; the cosine metric normalises rows first) rows so long that their distances
    overflow float32, naming the first offending row.
    """
    if (
        type(x) is np.ndarray
        and x.dtype == np.float32
        and x.flags.c_contiguous
        and x.flags.writeable
        and 1 <= x.ndim <= 2
        and x.shape[-1] == dim
    ):  # as kernels take
        arr = x.reshape(-1, dim)
        if _surely_within(arr) if bounded else all_within(arr, _FINITE):
            return arr
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 1-D (one vector) or 2-D (n, {dim}), got shape {arr.shape}"
        )
    if arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} features, but the index expects dim = {dim}")
    with np.errstate(
        over="ignore", invalid="ignore"
    ):  # out-of-range values become inf: refused below
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not arr.flags.writeable:  # read-only (e.g. memory-mapped): typed kernels take writable only
        arr = arr.copy()
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{name} contains NaN or infinity (first in row {row})")
    ok = _norms_within(arr) if bounded and not _surely_within(arr) else finite
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        norm = float(np.linalg.norm(arr[row].astype(np.float64)))
        raise ValueError(
            f"{name} row {row} has norm {norm:.3g}, beyond the "
            f"{MAX_SQ_NORM**0.5:.3g} whose distances still fit in float32"
        )
    return arr


def _surely_within(arr):
    """A quick pass that accepts every usual input: all values finite and within
    ``sqrt(MAX_SQ_NORM / dim)``, so no row's squared norm can pass ``MAX_SQ_NORM`` (NaN fails
    every comparison). Rows it does not vouch for go through ``_norms_within``."""
    return arr.size == 0 or all_within(arr, _limit(arr.shape[1]))


@functools.lru_cache(maxsize=64)
def _limit(dim):
    """``_surely_within``'s bound on each value of a ``dim``-wide row."""
    return np.float32(np.sqrt(MAX_SQ_NORM / dim))


def _norms_within(arr):
    """Per row: a squared norm within ``MAX_SQ_NORM`` (False for NaN/inf too)."""
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.einsum("ij,ij->i", arr, arr)  # float32: NaN for NaN, inf for inf or too long
    return sq <= MAX_SQ_NORM


def prepared(x, dim, metric, name="data"):
    """``x`` as the kernels take it (``as_vectors``), unit-normalised for the cosine metric."""
    cosine = metric == "cosine"
    arr = as_vectors(x, dim, name, not cosine)
    return normalize_rows(arr, name) if cosine else arr


def lookup_labels(labels, name="labels", flat=True):
    """Labels to look up (``remove``, ``explore``, ``get_vectors``...) as a 1-D array of
    integers (any shape is flattened unless ``flat`` is False: then one label or a 1-D
    array); a label not in the index is the lookup's to report."""
    arr = np.asarray(labels)
    if not flat and arr.ndim > 1:
        raise ValueError(f"{name} must be a label or a 1-D array, got shape {arr.shape}")
    arr = arr.reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if not arr.flags.writeable:  # a frombuffer or shared-memory array: the kernels take writable
        arr = arr.copy()
    return arr


def normalize_rows(arr, name="data"):
    """Unit-normalise the rows of a C-contiguous float32 ``arr`` (``as_vectors``'s output) for
    the cosine metric, into a new array; a zero row has no direction and is refused."""
    out = np.empty_like(arr)
    row = unit_rows(arr, out)
    if row >= 0:
        raise ValueError(f"{name} row {row} has norm 0; the cosine metric needs non-zero vectors")
    return out


MAX_LABEL = 2**63 - 1  # labels are int64; -1 marks a missing result


def as_labels(labels, m, name="labels"):
    """Return ``labels`` as int64 ``(m,)``: integers from 0 to ``MAX_LABEL`` without
    duplicates (integral floats are taken, as numpy casts them)."""
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] != m:
        raise ValueError(f"{name} must have shape ({m},), got shape {arr.shape}")
    arr = label_values(arr, name)
    repeat = first_repeat(arr)
    if repeat is not None:
        raise ValueError(f"{name} contains duplicates, e.g. {repeat}")
    return arr


def first_repeat(arr: np.ndarray) -> int | None:
    """The least value that ``arr`` holds more than once, or None."""
    uniq, counts = np.unique(arr, return_counts=True)
    return int(uniq[counts > 1][0]) if (counts > 1).any() else None


def label_values(arr, name="labels"):
    """The values of a label array as int64, refusing what is not an integer from 0 to
    ``MAX_LABEL`` with the value as given (not as it would wrap in int64)."""
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.int64)
    if arr.dtype == object:  # Python ints beyond int64 come as objects
        values = arr.tolist()
        bad = [v for v in values if label_key(v) is None]
        if bad:
            raise TypeError(f"{name} must be integers, got {bad[0]!r} ({type(bad[0]).__name__})")
        arr = np.array([label_key(v) for v in values], dtype=object)
        low, high = min(values), max(values)
    elif np.issubdtype(arr.dtype, np.integer):
        low, high = arr.min(), arr.max()
    elif np.issubdtype(arr.dtype, np.floating):
        if not (np.isfinite(arr).all() and np.all(arr == np.round(arr))):
            raise TypeError(
                f"{name} must be integers, got dtype {arr.dtype} with non-integral values"
            )
        low, high = int(arr.min()), int(arr.max())  # exact: 2.0**63 > MAX_LABEL as floats fails
    else:
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if low < 0:
        raise ValueError(f"{name} must be >= 0 (-1 marks missing results), got {_plain(low)}")
    if high > MAX_LABEL:
        raise ValueError(f"{name} must be <= {MAX_LABEL} (int64), got {_plain(high)}")
    return arr.astype(np.int64)


def _plain(value):
    """A number as a user wrote it: an integral float without its trailing .0."""
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def label_key(value):
    """``value`` as an int label if it is an integer (or an integral float), else None: no
    strings or bools (``"3" in index`` and ``True in index`` are False)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None
