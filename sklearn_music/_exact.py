"""Exact nearest neighbours by blocked matrix products and a running top-k.

:func:`exact_kneighbors` is the exact search of
:class:`~sklearn_music.NearestTracks` (``algorithm="brute"``) for the cosine and
Euclidean metrics. It never holds a full ``n_queries x n_fitted`` distance
matrix, nor a full row of it: for each block of queries it walks over blocks of
the fitted vectors, computes the block of similarity scores with one matrix
product (in the dtype of the fitted vectors: float32 stays float32), and keeps
the best ``k`` per query seen so far. A score enters the running top-k only if
it beats the query's current ``k``-th best, so after the first blocks almost
nothing but the comparison itself is left to do; memory is bounded by the block
sizes. ``n_jobs`` threads each search a contiguous shard of the fitted vectors
(or of the queries) with one BLAS thread each, and their lists are merged.

The scores ranked are ``q . x`` for cosine (rows of unit norm) and
``q . x - |x|^2 / 2`` for Euclidean (the same order as ``-|q - x|``); the
distances returned are recomputed in float64 from the vectors for a few more
candidates than asked (``_MARGIN``), which are then ranked by distance, so
that a near tie broken wrongly by float32 rounding is put right.

Ties have a stable order: at equal distance, the smaller row number comes
first (in the ranking and at the cut-off of the ``k`` returned).
"""

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.metrics import pairwise_distances_chunked
from threadpoolctl import ThreadpoolController

__all__ = ["GEMM_METRICS", "chunked_kneighbors", "exact_kneighbors", "rank_candidates"]

GEMM_METRICS = frozenset({"cosine", "euclidean"})
_MARGIN = 8  # candidates re-ranked in float64 beyond the k asked for
_BLOCK_QUERIES = 512
_BLOCK_FITTED = 1024
# below this many scores a search is too small to be worth setting BLAS threads
# (finding the BLAS libraries takes milliseconds; BLAS's own threads are left as they are)
_SMALL_WORK = 2**22
_CONTROLLER = []  # the ThreadpoolController, made on first use (it scans loaded libraries)


def _blas_threads(n):
    """A context that sets the BLAS libraries' threads to ``n``."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n, user_api="blas")


def _n_threads(n_jobs):
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, int(n_jobs))


def _select(P, PI, k):
    """The best ``k`` columns of each row of scores ``P`` (ids ``PI``), best first.

    Within a row, columns holding equal scores must come in increasing id order;
    among equal scores the smaller ids win the cut-off and come first.
    """
    m, width = P.shape
    if width > k:
        kth = -np.partition(-P, k - 1, axis=1)[:, k - 1]
        above = P > kth[:, None]
        equal = P == kth[:, None]
        need = k - above.sum(axis=1)
        keep = above | (equal & (np.cumsum(equal, axis=1) <= need[:, None]))
        P = P[keep].reshape(m, k)
        PI = PI[keep].reshape(m, k)
    order = np.argsort(-P, axis=1, kind="stable")
    return np.take_along_axis(P, order, axis=1), np.take_along_axis(PI, order, axis=1)


def _merge_block(best_s, best_i, S, offset):
    """Merge a block of scores ``S`` (columns ``offset + j``) into the running top-k."""
    m, k = best_s.shape
    hit = S > best_s[:, -1:]
    flat = np.flatnonzero(hit)
    if flat.size == 0:
        return best_s, best_i
    rows, cols = np.divmod(flat, S.shape[1])
    counts = np.bincount(rows, minlength=m)
    touched = np.flatnonzero(counts)
    width = int(counts.max())
    local = np.cumsum(counts > 0) - 1  # row -> position among the touched rows
    pos = np.arange(flat.size) - (np.cumsum(counts) - counts)[rows]
    P = np.full((touched.size, k + width), -np.inf, dtype=S.dtype)
    PI = np.full((touched.size, k + width), -1, dtype=np.intp)
    P[:, :k] = best_s[touched]
    PI[:, :k] = best_i[touched]
    P[local[rows], k + pos] = S.ravel()[flat]
    PI[local[rows], k + pos] = cols + offset
    best_s[touched], best_i[touched] = _select(P, PI, k)
    return best_s, best_i


def _search(Q, X, half_sq, k, *, q_range, x_range, self_offset, blocks):
    """Top-k scores and ids of queries ``Q[q_range]`` among ``X[x_range]``.

    ``self_offset`` is None, or the row of ``X`` that query 0 is (its own
    score is then minus infinity).
    """
    bq, bx = blocks
    q_lo, q_hi = q_range
    x_lo, x_hi = x_range
    dtype = X.dtype
    out_s = np.empty((q_hi - q_lo, k), dtype=dtype)
    out_i = np.empty((q_hi - q_lo, k), dtype=np.intp)
    buffer = np.empty(bq * bx, dtype=dtype)
    for qs in range(q_lo, q_hi, bq):
        qe = min(qs + bq, q_hi)
        Qb = Q[qs:qe]
        best_s = np.full((qe - qs, k), -np.inf, dtype=dtype)
        best_i = np.full((qe - qs, k), -1, dtype=np.intp)
        for xs in range(x_lo, x_hi, bx):
            xe = min(xs + bx, x_hi)
            S = buffer[: (qe - qs) * (xe - xs)].reshape(qe - qs, xe - xs)
            np.matmul(Qb, X[xs:xe].T, out=S)
            if half_sq is not None:
                S -= half_sq[xs:xe]
            if self_offset is not None:
                lo, hi = max(qs + self_offset, xs), min(qe + self_offset, xe)
                if lo < hi:
                    r = np.arange(lo, hi)
                    S[r - qs - self_offset, r - xs] = -np.inf
            best_s, best_i = _merge_block(best_s, best_i, S, xs)
        out_s[qs - q_lo : qe - q_lo] = best_s
        out_i[qs - q_lo : qe - q_lo] = best_i
    return out_s, out_i


def _tasks(n_queries, n_fitted, n_threads, blocks):
    """Split the work into ``(q_range, x_range)`` pieces, one per thread."""
    bq, bx = blocks
    if n_threads > 1 and n_fitted >= n_threads * bx:
        edges = np.linspace(0, n_fitted, n_threads + 1).astype(int)
        return [((0, n_queries), (lo, hi)) for lo, hi in zip(edges[:-1], edges[1:])]
    if n_threads > 1 and n_queries >= 2 * min(bq, n_queries):
        edges = np.linspace(0, n_queries, min(n_threads, n_queries) + 1).astype(int)
        return [((lo, hi), (0, n_fitted)) for lo, hi in zip(edges[:-1], edges[1:])]
    return [((0, n_queries), (0, n_fitted))]


def _exact_distances(Q, X, ind, metric, block=256):
    """float64 distances between each query and its candidate rows ``ind`` (>= 0)."""
    out = np.empty(ind.shape, dtype=np.float64)
    for start in range(0, Q.shape[0], block):
        q = np.asarray(Q[start : start + block], dtype=np.float64)[:, None, :]
        x = np.asarray(X[ind[start : start + block]], dtype=np.float64)
        if metric == "cosine":
            out[start : start + block] = np.clip(1.0 - np.einsum("qkd,qkd->qk", q, x), 0.0, 2.0)
        else:
            diff = x - q
            out[start : start + block] = np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
    return out


def exact_kneighbors(
    Q,
    X,
    n_neighbors,
    *,
    metric="cosine",
    exclude_self=False,
    n_jobs=None,
    block_queries=_BLOCK_QUERIES,
    block_fitted=_BLOCK_FITTED,
):
    """The exact ``n_neighbors`` nearest rows of ``X`` to each row of ``Q``.

    Parameters
    ----------
    Q : ndarray of shape (n_queries, n_features)
        The queries; for ``metric="cosine"`` of unit L2 norm.

    X : ndarray of shape (n_fitted, n_features)
        The searched vectors, float32 or float64 (the matrix products run in
        this dtype); for ``metric="cosine"`` of unit L2 norm.

    n_neighbors : int
        Number of neighbours, at most ``n_fitted`` (``n_fitted - 1`` with
        ``exclude_self``).

    metric : {"cosine", "euclidean"}, default="cosine"
        ``1 - q . x`` for unit vectors, or ``|q - x|``.

    exclude_self : bool, default=False
        ``Q`` is ``X`` itself: leave each row out of its own neighbours.

    n_jobs : int, default=None
        Threads (each with one BLAS thread); ``None`` means 1, negative values
        count back from the number of CPUs (-1: all).

    block_queries : int, default=512
        Queries per block.

    block_fitted : int, default=1024
        Fitted vectors per block: with ``block_queries``, bounds the memory of
        the score blocks (``block_queries * block_fitted`` values per thread).

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        float64 distances, increasing along each row.

    indices : ndarray of shape (n_queries, n_neighbors)
        Row numbers in ``X``; at equal distance the smaller row comes first.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music._exact import exact_kneighbors
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> dist, ind = exact_kneighbors(X[:1], X, 2)
    >>> ind
    array([[0, 2]])
    >>> dist.round(2)
    array([[0. , 0.4]])
    """
    if metric not in GEMM_METRICS:
        raise ValueError(
            f"metric={metric!r} is not supported; expected one of {sorted(GEMM_METRICS)}"
        )
    X = np.ascontiguousarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    Q = np.ascontiguousarray(Q, dtype=X.dtype)
    n_queries, n_fitted = Q.shape[0], X.shape[0]
    available = n_fitted - (1 if exclude_self else 0)
    k = int(n_neighbors)
    if not 1 <= k <= available:
        raise ValueError(f"n_neighbors={k} must be between 1 and {available}")
    if n_queries == 0:
        return np.empty((0, k)), np.empty((0, k), dtype=np.intp)
    k_search = min(k + _MARGIN, available)
    half_sq = None
    if metric == "euclidean":
        half_sq = 0.5 * np.einsum("ij,ij->i", X, X)
    blocks = (max(1, int(block_queries)), max(1, int(block_fitted)))
    small = n_queries * n_fitted < _SMALL_WORK  # one thread, BLAS threads left alone
    n_threads = 1 if small else _n_threads(n_jobs)
    tasks = _tasks(n_queries, n_fitted, n_threads, blocks)

    def run(task):
        (q_lo, q_hi), x_range = task
        return _search(
            Q[q_lo:q_hi],
            X,
            half_sq,
            k_search,
            q_range=(0, q_hi - q_lo),
            x_range=x_range,
            self_offset=q_lo if exclude_self else None,
            blocks=blocks,
        )

    # (a limiter sets the threads when made, and restores them on exit)
    with contextlib.nullcontext() if small else _blas_threads(1 if len(tasks) > 1 else n_threads):
        if len(tasks) == 1:
            parts = [run(tasks[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
                parts = list(pool.map(run, tasks))
    if tasks[0][0] != (0, n_queries):  # query shards: stack
        ind = np.vstack([p[1] for p in parts])
    else:  # shards of X, in row order: merge
        _, ind = _select(
            np.hstack([p[0] for p in parts]), np.hstack([p[1] for p in parts]), k_search
        )
    return rank_candidates(Q, X, ind, metric=metric, k=k)


def rank_candidates(Q, X, ind, *, metric, k):
    """The ``k`` nearest of each query's candidate rows, by exact float64 distance.

    Parameters
    ----------
    Q : ndarray of shape (n_queries, n_features)
        The queries (unit rows for cosine).
    X : ndarray of shape (n_fitted, n_features)
        The fitted vectors (unit rows for cosine).
    ind : ndarray of shape (n_queries, n_candidates)
        Candidate rows of ``X`` per query, ``n_candidates >= k``; a negative
        row (a neighbour an index did not find) goes last, at infinity.
    metric : {"cosine", "euclidean"}
        The metric.
    k : int
        Number of neighbours kept.

    Returns
    -------
    distances, indices : ndarray of shape (n_queries, k)
        float64 distances, increasing along each row, at equal distance the
        smaller row first; and the rows.
    """
    missing = ind < 0
    dist = _exact_distances(Q, X, np.where(missing, 0, ind), metric)
    dist[missing] = np.inf
    order = np.lexsort((ind, dist), axis=-1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ind, order, axis=1)


def chunked_kneighbors(Q, X, n_neighbors, *, metric, exclude_self=False, n_jobs=None):
    """Exact neighbours for any scikit-learn metric, in chunks of distance rows.

    The search of the metrics without a matrix-product form (``"manhattan"``):
    :func:`sklearn.metrics.pairwise_distances_chunked` computes rows of
    distances within scikit-learn's ``working_memory`` and each chunk keeps its
    best ``n_neighbors``, the smaller row first at equal distance. Parameters
    and return values as in :func:`exact_kneighbors` (``n_jobs``: joblib jobs).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music._exact import chunked_kneighbors
    >>> X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    >>> chunked_kneighbors(X[:1], X, 3, metric="manhattan")
    (array([[0., 2., 2.]]), array([[0, 1, 2]]))
    """
    k = int(n_neighbors)

    def reduce(D, start):
        rows = np.arange(D.shape[0])
        if exclude_self:
            D[rows, start + rows] = np.inf
        ids = np.broadcast_to(np.arange(D.shape[1]), D.shape)
        s, i = _select(-D, ids, k)
        return -s, i

    dists, inds = [], []
    for d, i in pairwise_distances_chunked(Q, X, metric=metric, reduce_func=reduce, n_jobs=n_jobs):
        dists.append(d)
        inds.append(i)
    return np.vstack(dists).astype(np.float64), np.vstack(inds).astype(np.intp)
