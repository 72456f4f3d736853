"""Search entry pivots: a seeded two-level sample of vertices (see ``nearest_pivot``)."""

import os

import numpy as np

MAX_PIVOTS = int(os.environ.get("DEG_PIVOTS", 4096))


def pivot_count(n):
    """Pivots for a graph of n vertices: none for small graphs, where vertex 0 is close to
    everything anyway; one per 64 vertices up to MAX_PIVOTS (their vectors are copied, so this
    costs 1/64 of the vector memory at most)."""
    return 0 if n < 1024 else min(MAX_PIVOTS, n // 64)


def draw(vectors, drawn_at, seed, metric):
    """The pivot table for vertex count ``drawn_at``: a function of the seed, ``drawn_at`` and
    the current vectors, so a saved and loaded index draws the same one.

    About sqrt(count) of the sampled vertices are coarse pivots; every pivot is filed in the
    cell of its nearest coarse one. Returns ``(ids, pivots, coarse, cells)``: pivot ids (int32)
    grouped by cell, their vectors (contiguous, cell by cell), the coarse vectors, and the
    cell offsets (int64, length n_coarse + 1).
    """
    count = pivot_count(drawn_at)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, drawn_at])
    ids = np.sort(rng.choice(drawn_at, size=count, replace=False)) if count else \
        np.zeros(0, np.int64)
    n_coarse = int(np.ceil(np.sqrt(count)))
    coarse = np.ascontiguousarray(vectors[ids[:n_coarse]])
    fine = vectors[ids]
    if metric == "l2":
        dist = (fine ** 2).sum(1)[:, None] - 2 * fine @ coarse.T + (coarse ** 2).sum(1)
    else:
        dist = -(fine @ coarse.T)
    cell = dist.argmin(axis=1) if count else np.zeros(0, np.int64)
    cell[:n_coarse] = np.arange(n_coarse)  # a coarse pivot always files in its own cell
    by_cell = np.argsort(cell, kind="stable")
    pivot_ids = ids[by_cell].astype(np.int32)
    cells = np.searchsorted(cell[by_cell], np.arange(n_coarse + 1)).astype(np.int64)
    return pivot_ids, np.ascontiguousarray(vectors[pivot_ids]), coarse, cells


def stale(n, drawn_at, pivot_ids):
    """Must the table drawn at ``drawn_at`` be drawn again for n vertices? When the graph grew
    or shrank by half, pivots appeared or vanished, or a pivot id no longer exists (a redraw
    per call would cost milliseconds on every small add or remove)."""
    return (n >= 1.5 * drawn_at or 1.5 * n <= drawn_at
            or (pivot_count(n) > 0) != (pivot_count(drawn_at) > 0)
            or bool(pivot_ids.size and int(pivot_ids.max()) >= n))
