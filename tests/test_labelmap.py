"""The label -> internal id hash table against a dict model, under random churn."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deg._labelmap import LabelMap


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40), st.integers(1, 6)), max_size=60))
def test_label_map_matches_a_dict(steps):
    """Adds of fresh labels and removals (with the index's swap-with-last id moves), checked
    against a dict after every step; small label ranges force collisions and probe runs."""
    m = LabelMap()
    by_vid = []  # labels in internal-id order, as the index keeps them

    def table():  # the index's label array: capacity beyond n holds -1
        return np.array(by_vid + [-1] * 3, dtype=np.int64)

    for add, base, count in steps:
        if add:
            fresh = [x for x in range(base * 7, base * 7 + 3 * count, 3) if x not in by_vid]
            first = len(by_vid)
            by_vid += fresh
            m.add(first, len(by_vid), table())
        elif by_vid:
            label = by_vid[base % len(by_vid)]
            vid = m.pop(label, table())
            assert vid == by_vid.index(label)
            last = len(by_vid) - 1
            by_vid[vid] = by_vid[last]  # the last vertex moves into the freed id
            by_vid.pop()
            if vid < last:
                m.move(last, vid, table())
        assert len(m) == len(by_vid)
        if by_vid:
            assert m.find(by_vid, table()).tolist() == list(range(len(by_vid)))
        for probe in range(0, 300, 13):
            assert m.contains(probe, table()) == (probe in by_vid)


def test_unknown_and_out_of_range_labels():
    m = LabelMap()
    by_vid = np.arange(5)
    m.add(0, 5, by_vid)
    with pytest.raises(KeyError, match="label 9 is not in the index"):
        m.find([1, 9, 2], by_vid)
    with pytest.raises(KeyError, match="label 18446744073709551615 is not in the index"):
        m.find(np.array([2**64 - 1], dtype=np.uint64), by_vid)
    assert not m.contains(-1, by_vid) and not m.contains(2**70, by_vid)
    assert m.contains(3, by_vid)
    assert m.first_present([7, 8, 3, 4], by_vid) == 3 and m.first_present([7], by_vid) is None


def test_rebuild_and_growth_keep_every_label():
    m = LabelMap()
    labels = np.random.default_rng(0).choice(10**12, size=5000, replace=False)
    for lo in range(0, 5000, 700):  # growth happens inside add, across several doublings
        m.add(lo, min(lo + 700, 5000), labels)
    assert m.find(labels, labels).tolist() == list(range(5000))
    assert m.nbytes <= 5000 * 4 * 4  # at most 4 slots of 4 bytes per label
    m.rebuild(labels[::-1])
    assert m.find(labels[::-1], labels[::-1]).tolist() == list(range(5000))
