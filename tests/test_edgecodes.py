"""Edge codes (``Index(quantize="rabitq")``, issue #24): the walk on estimates finds what the
walk on vectors finds, answers carry exact distances, the codes follow every edit and are
encoded again after a load, a write under way expands the rows it edited exactly, and bad
settings or files are refused."""

import pickle
import threading

import numpy as np
import pytest

import deg
from deg import _edgecodes as edgecodes
from deg._kernels import edges as kedges
from deg._kernels import view as kview
from tests.conftest import assert_graph_ok, brute_force, recall
from tests.test_quantize import _with_params, clustered


def fresh(index):
    """The codes are up to date and each row's are the ones its edges give."""
    store, edges = index.internals().store, index._quant.edges
    n = len(index)
    args = (store.gen, store.esig, edges.mean, edges.signs, store.edge_codes, store.edge_factors)
    return (
        not edges.stale
        and kview.pending(store.neighbors, n, store.esig, store.gen) == 0
        and kedges.miscoded(store.graph(), n, *args) == -1
    )


def exact_distances(stored, queries, labels, metric):
    x = stored[labels].astype(np.float64)
    q = queries.astype(np.float64)[:, None, :]
    if metric == "l2":
        return ((x - q) ** 2).sum(axis=-1)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)  # cosine: half the squared L2 of units
    return 0.5 * ((x - q) ** 2).sum(axis=-1)


@pytest.mark.parametrize(
    "metric, dtype, dim", [("l2", "float32", 128), ("cosine", "float16", 300), ("l2", "uint8", 64)]
)
def test_recall_as_the_exact_walk_and_exact_distances(metric, dtype, dim):
    x = clustered(dim=dim)
    if dtype == "uint8":
        x = np.clip(np.round((x + 4) * 30), 0, 255)
    base, queries = x[:2800], x[2800:]
    exact = deg.Index.build(base, metric=metric, dtype=dtype, progress=False)
    coded = deg.Index.build(base, metric=metric, dtype=dtype, quantize="rabitq", progress=False)
    assert coded.quantize == "rabitq" and coded.internals().store.codes.shape[1] == 0
    assert_graph_ok(coded)
    assert fresh(coded)  # a build encodes every row at once
    stored = coded.get_vectors(coded.labels).astype(np.float32)
    truth = brute_force(stored, queries, 10, "l2" if metric == "l2" else "cosine")[0]
    for eps in (0.0, 0.1):
        labels, dists, stats = coded.search(queries, k=10, eps=eps, return_stats=True)
        want = recall(exact.search(queries, k=10, eps=eps)[0], truth)
        # estimates err by ~1/sqrt(dim): a few points under the exact walk at these sizes
        assert recall(labels, truth) >= want - (0.1 if eps == 0 else 0.05)
        # each answer at its exact distance (of the stored vector), ascending
        np.testing.assert_allclose(
            dists, exact_distances(stored, queries, labels, metric), rtol=1e-4, atol=1e-5
        )
        assert (np.diff(dists, axis=1) >= 0).all()
        # it walked on estimates: the plain search's count differs (hyperplanes alike)
        plain = exact.search(queries, k=10, eps=eps, return_stats=True)[2]
        assert (stats["distance_computations"] != plain["distance_computations"]).any()
    threads = coded.search(queries, k=10, eps=0.1, threads=2)
    np.testing.assert_array_equal(threads[0], coded.search(queries, k=10, eps=0.1, threads=1)[0])


def test_a_pruned_walk_follows_the_first_edges():
    x = clustered(n=3000)
    index = deg.Index.build(x[:2900], quantize="rabitq", progress=False)
    truth = brute_force(x[:2900], x[2900:], 10)[0]
    full = index.search(x[2900:], k=10, eps=0.1, return_stats=True)
    pruned = index.search(x[2900:], k=10, eps=0.1, max_degree=12, return_stats=True)
    assert fresh(index)  # the view put back in order, then the rows it moved encoded
    assert pruned[2]["distance_computations"].mean() < full[2]["distance_computations"].mean()
    assert recall(pruned[0], truth) >= recall(full[0], truth) - 0.1


def test_codes_follow_adds_removals_and_optimisation():
    x = clustered(n=3000)
    index = deg.Index.build(x[:1500], quantize="rabitq", progress=False)
    steps = [
        lambda: index.add(x[1500:1520]),  # small: encoded at the next search
        lambda: index.remove(np.arange(0, 300, 7)),
        lambda: index.optimize(tries=500),
        lambda: index.add(x[1520:2600]),  # large: encoded at once
    ]
    for step in steps:
        step()
        assert_graph_ok(index)
        index.search(x[2900:], k=10)
        assert fresh(index)
    truth = brute_force(index.get_vectors(index.labels), x[2900:], 10)[0]
    labels = index.search(x[2900:], k=10, eps=0.1)[0]
    assert recall(np.searchsorted(index.labels, labels), truth) >= 0.9


def test_small_indices_search_exactly_until_fitted():
    x = clustered(n=1500)
    index = deg.Index(64, quantize="rabitq")
    index.add(x[:900])
    assert not index._quant.fitted
    plain = deg.Index.build(x[:900], progress=False)
    np.testing.assert_array_equal(index.search(x[:20])[0], plain.search(x[:20])[0])
    index.add(x[900:])
    assert index._quant.fitted and fresh(index)


def test_a_write_under_way_expands_edited_rows_exactly():
    """Between a write's steps the codes cannot be encoded again: each expanded row is then
    checked, and one edited since its encoding (here: every other row, its signature
    spoiled and its codes made useless, each estimate far beyond any radius) is expanded by
    exact distances; the others keep their codes."""
    x = clustered(n=2000)
    index = deg.Index.build(x, quantize="rabitq", progress=False)
    coded = index.search(x[:50], k=10, eps=0.1)
    store, edges = index.internals().store, index._quant.edges
    edges.stale = True
    with index._writer:  # as an add, remove or optimize holds it between its steps
        checked = index.search(x[:50], k=10, eps=0.1)  # no row edited: the same walk
        store.esig[: len(index) : 2] ^= np.uint32(2)  # still odd: never EMPTY_SIG
        store.eslot[: len(index) : 2] = 0  # as for a row whose every edge changed
        store.edge_factors[: len(index) : 2] = 1e30
        labels, dists = index.search(x[:50], k=10, eps=0.1)
    for a, b in zip(checked, coded):
        np.testing.assert_array_equal(a, b)
    assert recall(labels, brute_force(x, x[:50], 10)[0]) >= 0.95
    np.testing.assert_allclose(dists, exact_distances(x, x[:50], labels, "l2"), rtol=1e-4)
    assert edges.stale  # not encoded under someone else's write
    index.search(x[:1], k=1)
    assert fresh(index)


def test_a_write_marks_the_codes_before_its_first_step():
    """Searches made between the steps of an add, a removal and an optimisation never find
    the codes called fresh while a row differs from its encoding."""
    x = clustered(n=6000)
    index = deg.Index.build(x[:1500], quantize="rabitq", progress=False)
    store, edges = index.internals().store, index._quant.edges
    writes = [
        lambda: index.add(x[1500:], labels=np.arange(1500, 6000), threads=1),
        lambda: index.remove(np.arange(1500, 3000)),
        lambda: index.optimize(tries=20_000),
    ]
    for write in writes:
        index.search(x[:1], k=1)
        assert fresh(index)
        done = threading.Event()
        worker = threading.Thread(target=lambda w=write, e=done: (w(), e.set()))
        worker.start()
        seen = 0
        while not done.is_set():
            with index._lock.reading():
                if not edges.stale:  # the codes claim every row: then none may be pending
                    assert kview.pending(store.neighbors, len(index), store.esig, store.gen) == 0
            seen += 1
        worker.join()
        assert seen > 1
        assert_graph_ok(index)


def in_order(index):
    """Every row is in search-view order and signed so (nothing left for a search to do)."""
    store = index.internals().store
    n = len(index)
    return (
        not index._view.stale
        and kview.pending(store.neighbors, n, store.sig, store.gen) == 0
        and kview.misordered(store.graph(), n, store.sig, store.gen) == -1
    )


def test_a_write_leaves_its_codes_encoded():
    """An add, a removal and an optimisation put the rows they edited back in search order
    and encode them before they return (``SearchView.catch_up``): the next search finds the
    view and every code fresh, and has nothing to redo under the write lock."""
    x = clustered(n=3000)
    index = deg.Index.build(x[:2500], quantize="rabitq", progress=False)
    index.search(x[:1], k=1)
    writes = [
        lambda: index.add(x[2500:2600], labels=np.arange(2500, 2600)),
        lambda: index.remove(np.arange(2500, 2550)),
        lambda: index.optimize(tries=500),
    ]
    for write in writes:
        write()
        assert in_order(index) and fresh(index)
        assert_graph_ok(index)


def test_a_row_keeps_the_codes_of_the_edges_it_kept():
    """Re-encoding a row computes only the slots whose neighbour it did not have: a row put
    in another order (as the search view reorders rows) encodes none and gets the codes a
    fresh encoding gives; one new neighbour costs one slot."""
    x = clustered(n=1500)
    index = deg.Index.build(x, quantize="rabitq", progress=False)
    index.search(x[:1], k=1)
    store, edges = index.internals().store, index._quant.edges
    graph = store.graph()
    spun = kedges.spin_rows(edges.signs.shape[1])

    def update(u):
        old = (store.edge_codes[u].copy(), store.edge_factors[u].copy(), store.eslot[u].copy())
        new = (store.edge_codes[u], store.edge_factors[u], store.eslot[u])
        count = kedges.update_row(graph, u, store.gen, edges.mean, edges.signs, old, new, *spun)
        store.esig[u] = kview.row_signature(store.neighbors, store.gen, u)
        return count

    u = 7
    perm = np.random.default_rng(0).permutation(store.d)
    store.neighbors[u] = store.neighbors[u][perm]
    store.weights[u] = store.weights[u][perm]
    assert update(u) == 0
    moved = int(store.neighbors[u, 3])
    store.gen[moved] += 1  # that neighbour's vector changed
    assert update(u) == 1
    assert update(moved) == store.d  # its own row: every slot
    for v in np.flatnonzero((store.neighbors[: len(index)] == moved).any(axis=1)):
        update(int(v))  # the other rows listing it
    assert fresh(index)


def test_save_load_and_pickle_give_the_same_answers(tmp_path):
    x = clustered(n=2500)
    index = deg.Index.build(x[:2400], quantize="rabitq", progress=False)
    want = index.search(x[2400:], k=10, eps=0.05)
    path = tmp_path / "a.deg"
    index.save(path)
    for other in (
        deg.Index.load(path),
        deg.Index.load(path, mmap=True),
        pickle.loads(pickle.dumps(index)),
    ):
        assert other.quantize == "rabitq" and other._quant.edges.stale  # encoded when searched
        got = other.search(x[2400:], k=10, eps=0.05)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert fresh(other)


def test_budgets_bound_the_walk():
    x = clustered(n=3000)
    index = deg.Index.build(x, quantize="rabitq", progress=False)
    for budget in (1, 5, 40, 300):
        _, _, stats = index.search(
            x[:50], k=10, max_distance_computations=budget, return_stats=True
        )
        assert stats["distance_computations"].max() <= budget + index.edges_per_vertex


def test_bad_settings_and_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"quantize='rabitq' walks on codes .* not of inner"):
        deg.Index(8, metric="ip", quantize="rabitq")
    index = deg.Index.build(clustered(n=1100, dim=8), quantize="rabitq", progress=False)
    path = tmp_path / "a.deg"
    index.save(path)
    _with_params(path, b'], "seed": 0}', b'], "seed":-1}')
    with pytest.raises(ValueError, match=r"invalid parameters: quantizer seed -"):
        deg.Index.load(path)
    check = edgecodes.EdgeCodes.check_state
    assert "not 8 finite" in check({"mean": [0.0] * 7, "seed": 1}, 8)
    assert "beyond float64" in check({"mean": [10**400] * 8, "seed": 1}, 8)
    assert "state is not" in check({"mean": [0.0] * 8}, 8)
    assert "state is not" in check({"mean": [True] * 8, "seed": 1}, 8)
    assert "seed" in check({"mean": [0.0] * 8, "seed": 1.5}, 8)
    assert check({"mean": [0.0] * 8, "seed": 1}, 8) is None


def test_the_rotation_is_orthonormal():
    for dim in (8, 64, 100, 784):
        edges = edgecodes.EdgeCodes(dim)
        edges.fit(np.zeros((2, dim), np.float32), seed=3)
        dp = edgecodes.padded_dim(dim)
        h = 1 << (dp.bit_length() - 1)
        eye = np.eye(dim, dtype=np.float32)
        out = np.empty((dim, dp), np.float32)
        for i in range(dim):
            kedges.spin(eye[i], edges.mean, edges.signs, out[i], np.empty(h, np.float32))
        np.testing.assert_allclose(out @ out.T, np.eye(dim), atol=1e-5)


@pytest.mark.parametrize("words", [1, 13])
def test_the_score_of_the_first_slots_is_the_sum_over_their_signs(words):
    rng = np.random.default_rng(words)
    lanes = 32
    code = rng.integers(0, 2**63, size=words * lanes, dtype=np.int64).view(np.uint64)
    planes = rng.integers(0, 2**63, size=(kedges.PLANES, words), dtype=np.int64).view(np.uint64)
    bits = np.unpackbits(code.view(np.uint8), bitorder="little").reshape(words, lanes, 64)
    plane_bits = np.unpackbits(planes.view(np.uint8), bitorder="little").reshape(
        kedges.PLANES, words, 64
    )
    values = sum(plane_bits[p].astype(np.int64) << p for p in range(kedges.PLANES))  # words x 64
    expected = np.einsum("wjb,wb->j", bits.astype(np.int64), values)
    for m in (8, 16, 24, 32):
        acc = np.full(lanes, -1, np.int64)
        kedges.score(code, planes, acc, m)
        np.testing.assert_array_equal(acc[:m], expected[:m])
        assert (acc[m:] == -1).all()  # the slots past m are not written


@pytest.mark.parametrize("n", [4, 16, 512])
def test_a_double_level_of_the_transform_is_two_single_ones_bit_for_bit(n):
    src = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    once, twice, both = (np.empty(n, np.float32) for _ in range(3))
    kedges.hadamard_level(src, once, n // 2)
    kedges.hadamard_level(once, twice, n // 2)
    kedges.hadamard_level4(src, both, n // 4)
    assert both.tobytes() == twice.tobytes()
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    a = src.copy()
    kedges.hadamard(a, np.empty(n, np.float32))
    np.testing.assert_allclose(a, h @ src.astype(np.float64), rtol=1e-4, atol=1e-4)


def test_an_edge_coded_index_is_rotated_only_when_asked():
    """``rotate=None`` leaves an edge-coded index in the input basis (its walk computes whole
    distances, so a rotation would only cost each query); ``rotate=True`` still rotates."""
    x = np.random.default_rng(4).standard_normal((1100, 256)).astype(np.float32)
    auto = deg.Index(256, quantize="rabitq")
    auto.add(x)
    asked = deg.Index(256, quantize="rabitq", rotate=True)
    asked.add(x)
    plain = deg.Index(256)
    plain.add(x)
    assert not auto.rotated and asked.rotated and plain.rotated
    np.testing.assert_array_equal(auto.get_vectors(np.arange(5)), x[:5])
