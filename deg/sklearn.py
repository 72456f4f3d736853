"""A scikit-learn ``KNeighborsTransformer`` backed by a deg index.

UMAP, t-SNE, Isomap, spectral embedding and DBSCAN take a precomputed sparse neighbour graph
(``metric="precomputed"``); this builds it with a DEG instead of an exact search::

    from sklearn.manifold import Isomap
    from sklearn.pipeline import make_pipeline
    from deg.sklearn import KNeighborsTransformer

    pipe = make_pipeline(KNeighborsTransformer(n_neighbors=10),
                         Isomap(n_neighbors=10, metric="precomputed"))

The output follows scikit-learn's conventions: a CSR matrix of shape (n_queries, n_fit), each
row holding the neighbours in ascending distance, ``n_neighbors + 1`` of them with
``mode="distance"`` (a sample of the fitted data is its own first neighbour, at distance 0)
and ``n_neighbors`` with ``mode="connectivity"`` (ones). Distances are scikit-learn's:
Euclidean (not squared) for ``"euclidean"``, ``1 - cos`` for ``"cosine"``. Needs
scikit-learn (and scipy, which it brings).
"""

from __future__ import annotations

import numbers

import numpy as np
from joblib import effective_n_jobs
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from deg.index import Index

_METRICS = {"euclidean": "l2", "l2": "l2", "sqeuclidean": "l2", "cosine": "cosine"}


class KNeighborsTransformer(TransformerMixin, BaseEstimator):
    """Approximate k-nearest-neighbour graph of the data, as
    ``sklearn.neighbors.KNeighborsTransformer`` computes it exactly.

    Parameters
    ----------
    mode : {"distance", "connectivity"}
    n_neighbors : int
    metric : {"euclidean", "sqeuclidean", "cosine"}
    eps : float
        The search's slack (``Index.search``): higher is slower and closer to exact.
    edges_per_vertex : int
        The graph's degree (``Index``).
    n_jobs : int or None
        Threads for building and searching (None: all cores).
    random_state : int, RandomState or None
        Draws the index's seed (an int: always the same graph).
    """

    def __init__(
        self,
        *,
        mode="distance",
        n_neighbors=5,
        metric="euclidean",
        eps=0.1,
        edges_per_vertex=30,
        n_jobs=None,
        random_state=0,
    ):
        self.mode = mode
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.eps = eps
        self.edges_per_vertex = edges_per_vertex
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y=None) -> KNeighborsTransformer:
        """Build the index over ``X`` (n_samples, n_features)."""
        if not isinstance(self.n_neighbors, numbers.Integral) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be an integer >= 1, got {self.n_neighbors!r}")
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {self.metric!r}")
        if self.mode not in ("distance", "connectivity"):
            raise ValueError(f"mode must be 'distance' or 'connectivity', got {self.mode!r}")
        X = validate_data(self, X, dtype=np.float32, order="C")
        self.index_ = Index.build(
            X,
            metric=_METRICS[self.metric],
            edges_per_vertex=self.edges_per_vertex,
            seed=int(check_random_state(self.random_state).randint(2**31)),
            threads=self._threads(),
            progress=False,
        )
        self.n_samples_fit_ = X.shape[0]
        return self

    def transform(self, X):
        """The sparse neighbour graph of ``X`` against the fitted data."""
        check_is_fitted(self, "index_")
        X = validate_data(self, X, dtype=np.float32, order="C", reset=False)
        k = self.n_neighbors + (self.mode == "distance")
        if k > self.n_samples_fit_:
            raise ValueError(
                f"n_neighbors{' + 1' if self.mode == 'distance' else ''} = {k} is "
                f"more than the {self.n_samples_fit_} fitted samples"
            )
        labels, dists = self.index_.search(X, k=k, eps=self.eps, threads=self._threads())
        if self.metric in ("euclidean", "l2"):  # scikit-learn's l2 is the Euclidean distance
            dists = np.sqrt(np.maximum(dists, 0))
        data = np.ones(labels.size) if self.mode == "connectivity" else dists.astype(np.float64)
        indptr = np.arange(0, labels.size + 1, k)
        return csr_matrix(
            (data.ravel(), labels.ravel(), indptr), shape=(X.shape[0], self.n_samples_fit_)
        )

    def _threads(self):
        """``n_jobs`` as scikit-learn reads it (None: all cores here, -1: all cores)."""
        return None if self.n_jobs is None else effective_n_jobs(self.n_jobs)

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
