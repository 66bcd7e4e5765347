"""Similarity scores and top-k lists for building, updating and querying a store.

Scores are similarities, larger is more similar: the cosine of the angle for
``metric="cosine"``, minus the Euclidean distance for ``metric="euclidean"``.
"""

import operator

import numpy as np

_first = operator.itemgetter(0)


def prepare(X, metric):
    """Return the float64 form that :func:`scores` expects (unit rows for cosine)."""
    X = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        return X / np.linalg.norm(X, axis=1, keepdims=True)
    return X


def scores(A, B, metric):
    """Similarity scores between prepared rows of A and B, shape (len(A), len(B))."""
    if metric == "cosine":
        return A @ B.T
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    return -np.sqrt(np.maximum(sq, 0.0))


def distance_to_score(dist, metric):
    """Turn a distance of ``metric`` into the store's similarity score."""
    dist = np.asarray(dist, dtype=np.float64)
    return 1.0 - dist if metric == "cosine" else -dist


def top_k(S, ids, k):
    """Row-wise top-k (descending) of a score matrix; ``ids`` maps columns to ids."""
    k = min(k, S.shape[1])
    if k == 0:
        return np.empty((S.shape[0], 0)), np.empty((S.shape[0], 0), dtype=ids.dtype)
    part = np.argpartition(-S, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(S, part, axis=1)
    order = np.argsort(-s, axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(s, order, axis=1), ids[part]


def merge(scores_a, ids_a, scores_b, ids_b, k):
    """Merge two descending (score, id) lists into the best k, best first."""
    pairs = [*zip(scores_a, ids_a), *zip(scores_b, ids_b)]
    pairs.sort(key=_first, reverse=True)  # stable: ties keep a's order first
    del pairs[k:]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def best_of(chunks, q, *, exclude, k, metric):
    """The k best tracks for one prepared query, over (keys, vectors) chunks.

    Keys in ``exclude`` are skipped; returns (scores, keys), best first.
    """
    best_s, best_k = [], []
    for keys, X in chunks:
        s = scores(q, prepare(X, metric), metric)[0]
        keep = [i for i, key in enumerate(keys) if key not in exclude]
        ts, tk = top_k(s[keep][None, :], np.asarray(keys, dtype=object)[keep], k)
        best_s, best_k = merge(best_s, best_k, ts[0], tk[0], k)
    return best_s, best_k


def compute_neighbors(vectors, n_neighbors, *, metric, algorithm, random_state, n_jobs, verbose):
    """Each row's top-k other rows via NearestTracks: (indices, scores) lists."""
    n = vectors.shape[0]
    k = min(n_neighbors, n - 1)
    if k == 0:
        return [np.empty(0, dtype=np.intp)] * n, [np.empty(0)] * n
    from .._neighbors import NearestTracks

    index = NearestTracks(
        n_neighbors=k,
        metric=metric,
        algorithm=algorithm,
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    index.fit(vectors)
    # X=None: every track against the others, itself excluded (as in sklearn)
    dist, ind = index.kneighbors(n_neighbors=k)
    sims = distance_to_score(dist, metric)
    out_idx, out_scores = [], []
    for i in range(n):
        row, s = np.asarray(ind[i]), sims[i]
        keep = (row != i) & (row >= 0)
        row, s = row[keep][:k], s[keep][:k]
        order = np.argsort(-s, kind="stable")
        out_idx.append(row[order])
        out_scores.append(s[order])
    return out_idx, out_scores


def neighbors_of_new(chunks, X_new, new_keys, *, metric, k):
    """Exact neighbour lists of new tracks, and the stored lists they enter.

    Parameters
    ----------
    chunks : iterable of (keys, X, worst)
        The stored tracks in chunks: TEXT keys, float32 vectors and each
        track's ``worst`` score.
    X_new : ndarray of shape (m, dim)
        The new tracks' vectors.
    new_keys : list of str
        Their TEXT keys.
    metric : str
        The store's metric.
    k : int
        The store's ``n_neighbors``.

    Returns
    -------
    new_scores, new_nbrs : list of list
        Each new track's best k (scores, keys) among stored and new tracks.
    candidates : dict
        Stored key -> (scores, keys) of the new tracks that score above its
        ``worst``, best first, at most k.
    """
    m = len(new_keys)
    Q = prepare(X_new, metric)
    new_ids = np.asarray(new_keys, dtype=object)
    new_s = [[] for _ in range(m)]
    new_k = [[] for _ in range(m)]
    candidates = {}
    for keys, X, worst in chunks:
        S = scores(Q, prepare(X, metric), metric)  # (m, chunk)
        ts, tk = top_k(S, np.asarray(keys, dtype=object), k)
        ts, tk = ts.tolist(), tk.tolist()
        for i in range(m):
            new_s[i], new_k[i] = merge(new_s[i], new_k[i], ts[i], tk[i], k)
        hit = np.flatnonzero((S > worst[None, :]).any(axis=0))  # lists a new track enters
        if hit.size:
            cs, ck = top_k(S[:, hit].T, new_ids, k)
            cs, ck = cs.tolist(), ck.tolist()
            for j, h in enumerate(hit):
                candidates[keys[h]] = (cs[j], ck[j])
    if m > 1:
        S = scores(Q, Q, metric)
        np.fill_diagonal(S, -np.inf)
        ts, tk = top_k(S, new_ids, min(k, m - 1))
        ts, tk = ts.tolist(), tk.tolist()
        for i in range(m):
            new_s[i], new_k[i] = merge(new_s[i], new_k[i], ts[i], tk[i], k)
    return new_s, new_k, candidates


def fitted_vectors(index):
    """The training vectors of a fitted NearestTracks-like index."""
    vectors = getattr(index, "vectors_", None)
    if vectors is not None:
        return np.asarray(vectors)
    raise ValueError(
        f"{type(index).__name__} does not expose its training vectors; pass a "
        "Pipeline and X instead"
    )
