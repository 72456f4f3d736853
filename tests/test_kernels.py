"""Leaf kernels against plain numpy: distances, heaps, sorted-row edge edits."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from deg._kernels import graph, heap
from deg._kernels.distances import (
    CHUNK,
    COS,
    IP,
    L2,
    distance,
    distance_rows,
    distance_rows_by_four,
    distance_within,
)

floats = st.floats(-100, 100, width=32)


def test_an_abandoned_cosine_distance_stays_past_a_zero_radius():
    """Halving a subnormal partial sum rounds it down; abandoned it must still exceed the
    bound (a radius of 0 is common: k exact duplicates found)."""
    a = np.zeros(200, np.float32)
    b = np.zeros(200, np.float32)
    a[0], a[150], b[0], b[1], b[151] = 0.6, 0.8, 0.6, 3e-23, 0.8
    zero = np.float32(0.0)
    assert distance_within(COS, a, b, zero) > 0
    out = np.empty(1, np.float32)
    distance_rows(COS, a, b[None].copy(), np.zeros(1, np.int32), 1, zero, np.float32(1), out)
    assert out[0] > 0
    assert distance_within(COS, a, b, np.float32(np.inf)) == distance(COS, a, b)


@given(arrays(np.float32, st.tuples(st.just(2), st.integers(1, 70)), elements=floats))
def test_distances_match_numpy(ab):
    a, b = ab[0], ab[1]
    ref_l2 = float(((a.astype(np.float64) - b) ** 2).sum())
    ref_ip = 1.0 - float(a.astype(np.float64) @ b)
    scale = 1.0 + float(np.abs(a).astype(np.float64) @ np.abs(b)) + ref_l2
    assert abs(distance(L2, a, b) - ref_l2) <= 1e-5 * scale
    assert abs(distance(IP, a, b) - ref_ip) <= 1e-5 * scale
    na = np.linalg.norm(a.astype(np.float64))
    nb = np.linalg.norm(b.astype(np.float64))
    if na > 1e-3 and nb > 1e-3:  # on unit vectors COS is 1 - cos
        ua, ub = (a / na).astype(np.float32), (b / nb).astype(np.float32)
        assert abs(distance(COS, ua, ub) - (1.0 - float(ua.astype(np.float64) @ ub))) <= 1e-5


@given(st.integers(1, CHUNK), st.integers(0, 11), st.integers(0, 2**32 - 1))
def test_rows_summed_four_at_a_time_match_one_at_a_time_up_to_rounding(dim, count, seed):
    # query search sums rows of one chunk four at a time: the same distances up to float32
    # rounding (the vectoriser orders the sums otherwise), every row written, none beyond count
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(30, dim)).astype(np.float32)
    vectors[3] = vectors[4]  # a duplicate: distance exactly 0 from its twin
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = rng.integers(0, 30, size=12).astype(np.int32)
    for metric, rows in ((L2, vectors), (COS, unit)):
        query = rows[ids[0]] if seed % 2 else rng.normal(size=dim).astype(np.float32)
        if metric == COS:
            query = (query / np.linalg.norm(query)).astype(np.float32)
        out = np.full(12, -1.0, dtype=np.float32)
        distance_rows_by_four(metric, query, rows, ids, count, np.float32(np.inf), out)
        want = np.array([distance(metric, query, rows[i]) for i in ids[:count]], np.float32)
        scale = (
            1.0
            + float(query.astype(np.float64) @ query)
            + float((rows.astype(np.float64) ** 2).sum(1).max())
        )
        assert np.all(np.abs(out[:count] - want) <= 1e-5 * scale)
        assert np.all(out[:count][want == 0] == 0)  # a stored vector as query: distance 0
        assert (out[count:] == -1.0).all()


@given(
    st.integers(1, 3 * CHUNK + 5),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
    st.floats(0, 2, allow_nan=False),
)
def test_rows_read_together_give_the_bits_of_one_at_a_time(dim, count, seed, frac):
    # the search reads fresh neighbours side by side; construction reuses those distances as
    # edge weights, so they must be the bits distance() gives, or past the bound when abandoned
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(20, dim)).astype(np.float32)
    query = rng.normal(size=dim).astype(np.float32)
    ids = rng.integers(0, 20, size=8).astype(np.int32)
    for metric in (L2, COS):
        full = np.array([distance(metric, query, vectors[i]) for i in ids[:count]])
        bound = np.float32(np.median(full) * frac)
        out = np.full(8, -1.0, dtype=np.float32)
        distance_rows(metric, query, vectors, ids, count, bound, np.float32(1), out)
        for r in range(count):
            alone = distance_within(metric, query, vectors[ids[r]], bound)
            if full[r] <= bound:
                assert out[r] == full[r] == alone
            else:
                assert out[r] > bound and alone > bound
                assert out[r] == alone
        assert (out[count:] == -1.0).all()
    distance_rows(IP, query, vectors, ids, count, bound, np.float32(1), out)  # never bounded
    assert (out[:count] == [distance(IP, query, vectors[i]) for i in ids[:count]]).all()
    assert (out[count:] == -1.0).all()


@given(
    st.integers(1, 3 * CHUNK + 5),
    st.integers(0, 2**32 - 1),
    st.floats(0.1, 0.95),
    st.floats(0.2, 2),
)
def test_lead_rejects_exactly_the_rows_whose_first_chunk_passes_its_share(dim, seed, lead, frac):
    # queries of a rotated index reject a row on its first chunk alone (lead < 1); every other
    # row keeps the exact outcome, and a row of one chunk is never cut short
    from deg._kernels.distances import chunk_end, l2sq

    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(20, dim)).astype(np.float32)
    query = rng.normal(size=dim).astype(np.float32)
    ids = rng.integers(0, 20, size=8).astype(np.int32)
    lead = np.float32(lead)
    end = chunk_end(0, dim)
    for metric in (L2, COS):
        full = np.array([distance(metric, query, vectors[i]) for i in ids])
        bound = np.float32(np.median(full) * frac)
        exact, led = np.empty(8, np.float32), np.empty(8, np.float32)
        distance_rows(metric, query, vectors, ids, 8, bound, np.float32(1), exact)
        distance_rows(metric, query, vectors, ids, 8, bound, lead, led)
        summed = bound if metric == L2 else np.float32(2) * bound  # COS sums squared L2
        for r in range(8):
            first = l2sq(query[:end], vectors[ids[r]][:end])
            if end < dim and first > lead * summed:  # (past the bound itself: inf as well)
                assert led[r] == np.inf
            else:
                assert led[r] == exact[r]


# distances as the kernels produce them: signed (inner products), zeros of both signs, ties
DISTS = st.one_of(
    st.integers(-5, 5), st.sampled_from([-0.0, 0.0]), st.floats(width=32, allow_nan=False)
).map(np.float32)
IDS = st.integers(0, 2**31 - 1)


@given(st.lists(st.tuples(DISTS, st.integers(0, 50)), max_size=60))
def test_heaps_pop_in_lexicographic_order(items):
    n = len(items)
    keys = np.empty(n + 1, np.uint64)
    size = 0
    for dist, idx in items:
        size = heap.cand_push(keys, size, heap.cand_key(dist, idx))
    popped = []
    while size:
        popped.append(heap.cand_id(keys[0]))
        size = heap.cand_pop(keys, size)
    lexicographic = sorted(items, key=lambda t: (float(t[0]), t[1]))
    assert popped == [idx for _, idx in lexicographic]
    hd, hi = np.empty(n + 1, np.float32), np.empty(n + 1, np.int32)
    for dist, idx in items:
        size = heap.max_push(hd, hi, size, dist, idx)
    out_d, out_i = np.empty(n, np.float32), np.empty(n, np.int32)
    heap.max_drain_sorted(hd, hi, size, out_d, out_i)
    assert [(float(a), b) for a, b in zip(out_d, out_i)] == [
        (float(a), b) for a, b in lexicographic
    ]


@given(DISTS, IDS, DISTS, IDS)
def test_candidate_keys_order_like_before(d1, i1, d2, i2):
    k1, k2 = heap.cand_key(d1, i1), heap.cand_key(d2, i2)
    assert (k1 < k2) == heap.before(d1, i1, d2, i2)
    assert heap.cand_id(k1) == i1


@given(st.floats(allow_nan=False), DISTS, IDS)
def test_stop_key_separates_distances_past_the_bound(xr, dist, idx):
    from deg._kernels.search import stop_key

    assert (heap.cand_key(dist, idx) > stop_key(xr)) == (float(dist) > xr)


@given(
    st.lists(
        st.tuples(DISTS, st.integers(0, 50)), min_size=1, max_size=30, unique_by=lambda t: t[1]
    ),
    DISTS,
    st.integers(51, 60),
)
def test_replace_top_is_push_then_pop(items, dist, idx):
    n = len(items)
    a = (np.empty(n + 1, np.float32), np.empty(n + 1, np.int32))
    b = (np.empty(n + 1, np.float32), np.empty(n + 1, np.int32))
    size = 0
    for d, i in items:
        heap.max_push(*a, size, d, i)
        size = heap.max_push(*b, size, d, i)
    if not heap.before(dist, idx, a[0][0], a[1][0]):
        return
    heap.max_replace_top(*a, size, dist, idx)
    heap.max_pop(*b, heap.max_push(*b, size, dist, idx))
    drained = []
    for h in (a, b):
        out_d, out_i = np.empty(n, np.float32), np.empty(n, np.int32)
        heap.max_drain_sorted(*h, size, out_d, out_i)
        drained.append(list(zip(out_d.tolist(), out_i.tolist())))
    assert drained[0] == drained[1]


@given(st.lists(st.integers(0, 1000), min_size=2, max_size=12, unique=True), st.data())
def test_change_edge_replaces_in_place(row, data):
    row = np.array(row, dtype=np.int32)[None, :]  # any order
    weights = row.astype(np.float32)
    old = data.draw(st.sampled_from(row[0].tolist()))
    new = data.draw(st.integers(0, 1000).filter(lambda x: x not in row[0]))
    expected = [new if v == old else v for v in row[0].tolist()]
    assert graph.change_edge(row, weights, 0, old, new, np.float32(new))
    assert row[0].tolist() == expected
    assert (weights[0] == row[0]).all()  # the weight went into the same slot
    before = row.copy()
    assert not graph.change_edge(row, weights, 0, old, 5, np.float32(5))  # absent: no change
    assert np.array_equal(row, before)
    assert graph.find_slot(row, 0, new) == expected.index(new)
    assert graph.find_slot(row, 0, old) == -1


@given(st.lists(st.integers(0, 20), min_size=2, max_size=40), st.integers(-1, 21))
def test_find_slot_is_the_first_match(row, x):
    arr = np.array(row, dtype=np.int32)[None, :]
    assert graph.find_slot(arr, 0, x) == (row.index(x) if x in row else -1)


@given(
    st.sampled_from(["random", "grid"]),
    st.sampled_from(["l2", "cosine"]),
    st.integers(0, 2**32 - 1),
    st.data(),
)
def test_least_distortion_equals_scoring_every_neighbour(kind, metric, seed, data):
    """Scheme D scores the logged distances first and abandons the others once they cannot
    win; the choice must be exactly that of scoring every neighbour in slot order (first best
    on ties), whatever part of the distances is known. Grid data makes exact ties common.

    The reference is the kernel itself with every distance known (pure scoring, nothing
    abandoned): its float32 sums may be associated differently from numpy's (fastmath
    ``reassoc``), which on cosine grid data turns 1-ulp differences into ties. That reference
    is checked against numpy up to that rounding."""
    import deg
    from deg._kernels.build import least_distortion
    from deg._kernels.state import Graph

    rng = np.random.default_rng(seed)
    if kind == "grid":
        x = rng.integers(1, 5, size=(150, 3)).astype(np.float32)
    else:
        x = rng.normal(size=(150, 40)).astype(np.float32) * 100
    index = deg.Index.build(x, metric=metric, edges_per_vertex=8, progress=False)
    code = index.internals().store.metric_code
    nb, w, vec = (
        index.internals().store.neighbors,
        index.internals().store.weights,
        index.internals().store.vectors,
    )
    for _ in range(20):
        v, c = (int(i) for i in rng.choice(150, size=2, replace=False))
        w_cv = distance(code, vec[v], vec[c])
        stamp = np.where(rng.random(150) < data.draw(st.floats(0, 1)), v, -1).astype(np.int64)
        known = np.array([distance(code, vec[v], vec[m]) for m in range(150)], np.float32)
        graph = Graph(vec, nb, w, code)
        every = least_distortion(graph, v, c, w_cv, known, np.full(150, v, np.int64))
        got = least_distortion(graph, v, c, w_cv, known, stamp)
        assert got[0] == every[0] and (got[0] < 0 or got[1] == every[1])
        scores = {
            j: float(w_cv) + float(known[m]) - float(w[c, j])
            for j, m in enumerate(nb[c])
            if m != c and m not in nb[v]
        }
        assert (every[0] < 0) == (not scores)
        if scores:
            size = float(w_cv) + float(np.abs(w[c]).max()) + float(known.max())
            assert scores[every[0]] <= min(scores.values()) + 1e-6 * size
