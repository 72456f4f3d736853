"""deg.sklearn.KNeighborsTransformer: scikit-learn's conventions, inside its pipelines."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.manifold import TSNE, Isomap  # noqa: E402
from sklearn.neighbors import KNeighborsTransformer as Exact  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from deg.sklearn import KNeighborsTransformer  # noqa: E402


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(600, 12)), rng.normal(size=(40, 12))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("mode", ["distance", "connectivity"])
def test_same_graph_as_sklearn_on_exact_settings(data, metric, mode):
    """eps large enough for an exhaustive search: the same neighbours and distances."""
    x, q = data
    mine = KNeighborsTransformer(
        n_neighbors=7, mode=mode, metric=metric, eps=10.0, edges_per_vertex=8
    ).fit(x)
    exact = Exact(n_neighbors=7, mode=mode, metric=metric).fit(x)
    for a, b in (
        (mine.transform(q), exact.transform(q)),
        (mine.fit_transform(x), exact.fit_transform(x)),
    ):
        assert a.shape == b.shape and a.format == "csr"
        assert np.array_equal(a.indptr, b.indptr)
        for r in range(a.shape[0]):
            row_a, row_b = a.getrow(r), b.getrow(r)
            assert set(row_a.indices) == set(row_b.indices), r
            order_a, order_b = np.argsort(row_a.indices), np.argsort(row_b.indices)
            np.testing.assert_allclose(
                row_a.data[order_a], row_b.data[order_b], rtol=1e-4, atol=1e-5
            )


def test_inside_isomap_and_tsne_pipelines(data):
    x, _ = data
    iso = make_pipeline(
        KNeighborsTransformer(n_neighbors=10),
        Isomap(n_neighbors=10, metric="precomputed", n_components=2),
    )
    assert iso.fit_transform(x).shape == (600, 2)
    tsne = make_pipeline(
        KNeighborsTransformer(n_neighbors=16),
        TSNE(metric="precomputed", init="random", perplexity=5, max_iter=250, random_state=0),
    )
    out = tsne.fit_transform(x)
    assert out.shape == (600, 2) and np.isfinite(out).all()


def test_bad_settings_are_refused(data):
    x, q = data
    with pytest.raises(ValueError, match="metric must be one of"):
        KNeighborsTransformer(metric="manhattan").fit(x)
    with pytest.raises(ValueError, match="mode must be"):
        KNeighborsTransformer(mode="weights").fit(x)
    with pytest.raises(ValueError, match="more than the 5 fitted samples"):
        KNeighborsTransformer(n_neighbors=5).fit(x[:5]).transform(q)
    with pytest.raises(ValueError, match="features"):
        KNeighborsTransformer().fit(x).transform(q[:, :3])


def test_sklearn_settings_as_scikit_learn_reads_them(data):
    """l2 is Euclidean as in scikit-learn; n_jobs=-1 and random_state=None are taken; rows
    come in ascending distance."""
    x, q = data
    mine = (
        KNeighborsTransformer(n_neighbors=5, metric="l2", eps=10.0, n_jobs=-1, random_state=None)
        .fit(x)
        .transform(q)
    )
    exact = Exact(n_neighbors=5, metric="l2").fit(x).transform(q)
    np.testing.assert_allclose(np.sort(mine.data), np.sort(exact.data), rtol=1e-4)
    for r in range(mine.shape[0]):
        row = mine.getrow(r).data
        assert (np.diff(row) >= 0).all()
    with pytest.raises(ValueError, match="n_neighbors must be an integer >= 1"):
        KNeighborsTransformer(n_neighbors=0).fit(x)
