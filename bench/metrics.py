"""Recall (ANN-Benchmarks rules), Pareto frontiers and QPS at a recall target."""

import numpy as np


def true_distances(train, queries, ids, metric):
    """Distances of the returned ``ids`` to their queries, in the dataset's metric
    (euclidean: not squared; angular: 1 - cos). Missing ids (-1) get inf."""
    safe = np.maximum(ids, 0)
    cand = train[safe].astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "euclidean":
        dist = np.sqrt(((cand - q[:, None, :]) ** 2).sum(-1))
    else:
        cn = np.linalg.norm(cand, axis=-1)
        qn = np.linalg.norm(q, axis=-1)[:, None]
        dist = 1.0 - (cand * q[:, None, :]).sum(-1) / np.maximum(cn * qn, 1e-30)
    return np.where(ids >= 0, dist, np.inf)


def threshold_recall(dist, gt_dist, k, slack=1e-3):
    """ANN-Benchmarks recall: a result counts if its true distance is within the k-th true
    distance + slack, so ties with the k-th neighbour are not punished."""
    limit = gt_dist[:, k - 1:k] + slack
    return float((dist[:, :k] <= limit).sum() / (len(dist) * k))


def id_recall(ids, gt_ids, k):
    """Id-overlap recall@k."""
    return float(np.mean([len(set(a[:k].tolist()) & set(b[:k].tolist())) / k
                          for a, b in zip(ids, gt_ids)]))


def pareto(points):
    """The (recall, qps) points no other point beats on both, sorted by recall."""
    best = []
    for r, q in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not best or q > best[-1][1]:
            best.append((r, q))
    return best[::-1]


def qps_at(points, target):
    """Best QPS among settings with recall >= target (None when the target is not reached)."""
    ok = [q for r, q in points if r >= target]
    return max(ok) if ok else None
