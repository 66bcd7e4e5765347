"""Multi-interest recommendations: one query per cluster of the history, merged.

The mean of a history's vectors sits between its tastes and can land next to only
one of them (issue 14: a history of three albums got 8 of 8 tracks from one).
``aggregate="clusters"`` of :meth:`SimilarityStore.recommend` clusters the
history's vectors with k-means (unit vectors for the cosine metric), searches with
each cluster's mean, and merges the ranked lists round-robin, the largest cluster
first, so that every taste gets its turn.
"""

import numpy as np

from . import _bulk
from . import _search as search

MAX_CLUSTERS = 3


def n_clusters(n_distinct):
    """Clusters for a history of ``n_distinct`` distinct vectors: ``min(3, n)``."""
    return min(MAX_CLUSTERS, n_distinct)


def cluster_queries(H, metric):
    """Queries of the clusters of prepared history vectors ``H``, largest cluster first.

    Returns a list of ``(query of shape (1, dim), member rows)``; ties in size go
    to the cluster whose first track comes first in the history. k-means runs with
    a fixed seed, so the same history gives the same queries.
    """
    c = n_clusters(len(np.unique(H, axis=0)))
    if c <= 1:
        labels = np.zeros(len(H), dtype=int)
    else:
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=c, n_init=10, random_state=0).fit_predict(H)
    groups = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
    groups.sort(key=lambda rows: (-len(rows), rows[0]))
    out = []
    for rows in groups:
        q = H[rows].mean(axis=0, keepdims=True)
        if metric == "cosine":
            norm = np.linalg.norm(q)
            if norm == 0:
                continue  # opposite unit vectors: no direction to search in
            q = q / norm
        out.append((q, rows))
    if not out:
        raise ValueError("the history's unit vectors sum to zero; no direction to recommend")
    return out


def round_robin(lists, k):
    """Merge ranked ``(scores, keys)`` lists: the 1st of each, then the 2nd of each...

    A key already taken is skipped; stops at ``k`` pairs or when all lists are spent.
    """
    taken, out = set(), []
    for rank in range(max((len(keys) for _, keys in lists), default=0)):
        for scores, keys in lists:
            if rank < len(keys) and keys[rank] not in taken:
                taken.add(keys[rank])
                out.append((keys[rank], float(scores[rank])))
                if len(out) == k:
                    return out
    return out


def recommend_clusters(store, history, *, k, exhaustive, batch_size):
    """``store.recommend(history, aggregate="clusters")``: see the module docstring.

    Each cluster's list is searched as ``recommend`` searches the mean profile
    (the stored similar tracks of the cluster's tracks, or every stored vector
    with ``exhaustive=True``: one scan per cluster).
    """
    H = search.prepare(store._vectors(history), store.metric)
    exclude = {store._key(t) for t in history}
    lists = []
    for q, rows in cluster_queries(H, store.metric):
        if exhaustive:
            chunks = ((keys, X) for keys, X, _ in _bulk.scan(store, batch_size))
            best = search.best_of(chunks, q, exclude=exclude, k=k, metric=store.metric)
        else:
            best = store._best_of_similar(q, [history[i] for i in rows], exclude, k)
        lists.append(best)
    return [(store._to_id(key), s) for key, s in round_robin(lists, k)]
