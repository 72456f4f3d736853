"""Label -> internal id lookups for the index (a numpy hash table, see ``_kernels/labels``).

The table stores internal ids only; every call takes ``by_vid``, the index's labels in
internal-id order (int64, at least up to the largest id entered), which holds each id's label.
"""

import numpy as np

from deg._kernels import labels as klabels

_INT64_MAX = np.iinfo(np.int64).max


class LabelMap:
    """Maps the index's labels (non-negative int64) to internal ids; callers hold the lock."""

    def __init__(self):
        self._count = 0
        self._vids = np.full(16, -1, dtype=np.int32)

    def __len__(self):
        return self._count

    @property
    def nbytes(self):
        return self._vids.nbytes

    def rebuild(self, by_vid):
        """A fresh map of ``by_vid[v] -> v`` for every id."""
        self._count = 0
        self._vids = np.full(16, -1, dtype=np.int32)
        self.add(0, len(by_vid), by_vid)

    def add(self, lo, hi, by_vid):
        """Enter ids ``lo..hi-1`` under their labels ``by_vid[lo:hi]`` (absent labels); ids
        ``0..lo-1`` are the entries so far. The table stays at most half full: a rehash enters
        those again."""
        by_vid = _as_labels(by_vid)
        count = self._count + hi - lo
        if 2 * count > self._vids.shape[0]:
            slots = self._vids.shape[0]
            while 2 * count > slots:
                slots *= 2
            self._vids = np.full(slots, -1, dtype=np.int32)
            klabels.insert_range(self._vids, by_vid, 0, lo)
        klabels.insert_range(self._vids, by_vid, lo, hi)
        self._count = count

    def find(self, labels, by_vid):
        """Internal ids (int64) of ``labels``; ``KeyError`` naming the first absent label."""
        arr = np.asarray(labels).reshape(-1)
        if arr.size and arr.dtype == np.uint64 and int(arr.max()) > _INT64_MAX:
            raise KeyError(f"label {int(arr.max())} is not in the index")
        arr = np.ascontiguousarray(arr, dtype=np.int64)
        out = np.empty(arr.size, dtype=np.int64)
        missing = klabels.lookup(self._vids, _as_labels(by_vid), arr, out)
        if missing >= 0:
            raise KeyError(f"label {int(arr[missing])} is not in the index")
        return out

    def find_present(self, labels, by_vid):
        """Internal ids (int64) of those ``labels`` (int64) that are in the map, in order;
        the others are skipped."""
        arr = np.ascontiguousarray(labels, dtype=np.int64)
        out = np.empty(arr.size, dtype=np.int64)
        m = klabels.lookup_present(self._vids, _as_labels(by_vid), arr, out)
        return out[:m]

    def first_present(self, labels, by_vid):
        """The first of ``labels`` already in the map, or None."""
        arr = np.ascontiguousarray(labels, dtype=np.int64)
        i = klabels.first_present(self._vids, _as_labels(by_vid), arr)
        return None if i < 0 else int(arr[i])

    def contains(self, label, by_vid):
        label = int(label)
        if not 0 <= label <= _INT64_MAX:
            return False
        return klabels.find_slot(self._vids, _as_labels(by_vid), label) >= 0

    def pop(self, label, by_vid):
        """Remove ``label`` (still at its id in ``by_vid``); returns its internal id."""
        vid = int(klabels.delete(self._vids, _as_labels(by_vid), int(label)))
        self._count -= 1
        return vid

    def move(self, old, new, by_vid):
        """Id ``old`` moved to ``new``; ``by_vid[new]`` holds its label."""
        klabels.move(self._vids, _as_labels(by_vid), int(old), int(new))


def _as_labels(by_vid):
    return np.ascontiguousarray(by_vid, dtype=np.int64)
