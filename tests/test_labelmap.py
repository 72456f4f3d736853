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
    for add, base, count in steps:
        if add:
            fresh = [x for x in range(base * 7, base * 7 + 3 * count, 3) if x not in by_vid]
            m.add(np.array(fresh, dtype=np.int64), len(by_vid),
                  np.array(by_vid + fresh, dtype=np.int64))
            by_vid += fresh
        elif by_vid:
            label = by_vid[base % len(by_vid)]
            vid = m.pop(label)
            assert vid == by_vid.index(label)
            last = by_vid.pop()
            if vid < len(by_vid):  # the last vertex moves into the freed id
                by_vid[vid] = last
                m.move(last, vid)
        assert len(m) == len(by_vid)
        if by_vid:
            assert m.find(by_vid).tolist() == list(range(len(by_vid)))
        for probe in range(0, 300, 13):
            assert (probe in m) == (probe in by_vid)


def test_unknown_and_out_of_range_labels():
    m = LabelMap()
    m.add(np.arange(5), 0, np.arange(5))
    with pytest.raises(KeyError, match="label 9 is not in the index"):
        m.find([1, 9, 2])
    with pytest.raises(KeyError, match="label 18446744073709551615 is not in the index"):
        m.find(np.array([2**64 - 1], dtype=np.uint64))
    assert -1 not in m and 2**70 not in m and 3 in m
    assert m.first_present([7, 8, 3, 4]) == 3 and m.first_present([7]) is None


def test_rebuild_and_growth_keep_every_label():
    m = LabelMap()
    labels = np.random.default_rng(0).choice(10**12, size=5000, replace=False)
    for lo in range(0, 5000, 700):  # growth happens inside add, across several doublings
        m.add(labels[lo:lo + 700], lo, labels)
    assert m.find(labels).tolist() == list(range(5000))
    assert m.nbytes < 5000 * 12 * 4  # fewer than 4 slots of 12 bytes per label
    m.rebuild(labels[::-1])
    assert m.find(labels[::-1]).tolist() == list(range(5000))
