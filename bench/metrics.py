"""Recall (ANN-Benchmarks rules), Pareto frontiers and QPS at a recall target."""

import itertools

import numpy as np

# Recall is drawn and interpolated in logit space, where 1.0 (and 0.0) sit at infinity. With
# 1000 queries and k=10 the largest recall below 1 is 0.9999, so capping there keeps every
# measurable difference and puts a perfect run just past it.
RECALL_CAP = 0.9999


def true_distances(train, queries, ids, metric):
    """Distances of the returned ids to their queries, recomputed from the vectors.

    Parameters
    ----------
    train : ndarray (n, dim)
    queries : ndarray (nq, dim)
    ids : int ndarray (nq, k)
        Rows of ``train``; -1 marks a missing result.
    metric : {"euclidean", "angular"}
        The dataset's metric: euclidean is the (not squared) L2 distance, angular is 1 - cos.

    Returns
    -------
    float64 ndarray (nq, k)
        inf where the id is missing.
    """
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
    """ANN-Benchmarks recall@k: a result counts if its true distance is at most the k-th true
    distance + ``slack``, so a tie with the k-th neighbour is not punished.

    Parameters
    ----------
    dist : ndarray (nq, >=k)
        True distances of the returned results (:func:`true_distances`).
    gt_dist : ndarray (nq, >=k)
        Exact neighbour distances, ascending, same metric.
    k : int
    slack : float

    Returns
    -------
    float
    """
    limit = gt_dist[:, k - 1 : k] + slack
    return float((dist[:, :k] <= limit).sum() / (len(dist) * k))


def id_recall(ids, gt_ids, k):
    """Id-overlap recall@k: the share of the exact k neighbours' ids that were returned.

    Parameters
    ----------
    ids, gt_ids : int ndarray (nq, >=k)

    Returns
    -------
    float
    """
    return float(
        np.mean([len(set(a[:k].tolist()) & set(b[:k].tolist())) / k for a, b in zip(ids, gt_ids)])
    )


def pareto(points):
    """The (recall, qps) points that no other point beats on both, ascending recall.

    Parameters
    ----------
    points : iterable of (recall, qps)

    Returns
    -------
    list of (recall, qps)
        Recall ascending, QPS strictly descending.
    """
    best = []
    for r, q in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not best or q > best[-1][1]:
            best.append((r, q))
    return best[::-1]


def logit(recall):
    """logit of the recall, capped to [1 - RECALL_CAP, RECALL_CAP] (see :data:`RECALL_CAP`)."""
    r = float(np.clip(recall, 1.0 - RECALL_CAP, RECALL_CAP))
    return float(np.log(r / (1.0 - r)))


def clamped(points, target):
    """Does even the fastest frontier point already pass ``target`` (strictly)? Then
    ``qps_at`` gives that point's QPS, a lower bound of the QPS at the target (the sweep did
    not go lower)."""
    front = pareto(points)
    return bool(front) and front[0][0] > target


def qps_at(points, target):
    """QPS at a recall target, read off the Pareto frontier of ``points``.

    Between the two frontier points around the target, log QPS is interpolated linearly in
    logit(recall): on the plot's axes (logit recall, log QPS) that is the straight segment the
    plot draws. A target below the frontier's lowest recall gets the fastest point's QPS (it
    already reaches the target); a target above its highest recall is not reached.

    Parameters
    ----------
    points : iterable of (recall, qps)
    target : float

    Returns
    -------
    float or None
        None when no point reaches the target.
    """
    front = pareto(points)
    if not front or front[-1][0] < target:
        return None
    if front[0][0] >= target:
        return float(front[0][1])
    for (r0, q0), (r1, q1) in itertools.pairwise(front):
        if r0 < target <= r1:
            x0, x1, x = logit(r0), logit(r1), logit(target)
            t = 1.0 if x1 == x0 else (x - x0) / (x1 - x0)
            return float(np.exp(np.log(q0) + t * (np.log(q1) - np.log(q0))))
    raise AssertionError("unreachable: the frontier brackets the target")
