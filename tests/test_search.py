"""Search and exploration: recall against brute force, semantics, padding, threads, budget."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deg
from deg._concurrency import ScratchPool
from deg._kernels import view as kview
from deg._kernels.state import SearchSpec
from deg._searching import Searcher
from tests.conftest import brute_force, low_dim_data, recall


@pytest.fixture(scope="module")
def data():
    x = low_dim_data(4000, dim=32, seed=1)
    q = low_dim_data(200, dim=32, seed=2)
    return x, q


@pytest.fixture(scope="module")
def index(data):
    return deg.Index.build(data[0], edges_per_vertex=16, progress=False)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_recall_against_brute_force(data, metric):
    x, q = data
    if metric == "ip":  # inner-product search on normalised data is the MIPS-as-cosine case
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    index = deg.Index.build(x, metric=metric, edges_per_vertex=16, progress=False)
    truth, tdist = brute_force(x, q, 10, metric)
    got, dist = index.search(q, k=10, eps=0.2)
    r = recall(got, truth)
    # measured 0.99+ for all three metrics (n=4000, latent dim 6, d=16, eps=0.2)
    assert r >= 0.97, (metric, r)
    hit = got[:, 0] == truth[:, 0]
    np.testing.assert_allclose(dist[hit, 0], tdist[hit, 0], rtol=1e-4, atol=1e-4)


def test_recall_grows_with_eps(index, data):
    x, q = data
    truth, _ = brute_force(x, q, 10)
    rs = [recall(index.search(q, k=10, eps=e)[0], truth) for e in (0.0, 0.05, 0.2, 0.5)]
    assert all(b >= a - 0.005 for a, b in itertools.pairwise(rs)), rs
    assert rs[-1] > rs[0], rs


def test_results_sorted_and_true_distances(index, data):
    x, q = data
    labels, dists = index.search(q[:50], k=10)
    assert labels.dtype == np.int64 and dists.dtype == np.float32 and labels.shape == (50, 10)
    assert (np.diff(dists, axis=1) >= 0).all()
    true = ((x[labels] - q[:50, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(dists, true, rtol=1e-4, atol=1e-3)


def test_everything_found_with_large_k_and_eps():
    x = low_dim_data(300, dim=8)
    index = deg.Index.build(x, edges_per_vertex=6, progress=False)
    labels, _ = index.search(x[:3], k=300, eps=10.0)
    assert all(sorted(row) == list(range(300)) for row in labels.tolist())


def test_padding_when_fewer_than_k():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    index = deg.Index.build(x, edges_per_vertex=4, progress=False)
    labels, dists = index.search(x[0], k=6)
    assert labels.tolist() == [[0, 1, 2, 3, -1, -1]]
    assert np.isinf(dists[0, 4:]).all() and dists[0, 0] == 0
    empty = deg.Index(3)
    labels, dists = empty.search(x, k=2)
    assert (labels == -1).all() and np.isinf(dists).all()


def test_same_results_any_thread_count(index, data):
    """The threads of a batch claim its queries in chunks as they go: any thread count (more
    than the cores, or a share of a few queries each) answers every query as one thread does."""
    q = data[1]
    one = index.search(q, k=10, eps=0.1, threads=1)
    for threads in (2, 3, 5):
        other = index.search(q, k=10, eps=0.1, threads=threads)
        assert np.array_equal(one[0], other[0]) and np.array_equal(one[1], other[1])
    row = index.search(q[7], k=10, eps=0.1)
    assert np.array_equal(row[0], one[0][7:8])
    for call in (
        lambda t: index.search(q, k=10, eps=0.05, max_degree=8, threads=t),
        lambda t: index.explore(np.arange(300), k=10, max_degree=10, threads=t),
        lambda t: index.search(q, k=10, max_distance_computations=120, threads=t),
        lambda t: index.search(q[:9], k=10, threads=t),
    ):
        one, two = call(1), call(2)
        assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])


def test_distance_budget_is_respected(index, data):
    q = data[1][:40]
    _, _, free = index.search(q, k=10, eps=0.3, return_stats=True)
    _, _, capped = index.search(q, k=10, eps=0.3, max_distance_computations=100, return_stats=True)
    assert (capped["distance_computations"] <= 100).all()
    assert (free["distance_computations"] > 100).any()


def test_explore_excludes_entry_by_default(index, data):
    x = data[0]
    entries = np.array([0, 17, 3999])
    labels, _dists = index.explore(entries, k=10, eps=0.2)
    assert not (labels == entries[:, None]).any()
    truth, _ = brute_force(x, x[entries], 11)
    assert recall(labels, truth[:, 1:]) >= 0.9  # measured 1.0
    with_entry, d0 = index.explore(entries, k=10, eps=0.2, include_entry=True)
    assert (with_entry[:, 0] == entries).all() and (d0[:, 0] == 0).all()


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_explore_takes_the_entry_distances_from_its_edge_weights(data, metric):
    """Exploration skips computing the distances to the entry's own neighbours (its edge
    weights are those distances): with exact distances the results must be bit for bit those
    of a plain search from the entry, for the cost of d fewer distance computations (and
    ``explore``, which may sum rows four at a time, the same up to rounding). With
    ``max_degree`` the entry still offers all its d neighbours (they are free), so the k-th
    result is never farther than the entry's k-th shortest edge."""
    x = data[0] / np.linalg.norm(data[0], axis=1, keepdims=True) if metric == "ip" else data[0]
    index = deg.Index.build(x[:1500], metric=metric, edges_per_vertex=12, progress=False)
    vids = np.arange(0, 1500, 7)
    entries = vids.astype(np.int32).reshape(-1, 1)
    parts = index.internals()
    searcher = Searcher(parts.store, parts.tree, parts.basis, ScratchPool())
    for eps, include in ((0.0, False), (0.1, True)):
        runs = [
            searcher.run(
                parts.store.vectors[vids],
                entries,
                SearchSpec(10, eps, np.float32(1.0), True, include, own, 0, 12),
                1,
            )
            for own in (True, False)
        ]
        (own_i, own_d, own_dc, _), (ref_i, ref_d, ref_dc, _) = runs
        assert np.array_equal(own_i, ref_i) and np.array_equal(own_d, ref_d)
        assert (own_dc == ref_dc - 12).all()
        labels, dists, stats = index.explore(
            vids, k=10, eps=eps, include_entry=include, return_stats=True
        )
        assert np.array_equal(labels, ref_i)
        np.testing.assert_allclose(dists, ref_d, rtol=1e-6, atol=1e-6)
        assert (stats["distance_computations"] == ref_dc - 12).all()
    _, dists = index.explore(vids, k=10, eps=0.0, max_degree=2)
    kth_edge = np.sort(index.internals().store.weights[vids], axis=1)[:, 9]
    assert (dists[:, 9] <= kth_edge).all()


def test_explore_single_label_and_unknown_label(index):
    labels, _ = index.explore(5, k=3)
    assert labels.shape == (1, 3)
    with pytest.raises(KeyError, match="label 123456 is not in the index"):
        index.explore([1, 123456])


def test_max_degree_prunes_the_view_not_the_results(index, data):
    x, q = data
    full = index.search(q, k=10, eps=0.1, return_stats=True)
    same = index.search(q, k=10, eps=0.1, max_degree=16, return_stats=True)  # d = 16
    assert np.array_equal(full[0], same[0]) and np.array_equal(full[1], same[1])
    pruned = index.search(q, k=10, eps=0.1, max_degree=10, return_stats=True)
    assert pruned[2]["distance_computations"].mean() < full[2]["distance_computations"].mean()
    true = ((x[pruned[0]] - q[:, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(pruned[1], true, rtol=1e-4, atol=1e-3)
    truth, _ = brute_force(x, q, 10)
    assert recall(pruned[0], truth) >= 0.9  # measured 0.99 (d=16 graph, 10 shortest edges)
    labels, _ = index.explore([1, 2], k=5, max_degree=8)
    assert labels.shape == (2, 5) and (labels >= 0).all()
    for bad in (0, 17):
        with pytest.raises(ValueError, match="max_degree must be"):
            index.search(q[:1], max_degree=bad)


def reference_view_row(index, u):
    """The search view of row u, written out plainly: diversified edges by weight, then the
    other real edges by weight, then empty slots (ties by slot)."""
    nb, w, x = (
        index.internals().store.neighbors[u],
        index.internals().store.weights[u],
        index.internals().store.vectors,
    )
    real = sorted((j for j in range(len(nb)) if nb[j] != u), key=lambda j: (w[j], j))
    kept, rest = [], []
    for j in real:
        v = nb[j]
        dist = [float(((x[nb[a]] - x[v]) ** 2).sum()) for a in kept]
        (rest if any(dv < w[j] for dv in dist) else kept).append(j)
    return kept + rest + [j for j in range(len(nb)) if nb[j] == u]


def test_rows_are_in_the_order_of_a_plain_reference(index):
    index.search(index.get_vectors([0]), max_degree=4)  # a search that needs the view
    d = index.edges_per_vertex
    for u in range(0, len(index), 97):
        assert reference_view_row(index, u) == list(range(d)), u
    # the first edge of each row is its shortest
    w = index.internals().store.weights[: len(index)]
    assert np.array_equal(w[:, 0], w.min(axis=1))


def test_search_view_follows_edits(data):
    """Rows changed by add, remove and optimize get a fresh view, the others keep theirs."""
    x, _ = data
    index = deg.Index.build(x[:1500], edges_per_vertex=8, progress=False)
    report = deg.analysis.check(index, gq_sample=0)
    assert report["view_current"]
    index.add(x[1500:1600])
    index.remove(np.arange(0, 1500, 7))
    index.optimize(tries=200)
    report = deg.analysis.check(index, gq_sample=0)
    assert report["view_current"]
    index.search(x[:2], k=5, max_degree=4)  # the view, brought up to date for a pruned search
    report = deg.analysis.check(index, gq_sample=0)
    assert report["view_current"] and report["view_pending"] == 0
    index.internals().store.neighbors[5] = (
        index.internals().store.neighbors[5, ::-1].copy()
    )  # a row out of order is detected
    index.internals().store.weights[5] = index.internals().store.weights[5, ::-1].copy()
    assert deg.analysis.check(index, gq_sample=0)["view_pending"] == 1
    index.internals().store.sig[5] = kview.row_signature(
        index.internals().store.neighbors, index.internals().store.gen, 5
    )  # and claimed in order
    assert not deg.analysis.check(index, gq_sample=0)["view_current"]


def test_entry_tree_is_a_balanced_median_split(index):
    """Every hyperplane splits its node's members at the median of their projections, leaves
    hold 4-8 members, a query enters at the members of the leaf it descends to, and the
    hyperplane tests count as distance computations."""
    from deg._kernels.entry_tree import leaf_of

    members, pairs, stored, offsets = (
        index.internals().tree.members,
        index.internals().tree.pairs,
        index.internals().tree.planes,
        index.internals().tree.offsets,
    )
    n = len(index)
    levels = int(np.log2(pairs.shape[0] + 1))
    assert pairs.shape == (2**levels - 1, 2) and 2**levels * 4 <= n <= 2**levels * 8
    np.testing.assert_array_equal(np.sort(members), np.arange(n))
    x = index.internals().store.vectors[:n]
    planes = x[members[pairs[:, 0]]] - x[members[pairs[:, 1]]]
    top = stored.shape[0]  # the upper levels' hyperplanes, stored: 1% of the vectors' bytes
    assert 0 < top < pairs.shape[0] and (top + 1) * 2 * 32 > 0.01 * n * 32 >= top * 32
    np.testing.assert_array_equal(stored, planes[:top])
    ranges = [(0, n)]
    for i in range(planes.shape[0]):
        lo, hi = ranges[i]
        mid = (lo + hi) // 2
        assert lo <= pairs[i].min() and pairs[i].max() < hi  # two of its own members
        proj = x[members[lo:hi]] @ planes[i] + offsets[i]
        tol = 1e-4 * (1 + np.abs(proj).max())
        assert (proj[: mid - lo] <= tol).all() and (proj[mid - lo :] >= -tol).all(), i
        ranges += [(lo, mid), (mid, hi)]
    leaves = ranges[planes.shape[0] :]
    assert all(4 <= hi - lo <= 8 for lo, hi in leaves)
    q = low_dim_data(20, dim=32, seed=7)
    for row in q:  # the descent by hand
        node, lo, hi = 0, 0, n
        while node < planes.shape[0]:
            up = row @ planes[node] + offsets[node] > 0
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if up else (lo, mid)
            node = 2 * node + 1 + up
        assert leaf_of(row, x, members, pairs, stored, offsets) == (lo, hi)
    home = [members[slice(*leaf_of(v, x, members, pairs, stored, offsets))] for v in x[:300]]
    assert np.mean([v in h for v, h in enumerate(home)]) >= 0.99  # a vector finds its leaf
    _, _, stats = index.search(q, k=5, eps=0.0, return_stats=True)
    assert (stats["distance_computations"] > levels).all()


def test_entry_tree_appears_once_the_graph_is_large_enough():
    """A graph below 1024 vertices has no tree (queries enter at vertex 0); small adds past
    1024 must draw one, the next small ones keep it."""
    from deg import _entries

    assert _entries.stale(1100, 900) and _entries.stale(1600, 1050)
    assert not _entries.stale(1100, 1050) and not _entries.stale(1500, 1050)
    assert _entries.stale(1000, 1050) and not _entries.stale(1400, 2000)
    index = deg.Index.build(low_dim_data(1000, dim=8, seed=2), edges_per_vertex=8, progress=False)
    assert index.internals().tree.members.size == 0 and index.internals().tree.pairs.shape == (0, 2)
    for i in range(4):
        index.add(low_dim_data(30, dim=8, seed=10 + i))
    assert len(index) == 1120 and index.internals().tree.drawn_at == 1030
    assert index.internals().tree.members.size == 1030 and index.internals().tree.pairs.shape == (
        255,
        2,
    )  # leaves of 4-5


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("size", [200, 3])  # over all ids; few members (renumbered alone)
def test_entry_tree_members_follow_removals(seed, size):
    """Removals renumber the tree's members like the vertices: a moved vertex keeps its place
    under its new id, a removed one's place goes to the member before it."""
    from deg import _entries

    rng = np.random.default_rng(seed)
    n = 200
    members = rng.permutation(n)[:size].astype(np.int32)
    vertex = list(range(n))  # the original vertex behind each current id
    removed = []
    for _ in range(60):
        vid = int(rng.integers(len(vertex)))
        removed.append(vid)
        vertex[vid] = vertex[-1]  # the last vertex takes the removed id
        vertex.pop()
    out = _entries.renumber(members, removed, n)
    now = {v: i for i, v in enumerate(vertex)}
    expect = [now.get(int(v), -1) for v in members]
    for j in range(len(expect)):  # a removed vertex's place: the member before it
        if expect[j] < 0:
            expect[j] = expect[j - 1] if j else -1
    first = next(e for e in expect if e >= 0)
    expect = [first if e < 0 else e for e in expect]
    assert out.tolist() == expect and out.max() < len(vertex)


def _renumbered(members, vid, last):
    """One removal's renumbering, one pass over every member: the rule the tree's chains
    apply without that pass."""
    out, prev, leading = [], None, 0
    for v in members:
        if v == vid:
            if prev is None:
                leading += 1
            else:
                out.append(prev)
            continue
        prev = vid if v == last else v
        if not out and leading:
            out.extend([prev] * leading)
        out.append(prev)
    return out if prev is not None else None


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_entry_tree_chains_renumber_as_one_pass_would(data):
    """The chains follow every removal: members with repeats (earlier removals make them),
    removals of members, of non-members and of the last vertex; the live chains of one tree
    renumber each removal as a pass over all members would."""
    from deg import _entries

    n = data.draw(st.integers(2, 40))
    members = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=30))
    chains = _entries.Chains(np.array(members, dtype=np.int32))
    live = np.array(members, dtype=np.int32)
    expect = list(members)
    while n > 1 and expect is not None:
        vid = data.draw(st.integers(0, n - 1))
        expect = _renumbered(expect, vid, n - 1)
        ok = chains.renumber(live, [vid], n)
        assert ok == (expect is not None)
        if ok:
            assert live.tolist() == expect
        n -= 1
