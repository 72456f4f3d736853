"""Label -> internal id lookups for the index (a numpy hash table, see ``_kernels/labels``)."""

import numpy as np

from deg._kernels import labels as klabels

_INT64_MAX = np.iinfo(np.int64).max


class LabelMap:
    """Maps the index's labels (non-negative int64) to internal ids; callers hold the lock."""

    def __init__(self):
        self._count = 0
        self._alloc(16)

    def _alloc(self, slots):
        self._keys = np.zeros(slots, dtype=np.int64)
        self._vids = np.full(slots, -1, dtype=np.int32)

    def __len__(self):
        return self._count

    @property
    def nbytes(self):
        return self._keys.nbytes + self._vids.nbytes

    def _grow_for(self, count, labels_by_vid):
        """Keep the table at most half full; a rehash re-enters ``labels_by_vid``."""
        if 2 * count <= self._keys.shape[0]:
            return False
        slots = self._keys.shape[0]
        while 2 * count > slots:
            slots *= 2
        self._alloc(slots)
        klabels.insert_range(self._keys, self._vids, labels_by_vid, 0)
        return True

    def rebuild(self, labels_by_vid):
        """A fresh map of ``labels_by_vid[v] -> v``."""
        self._count = 0
        self._alloc(16)
        self.add(np.ascontiguousarray(labels_by_vid, dtype=np.int64), 0, labels_by_vid)

    def add(self, labels, first, labels_by_vid):
        """Enter ``labels[i] -> first + i`` (absent labels); ``labels_by_vid`` are the labels
        of ids ``0..first-1``, for a rehash."""
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        self._grow_for(self._count + labels.size,
                       np.ascontiguousarray(labels_by_vid[:first], dtype=np.int64))
        klabels.insert_range(self._keys, self._vids, labels, first)
        self._count += labels.size

    def find(self, labels):
        """Internal ids (int64) of ``labels``; ``KeyError`` naming the first absent label."""
        arr = np.asarray(labels).reshape(-1)
        if arr.size and arr.dtype == np.uint64 and int(arr.max()) > _INT64_MAX:
            raise KeyError(f"label {int(arr.max())} is not in the index")
        arr = np.ascontiguousarray(arr, dtype=np.int64)
        out = np.empty(arr.size, dtype=np.int64)
        missing = klabels.lookup(self._keys, self._vids, arr, out)
        if missing >= 0:
            raise KeyError(f"label {int(arr[missing])} is not in the index")
        return out

    def first_present(self, labels):
        """The first of ``labels`` already in the map, or None."""
        arr = np.ascontiguousarray(labels, dtype=np.int64)
        i = klabels.first_present(self._keys, self._vids, arr)
        return None if i < 0 else int(arr[i])

    def __contains__(self, label):
        label = int(label)
        if not 0 <= label <= _INT64_MAX:
            return False
        return klabels.find_slot(self._keys, self._vids, label) >= 0

    def pop(self, label):
        """Remove ``label``; returns its internal id."""
        self._count -= 1
        return int(klabels.delete(self._keys, self._vids, int(label)))

    def move(self, label, vid):
        """Point the present ``label`` at internal id ``vid``."""
        klabels.assign(self._keys, self._vids, int(label), int(vid))
