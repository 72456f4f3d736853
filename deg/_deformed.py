"""Deterministic deformations of 28x28 images: a large realistic collection from a small one,
as the infinite-MNIST generators make (Loosli, Canu and Bottou, "Training invariant support
vector machines using selective sampling", 2007: small affine and elastic deformations of
the MNIST digits).

Row ``j`` of a collection over ``m`` base images is base image ``j % m``: unchanged for the
first ``m`` rows, else moved by a random affine map (rotation, scale, shear, translation) and a
smooth random displacement field, resampled bilinearly and rounded to the pixels' integer
values. The random numbers of a row depend only on the seed and the row's block of
``BLOCK`` rows, so any prefix of a collection is the smaller collection itself. numpy only
(no BLAS): the same seed gives the same bytes on any machine.
"""

from __future__ import annotations

import numpy as np

SIDE = 28
BLOCK = 10_000
COARSE = 4  # the displacement field is drawn on a COARSE x COARSE grid and interpolated
ROTATE = np.deg2rad(10.0)
SCALE = 0.1
SHEAR = 0.1
SHIFT = 2.0  # pixels
ELASTIC = 1.0  # pixels, the coarse field's standard deviation


def deformed(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows (float32, integer values 0..255) over ``base`` (m, 784) images."""
    base = np.asarray(base)
    if base.ndim != 2 or base.shape[1] != SIDE * SIDE or len(base) == 0:
        raise ValueError(f"base must be (m, {SIDE * SIDE}) images, got shape {base.shape}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    images = base.reshape(-1, SIDE, SIDE).astype(np.float32)
    out = np.empty((n, SIDE * SIDE), dtype=np.float32)
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        out[lo:hi] = _block(images, lo, hi, seed)
    return out


def _block(images, lo, hi, seed):
    rows = np.arange(lo, hi)
    m = len(images)
    rng = np.random.default_rng([seed, lo // BLOCK])
    src_y, src_x = _source_coordinates(rng, BLOCK)
    src = rows % m
    out = _bilinear(images[src], src_y[: hi - lo], src_x[: hi - lo])
    kept = rows < m  # the first pass over the base images is the base itself
    out[kept] = images[src[kept]].reshape(-1, SIDE * SIDE)
    return np.rint(np.clip(out, 0, 255)).reshape(hi - lo, -1)


def _source_coordinates(rng, b):
    """Where each output pixel of ``b`` images reads from: (b, 28, 28) y and x."""
    theta = rng.uniform(-ROTATE, ROTATE, b)
    scale = 1.0 + rng.uniform(-SCALE, SCALE, (b, 2))
    shear = rng.uniform(-SHEAR, SHEAR, b)
    shift = rng.uniform(-SHIFT, SHIFT, (b, 2))
    coarse = rng.normal(0.0, ELASTIC, (b, 2, COARSE, COARSE))
    c, s = np.cos(theta), np.sin(theta)
    # the map from output to source coordinates, centred on the image's middle
    a = np.empty((b, 2, 2))
    a[:, 0, 0] = c / scale[:, 0]
    a[:, 0, 1] = (-s + shear * c) / scale[:, 0]
    a[:, 1, 0] = s / scale[:, 1]
    a[:, 1, 1] = (c + shear * s) / scale[:, 1]
    mid = (SIDE - 1) / 2.0
    grid = np.arange(SIDE) - mid
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    up = _upsampling()
    field = np.einsum("ij,bcjk,lk->bcil", up, coarse, up)  # (b, 2, 28, 28), smooth
    y = a[:, 0, 0, None, None] * yy + a[:, 0, 1, None, None] * xx + mid + shift[:, 0, None, None]
    x = a[:, 1, 0, None, None] * yy + a[:, 1, 1, None, None] * xx + mid + shift[:, 1, None, None]
    return y + field[:, 0], x + field[:, 1]


def _upsampling():
    """(28, COARSE) linear interpolation weights from the coarse grid to the pixels."""
    pos = np.linspace(0, COARSE - 1, SIDE)
    low = np.minimum(np.floor(pos).astype(int), COARSE - 2)
    frac = pos - low
    w = np.zeros((SIDE, COARSE))
    w[np.arange(SIDE), low] = 1.0 - frac
    w[np.arange(SIDE), low + 1] = frac
    return w


def _bilinear(images, y, x):
    """``images`` (b, 28, 28) sampled at (y, x) (b, 28, 28); zero outside the image."""
    b = len(images)
    padded = np.zeros((b, SIDE + 2, SIDE + 2), dtype=np.float32)
    padded[:, 1:-1, 1:-1] = images
    y = np.clip(y + 1.0, 0.0, SIDE + 1.0 - 1e-6)  # in the padded frame; outside reads zeros
    x = np.clip(x + 1.0, 0.0, SIDE + 1.0 - 1e-6)
    y0, x0 = np.floor(y).astype(np.intp), np.floor(x).astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, SIDE + 1), np.minimum(x0 + 1, SIDE + 1)
    fy, fx = (y - y0).astype(np.float32), (x - x0).astype(np.float32)
    flat = padded.reshape(b, -1)
    width = SIDE + 2

    def at(yi, xi):
        return np.take_along_axis(flat, (yi * width + xi).reshape(b, -1), axis=1).reshape(y.shape)

    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return (top * (1 - fy) + bottom * fy).reshape(b, -1)
