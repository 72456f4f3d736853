"""Adds, removals and edge optimisation in any order keep every invariant (issue #4), and a
filter kept across them returns exactly what a fresh one does (issue #23)."""

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import deg
from deg import _quantizer as quantizer
from deg import analysis
from deg._filtering import forced
from deg._kernels import edges as kedges
from deg._kernels import view as kview
from tests.conftest import assert_graph_ok, low_dim_data


class DynamicIndex(RuleBasedStateMachine):
    """A model (dict label -> vector) beside the index; every step is checked against it."""

    scheme = "low-lid"
    dtype = "float32"
    quantize = None

    def __init__(self):
        super().__init__()
        self.d = 4
        self.index = deg.Index(
            3,
            edges_per_vertex=self.d,
            improve_k=4,
            improve_tries=1,
            scheme=self.scheme,
            dtype=self.dtype,
            quantize=self.quantize,
        )
        self.model = {}
        self.removed = set()
        self.rng = np.random.default_rng(0)
        # a filter made once, before most of its labels exist, kept across every change
        self.allowed = set(range(0, 400, 3))
        self.filter = deg.Filter(self.index, sorted(self.allowed))

    def points(self, m):
        """m vectors the index's type holds exactly as drawn (integers for uint8/int8)."""
        if self.dtype in ("uint8", "int8"):
            lo = 0 if self.dtype == "uint8" else -128
            return self.rng.integers(lo, lo + 256, size=(m, 3)).astype(np.float32)
        x = self.rng.random((m, 3), dtype=np.float32)
        return x.astype(np.float16).astype(np.float32) if self.dtype == "float16" else x

    @rule(m=st.integers(1, 25), dup=st.booleans(), reuse=st.booleans())
    def add(self, m, dup, reuse):
        x = self.rng.integers(0, 6, size=(m, 3)).astype(np.float32) if dup else self.points(m)
        labels = None
        if reuse and len(self.removed) >= m:  # removed labels may come back
            labels = sorted(self.removed)[:m]
        got = self.index.add(x, labels=labels)
        for label, vec in zip(got.tolist(), x):
            self.model[label] = vec
            self.removed.discard(label)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def remove(self, data):
        labels = data.draw(
            st.lists(
                st.sampled_from(sorted(self.model)),
                min_size=1,
                max_size=min(8, len(self.model)),
                unique=True,
            )
        )
        self.index.remove(labels)
        for label in labels:
            del self.model[label]
            self.removed.add(label)

    @precondition(lambda self: self.removed)
    @rule()
    def remove_unknown_raises(self):
        with pytest.raises(KeyError):
            self.index.remove([next(iter(self.removed))])

    @rule(tries=st.integers(1, 60))
    def optimize(self, tries):
        before = analysis.average_edge_weight(self.index)
        report = self.index.optimize(tries=tries)
        assert report["aew_after"] <= before + 1e-6 * max(1.0, before)

    @precondition(lambda self: self.model)
    @rule(k=st.integers(1, 12))
    def search_and_explore(self, k):
        q = self.points(3)
        labels, _ = self.index.search(q, k=k, eps=0.5)
        found = set(labels.ravel().tolist()) - {-1}
        assert found <= set(self.model) and not found & self.removed
        entry = next(iter(self.model))
        labels, _ = self.index.explore([entry], k=k)
        found = set(labels.ravel().tolist()) - {-1}
        assert entry not in found and found <= set(self.model)

    @precondition(lambda self: self.model)
    @rule(k=st.integers(1, 12), path=st.sampled_from(["graph", "scan", None]), data=st.data())
    def filtered_search(self, k, path, data):
        denied = data.draw(st.lists(st.sampled_from(sorted(self.model)), max_size=5))
        q = self.points(3)
        with forced(path):
            labels, dist = self.index.search(q, k=k, eps=0.5, filter=self.filter, exclude=denied)
            fresh, _ = self.index.search(
                q, k=k, eps=0.5, filter=sorted(self.allowed), exclude=denied
            )
        ok = (self.allowed & set(self.model)) - set(denied)
        for row in labels:
            got = set(row.tolist()) - {-1}
            assert got <= ok and len(got) == min(k, len(ok))
        assert (labels == fresh).all() and np.isinf(dist[labels < 0]).all()

    @rule()
    def save_and_load(self):
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.deg")
            self.index.save(path)
            self.index = deg.Index.load(path)
        with pytest.raises(ValueError, match="another index"):
            self.index.search(np.zeros((1, 3), np.float32), filter=self.filter)
        self.filter = deg.Filter(self.index, sorted(self.allowed))

    @invariant()
    def graph_and_labels_consistent(self):
        assert len(self.index) == len(self.model)
        assert_graph_ok(self.index)
        assert sorted(self.index.labels.tolist()) == sorted(self.model)
        if self.model:
            labels = sorted(self.model)
            got = self.index.get_vectors(labels)
            assert got.dtype == np.dtype(self.dtype)
            np.testing.assert_array_equal(got, np.stack([self.model[x] for x in labels]))
        assert all(x not in self.index for x in self.removed)


DynamicIndex.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestDynamicIndex = DynamicIndex.TestCase


class DynamicStreamIndex(DynamicIndex):
    scheme = "stream"


DynamicStreamIndex.TestCase.settings = DynamicIndex.TestCase.settings
TestDynamicStreamIndex = DynamicStreamIndex.TestCase

# every storage type (issue #24): the same machine, fewer runs each
_TYPED = settings(max_examples=40, stateful_step_count=30, deadline=None)


class DynamicFloat16Index(DynamicIndex):
    dtype = "float16"


class DynamicUint8Index(DynamicIndex):
    dtype = "uint8"


class DynamicInt8Index(DynamicIndex):
    dtype = "int8"
    scheme = "stream"


for _machine in (DynamicFloat16Index, DynamicUint8Index, DynamicInt8Index):
    _machine.TestCase.settings = _TYPED
TestDynamicFloat16Index = DynamicFloat16Index.TestCase
TestDynamicUint8Index = DynamicUint8Index.TestCase
TestDynamicInt8Index = DynamicInt8Index.TestCase


class DynamicQuantizedIndex(DynamicIndex):
    """A quantized index whose codes are fitted at 40 vectors, not 1000, so that they live
    through most steps: every stored row's codes are its vector's, whatever moved."""

    quantize = "sq8"

    def __init__(self):
        self._min = quantizer.MIN_VECTORS
        quantizer.MIN_VECTORS = 40
        super().__init__()

    def teardown(self):
        quantizer.MIN_VECTORS = self._min

    @invariant()
    def codes_follow_the_vectors(self):
        parts = self.index.internals()
        store, quant = parts.store, self.index._quant
        n = len(self.index)
        assert quant.fitted or n < 40
        if quant.fitted:
            np.testing.assert_array_equal(store.codes[:n], quant.encode(store.floats(slice(0, n))))


DynamicQuantizedIndex.TestCase.settings = _TYPED
TestDynamicQuantizedIndex = DynamicQuantizedIndex.TestCase


class DynamicEdgeCodedIndex(DynamicQuantizedIndex):
    """Edge codes (quantize="rabitq"), fitted at 40 vectors: whenever the index calls them
    up to date, every row's codes are the ones its current edges and vectors give."""

    quantize = "rabitq"

    @invariant()
    def codes_follow_the_vectors(self):
        store, edges = self.index.internals().store, self.index._quant.edges
        n = len(self.index)
        assert edges.fitted or n < 40
        if edges.fitted and not edges.stale:
            graph = store.graph()
            assert kview.pending(store.neighbors, n, store.esig, store.gen) == 0
            args = (store.gen, store.esig, edges.mean, edges.signs)
            assert kedges.miscoded(graph, n, *args, store.edge_codes, store.edge_factors) == -1

    @precondition(lambda self: self.model)
    @rule(k=st.integers(1, 12))
    def coded_search_gives_exact_distances(self, k):
        """A stored vector as the query: what the walk returns are stored labels at their
        exact distances, ascending (the estimates only order the walk)."""
        q = self.model[next(iter(self.model))][None]
        labels, dists = self.index.search(q, k=k, eps=0.5)
        found = labels[0] >= 0
        assert set(labels[0][found].tolist()) <= set(self.model)
        want = [float(((self.model[x] - q[0]) ** 2).sum()) for x in labels[0][found]]
        np.testing.assert_allclose(dists[0][found], want, rtol=1e-5, atol=1e-6)
        assert (np.diff(dists[0][found]) >= 0).all()


DynamicEdgeCodedIndex.TestCase.settings = _TYPED
TestDynamicEdgeCodedIndex = DynamicEdgeCodedIndex.TestCase


@pytest.mark.parametrize("d", [2, 4, 8])
def test_remove_everything_then_add_again(d):
    x = low_dim_data(200, dim=6)
    index = deg.Index.build(x, edges_per_vertex=d, progress=False)
    order = np.random.default_rng(1).permutation(200)
    for chunk in np.array_split(order, 7):
        index.remove(chunk)
        assert_graph_ok(index)
    assert len(index) == 0
    index.add(x[:50], labels=np.arange(50))
    assert_graph_ok(index)
    assert index.search(x[3], k=50)[0][0, 0] == 3  # k = n: exhaustive even for a ring (d=2)


def test_optimize_lowers_aew_keeps_graph_and_recall():
    from tests.conftest import brute_force, recall

    x = low_dim_data(3000, dim=16)
    q = low_dim_data(100, dim=16, seed=9)
    index = deg.Index.build(x, edges_per_vertex=10, progress=False)
    truth, _ = brute_force(x, q, 10)
    r0 = recall(index.search(q, k=10, eps=0.1)[0], truth)
    report = index.optimize(tries=3000)
    assert report["tries"] == 3000 and report["improved"] > 0
    assert report["aew_after"] < report["aew_before"]
    assert_graph_ok(index)
    r1 = recall(index.search(q, k=10, eps=0.1)[0], truth)
    assert r1 >= r0 - 0.01, (r0, r1)
    timed = index.optimize(seconds=0.2)
    assert timed["tries"] > 0


def test_remove_bad_input_changes_nothing():
    x = low_dim_data(100, dim=4)
    index = deg.Index.build(x, edges_per_vertex=6, progress=False)
    nb_before = index.neighbors(index.labels)
    with pytest.raises(KeyError, match="label 100 is not in the index"):
        index.remove([5, 100])
    with pytest.raises(ValueError, match="duplicates"):
        index.remove([5, 5])
    assert len(index) == 100 and 5 in index
    assert all(np.array_equal(a, b) for a, b in zip(nb_before, index.neighbors(index.labels)))


def _open_pair(nb, rng):
    """Vertices a, c of the rows ``nb`` (changed in place) that are adjacent and each lack one
    edge, every other vertex full: edges a-x and c-y are cut and x-y joined. (a, c)."""
    n = nb.shape[0]
    for a in rng.permutation(n):
        for c in nb[a]:
            for x in nb[a]:
                for y in nb[c]:
                    if len({a, c, x, y}) == 4 and y not in nb[x] and x not in nb[y]:
                        nb[a, nb[a] == x] = a
                        nb[c, nb[c] == y] = c
                        nb[x, nb[x] == a] = y
                        nb[y, nb[y] == c] = x
                        return int(a), int(c)
    raise AssertionError("no open pair could be made")


@pytest.mark.parametrize(
    ("dtype", "metric"),
    [("float32", "l2"), ("uint8", "l2"), ("float16", "cosine"), ("float32", "ip")],
)
def test_leftover_rewiring_cuts_the_nearest_usable_two_hop_edge(dtype, metric):
    """Step 3.5 of the repair against a reference: a's nearest 2-hop vertex B (not a
    neighbour) that has a neighbour D usable by c becomes a's neighbour, D (c's nearest such)
    c's, and B-D is cut; every row is full again and nothing else changes."""
    from deg._kernels import remove as kremove

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(400, 12)).astype(np.float32)
    index = deg.Index(dim=12, metric=metric, edges_per_vertex=8, dtype=dtype, seed=1)
    index.add(x, threads=1)
    vectors, neighbors, weights, code = index._store.graph()
    n = len(index)
    vec = index._store.floats(slice(0, n)).astype(np.float64)  # as stored (cosine: unit, rounded)
    nb, w = neighbors[:n].copy(), weights[:n].copy()
    a, c = _open_pair(nb, rng)
    before = nb.copy()

    def dist(i, j):
        if metric == "ip":
            return 1.0 - float(vec[i] @ vec[j])
        return float(np.sum((vec[i] - vec[j]) ** 2)) / (2 if metric == "cosine" else 1)

    seen = []  # the reference: 2-hop vertices in first-met order, nearest first (stable)
    for h in before[a]:
        for p in before[h]:
            if h != a and p not in (a, h) and p not in before[a] and p not in seen:
                seen.append(int(p))
    for b in sorted(seen, key=lambda p: dist(a, p)):
        usable = [q for q in before[b] if q not in (a, b) and q not in before[c]]
        if usable:
            d_ = min(usable, key=lambda q: dist(c, q))
            break
    owner = np.full(index._store.capacity, -1, np.int64)
    graph = (vectors[:n], nb, w, code)
    assert kremove.rewire_leftovers(graph, np.array([a, c], np.int64), 2, owner)
    assert (owner == -1).all()
    assert b in nb[a] and d_ in nb[c] and d_ not in nb[b] and b not in nb[d_]
    assert (nb != np.arange(n)[:, None]).all()  # no empty slot left
    changed = {int(v) for v in np.flatnonzero((nb != before).any(axis=1))}
    assert changed == {a, c, b, d_}


@pytest.mark.parametrize("last_adjacent", [True, False])
def test_a_removal_is_planned_before_its_step(last_adjacent):
    """``plan_removal`` names, before anything changes, the vertices the removal leaves open
    (in its order and new ids, the last vertex renamed) and their distances; a plan made for
    another vertex is refused."""
    from deg._kernels import distances as kdist
    from deg._kernels import remove as kremove

    rng = np.random.default_rng(4)
    x = rng.random((300, 6), dtype=np.float32)
    index = deg.Index(dim=6, edges_per_vertex=8, seed=2)
    index.add(x, threads=1)
    vectors, neighbors, weights, code = index._store.graph()
    n = len(index)
    last = n - 1
    nb = neighbors[:n]
    vid = next(v for v in range(n - 1) if (last in nb[v]) == last_adjacent)
    ids, dist = np.empty(8, np.int64), np.empty((8, 8), np.float32)
    m = kremove.plan_removal((vectors[:n], nb, weights[:n], code), n, vid, ids, dist)
    opened = np.empty(8, np.int64)
    copy = (vectors[:n].copy(), nb.copy(), weights[:n].copy(), code)
    assert kremove.remove_vertex(copy, index._store.labels[:n].copy(), n, vid, opened) == m
    assert list(ids[:m]) == list(opened[:m]) and m == 8
    assert (vid in ids[:m]) == last_adjacent  # the last vertex, at its new id
    rows = copy[0]  # after the removal: row vid holds the last vertex's vector
    for i in range(m):
        for t in range(m):
            want = 0.0 if i == t else kdist.distance(code, rows[ids[i]], rows[ids[t]])
            assert dist[i, t] == want
    args = (np.full(n, -1, np.int64), np.empty(n, np.int64), np.empty((8, 2), np.int64))
    other = next(v for v in range(n - 1) if v != vid and not set(nb[v]) & {vid})
    wrong = np.empty(8, np.int64)
    m2 = kremove.plan_removal((vectors[:n], nb, weights[:n], code), n, other, wrong, dist)
    graph = (vectors[:n].copy(), nb.copy(), weights[:n].copy(), code)
    status, _ = kremove.remove_and_restore(
        graph,
        index._store.labels[:n].copy(),
        n,
        vid,
        *args,
        np.empty(8, np.float32),
        (m2, wrong, dist),
    )
    assert status == kremove.ERR_PLAN
