"""The label -> internal id map: an open-addressing hash table of internal ids.

``vids`` (int32, -1 = empty slot) has a power-of-two length kept at least twice the number of
entries, so linear probing stays short. A slot holds only the id: its label is the index's
``labels[vid]`` (``by_vid`` below), which the index keeps anyway, so the table costs 4 bytes per
slot, 8-16 per label (a table of label and id took 24-48; a Python dict of ints ~100).
Deletion shifts later entries of the probe run back (no tombstones), so a table never
degrades with churn.
"""

import numpy as np

from deg._kernels._jit import jit


@jit("int64(int64, int64)")
def home(label, mask):
    """Home slot of ``label``: the high bits of a Fibonacci-hashed key."""
    h = np.uint64(label) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask))


@jit("int64(int32[::1], int64[::1], int64)")
def find_slot(vids, by_vid, label):
    """Slot holding ``label``, or the empty slot where it would go, as ``-1 - slot``."""
    mask = vids.shape[0] - 1
    s = home(label, mask)
    while vids[s] >= 0:
        if by_vid[vids[s]] == label:
            return s
        s = (s + 1) & mask
    return -1 - s


@jit("int64(int32[::1], int64[::1], int64[::1], int64[::1])")
def lookup(vids, by_vid, labels, out):
    """Internal ids of ``labels`` into ``out``; returns the position of the first label that
    is absent, or -1 when all are present."""
    for i in range(labels.shape[0]):
        s = find_slot(vids, by_vid, labels[i])
        if s < 0:
            return i
        out[i] = vids[s]
    return -1


@jit("void(int32[::1], int64[::1], int64, int64)")
def insert_range(vids, by_vid, lo, hi):
    """Enter ids ``lo..hi-1`` under their labels ``by_vid[lo:hi]`` (labels not yet present)."""
    for v in range(lo, hi):
        vids[-1 - find_slot(vids, by_vid, by_vid[v])] = v


@jit("void(int32[::1], int64[::1], int64, int64)")
def move(vids, by_vid, old, new):
    """Id ``old`` now lives at ``new`` (``by_vid[new]`` holds its label): point its slot there."""
    mask = vids.shape[0] - 1
    s = home(by_vid[new], mask)
    while vids[s] != old:
        s = (s + 1) & mask
    vids[s] = new


@jit("int64(int32[::1], int64[::1], int64)")
def delete(vids, by_vid, label):
    """Remove the present ``label``; returns its internal id.

    Backward-shift deletion: every later entry of the probe run whose home slot does not lie
    cyclically in (gap, entry] moves into the gap, so lookups never need tombstones.
    """
    mask = vids.shape[0] - 1
    gap = find_slot(vids, by_vid, label)
    vid = vids[gap]
    s = (gap + 1) & mask
    while vids[s] >= 0:
        h = home(by_vid[vids[s]], mask)
        if (s - h) & mask >= (s - gap) & mask:  # its home is at or before the gap: move it
            vids[gap] = vids[s]
            gap = s
        s = (s + 1) & mask
    vids[gap] = -1
    return vid


@jit("int64(int32[::1], int64[::1], int64[::1])")
def first_present(vids, by_vid, labels):
    """Position of the first of ``labels`` already in the table, or -1."""
    for i in range(labels.shape[0]):
        if find_slot(vids, by_vid, labels[i]) >= 0:
            return i
    return -1


@jit("int64[:, ::1](int32[:, ::1], int64[::1])")
def labels_of(vids, labels):
    """The label of each vertex id in ``vids`` (-1 stays -1: no result). One pass, where numpy
    takes three (a search of one query saves ~1.5 us)."""
    out = np.empty(vids.shape, np.int64)
    for q in range(vids.shape[0]):
        for j in range(vids.shape[1]):
            v = vids[q, j]
            out[q, j] = labels[v] if v >= 0 else -1
    return out


@jit("int64(int32[::1], int64[::1], int64[::1], int64[::1])")
def lookup_present(vids, by_vid, labels, out):
    """Internal ids of those ``labels`` that are in the map, in order, into ``out``; absent
    ones are skipped. Returns how many were found."""
    m = 0
    for i in range(labels.shape[0]):
        s = find_slot(vids, by_vid, labels[i])
        if s >= 0:
            out[m] = vids[s]
            m += 1
    return m
