"""The rotated basis an index stores its vectors in (``Index(rotate=...)``).

A bounded distance (``distance_within``, ``distance_rows``) stops reading a stored row once its
partial sum passes the search radius, so the search reads less of a far vector the sooner its
coordinates add up.
In the input basis the squared differences are spread over all coordinates (Fashion-MNIST: the
128 pixels of largest variance hold 26% of it). Rotating every vector, and every query, by one
orthogonal ``Q`` changes no distance (up to float32 rounding), and when ``Q``'s first columns
are the data's leading principal directions the first coordinates carry most of each distance
(Fashion-MNIST: 64 components hold 88% of the variance), so far vertices are rejected after
their first chunk.

A full principal-component rotation costs dim*dim multiply-adds per query (Fashion-MNIST: as
long as a quarter of the search). ``Q`` here is instead the product of r Householder
reflections ``H_0 .. H_{r-1}`` that map the first r axes onto the leading r directions: the
rest of the basis is whatever completes it, and applying ``Q^T`` costs about 2*r*dim. In the
compact form ``Q = I - Y T Y^T`` (``Y`` the unit reflection vectors as columns, ``T`` upper
triangular), the index keeps ``yt = Y^T`` and ``tt = T^T`` (a function of ``yt``; files and
pickles carry both, and loading checks that they agree).
"""

import numpy as np

RANK = 64  # leading directions mapped onto the first axes (the first distance chunk)
MAX_RANK = 1024  # the largest rank a file or pickle may carry
MIN_VECTORS = 1000  # the basis is fitted when the index first holds this many vectors
SAMPLE = 10_000  # rows of the covariance estimate, evenly spaced over the data
AUTO_MIN_DIM = 256  # rotate=None rotates l2 and cosine indices of at least this dimension


def wanted(rotate, metric, dim, integer=False, edge_coded=False):
    """Does an index with these settings store its vectors rotated? (``"ip"`` distances are
    never abandoned, so a rotation would not pay there; ``integer`` types cannot hold rotated
    coordinates; the walk of an ``edge_coded`` index computes whole distances, so there it
    would only cost each query its rotation.)"""
    if rotate is None:
        auto = metric in ("l2", "cosine") and dim >= AUTO_MIN_DIM
        return auto and not integer and not edge_coded
    return bool(rotate)


def sample_rows(count):
    """Indices of the rows (of ``count``) that the covariance is estimated from."""
    return np.unique(np.linspace(0, count - 1, min(count, SAMPLE)).astype(np.int64))


def fit(sample, rank=RANK):
    """``(yt, tt)`` (float32) of the basis for data like ``sample`` (m, dim): its first
    ``min(rank, dim)`` axes are the sample's leading principal directions."""
    x = np.asarray(sample, dtype=np.float64)
    x = x - x.mean(axis=0)
    yt = reflections(leading_directions(x, min(rank, x.shape[1])))
    return yt.astype(np.float32), compact_t(yt.astype(np.float32))


def leading_directions(x, r, iterations=4, extra=16):
    """The r leading principal directions (orthonormal columns) of the centred rows ``x``,
    by subspace iteration from a seeded random start: O(m*dim*r) per step where the full
    eigendecomposition of the covariance costs O(dim^3) (4096-D: 1.1 s instead of 8.3 s; on
    Fashion-MNIST the 64 directions hold 88.2% of the variance either way)."""
    dim = x.shape[1]
    q = np.random.default_rng(0).standard_normal((dim, min(dim, r + extra)))
    for _ in range(iterations):
        q, _ = np.linalg.qr(x.T @ (x @ q))
    _, vecs = np.linalg.eigh(q.T @ (x.T @ (x @ q)))  # ascending eigenvalues
    return (q @ vecs[:, ::-1])[:, :r]


def reflections(a):
    """Unit Householder vectors (as rows) whose reflections, applied in turn, make the
    orthonormal columns of ``a`` (dim, r) the first r axes (up to sign)."""
    a = np.array(a, dtype=np.float64)
    dim, r = a.shape
    yt = np.zeros((r, dim))
    for j in range(r):
        col = a[j:, j]
        alpha = -np.copysign(np.linalg.norm(col), col[0])  # the sign that avoids cancellation
        v = col.copy()
        v[0] -= alpha
        v /= np.linalg.norm(v)
        a[j:, :] -= 2.0 * np.outer(v, v @ a[j:, :])
        yt[j, j:] = v
    return yt


def compact_t(yt):
    """``T^T`` (float32, lower triangular) of ``Q = H_0 .. H_{r-1} = I - Y T Y^T`` for the unit
    reflection vectors ``yt`` (rows), by the usual recurrence (each ``H_j = I - 2 v v^T``)."""
    y = np.asarray(yt, dtype=np.float64).T
    r = y.shape[1]
    t = np.zeros((r, r))
    for j in range(r):
        t[:j, j] = -2.0 * t[:j, :j] @ (y[:, :j].T @ y[:, j])
        t[j, j] = 2.0
    return np.ascontiguousarray(t.T, dtype=np.float32)


def unrotate(z, yt, tt):
    """The input-basis vectors of stored rows ``z``: ``Q z`` (float32, within rounding)."""
    z = np.asarray(z, dtype=np.float64)
    y = yt.astype(np.float64)
    return (z - ((z @ y.T) @ tt.astype(np.float64)) @ y).astype(np.float32)


def check(yt, tt, dim):
    """Why ``(yt, tt)`` is not a basis for vectors of ``dim`` (a file or pickle's), or None."""
    r = yt.shape[0]
    if r > MAX_RANK:  # checking it costs O(r^2 dim): refuse what no writer makes
        return f"rotation rank {r} is above {MAX_RANK}"
    if yt.ndim != 2 or yt.shape[1] != dim or r > dim or tt.shape != (r, r):
        return f"rotation has shapes {yt.shape} and {tt.shape}, expected (r, {dim}) and (r, r)"
    if not (np.isfinite(yt).all() and np.isfinite(tt).all()):
        return "rotation has non-finite values"
    if r and np.abs(np.linalg.norm(yt.astype(np.float64), axis=1) - 1.0).max() > 1e-4:
        return "rotation vectors are not unit vectors"
    if r and np.abs(compact_t(yt) - tt).max() > 1e-5 * max(1.0, float(np.abs(tt).max())):
        return "rotation factors do not match (the basis would not be orthogonal)"
    return None


class Rotation:
    """The basis an index stores its vectors in: ``yt`` (r, dim) and ``tt`` (r, r); no rows
    until it is adopted (``rotated`` False: the input basis)."""

    def __init__(self, dim: int):
        self.yt = np.zeros((0, dim), dtype=np.float32)
        self.tt = np.zeros((0, 0), dtype=np.float32)

    def adopt(self, yt: np.ndarray, tt: np.ndarray) -> None:
        """Take a basis (fitted, or checked by ``check``)."""
        self.yt = np.array(yt, dtype=np.float32)
        self.tt = np.array(tt, dtype=np.float32)

    @property
    def rotated(self) -> bool:
        return self.yt.shape[0] > 0

    def pair(self, used: bool = True) -> tuple:
        """The kernels' ``Basis`` as a plain tuple: the stored basis, or none (``used``
        False, or not rotated: queries already in the stored basis)."""
        if used and self.rotated:
            return self.yt, self.tt
        return self.yt[:0], self.tt[:0]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Input-basis rows ``x`` in the stored basis: ``Q^T x`` (float32, within rounding; a
        copy), as the kernels rotate queries."""
        if not self.rotated:
            return np.array(x, dtype=np.float32)
        x = np.asarray(x, dtype=np.float64)
        y = self.yt.astype(np.float64)
        t = self.tt.astype(np.float64)
        return (x - ((x @ y.T) @ t.T) @ y).astype(np.float32)

    def back(self, z: np.ndarray) -> np.ndarray:
        """Stored rows ``z`` in the input basis (a copy)."""
        return unrotate(z, self.yt, self.tt) if self.rotated else z.copy()

    @property
    def nbytes(self) -> int:
        return self.yt.nbytes + self.tt.nbytes
