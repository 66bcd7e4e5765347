"""Queries by vector: recommendations from a history and search for a new vector.

The functions are methods of :class:`~sklearn_music.store.SimilarityStore`
(bound in its class body), kept here so that the class module stays small.
"""

import heapq

import numpy as np

from . import _aggregate
from . import _format as fmt
from . import _read as rd
from . import _search as search
from ._params import RECOMMEND, SIMILAR_TO_VECTOR, check_query_params


@rd.checked
def recommend(self, history, *, k=10, exhaustive=False, batch_size=65536, aggregate="mean"):
    """Recommend tracks for a listening history.

    The query is the mean of the history's vectors (of their unit vectors
    for ``metric="cosine"``). Tracks in ``history`` are never returned.

    Parameters
    ----------
    history : sequence of str or int
        Stored track ids.
    k : int, default=10
        Number of tracks to return.
    exhaustive : bool, default=False
        If False, a best-first search of the stored similar-track lists,
        starting from the history's tracks: every track it meets is scored
        exactly against the query from its stored vector, and the lists of
        the best tracks met are read until none of them can improve the best
        ``max(k, 64)`` (as HNSW searches its graph). Its cost grows with
        ``k`` and ``n_neighbors``, hardly with the store size (about 150
        vectors read for ``k=10`` on a 320-track store), and it agrees with
        the exhaustive answer on most histories (top-10 overlap 0.99 on the
        built-in data, see the recommendation benchmark; less for histories
        with no common direction: 0.7 for 9 random tracks of a 16,000-track
        store of 50 clusters, where ``exhaustive=True`` is the exact answer);
        fewer than ``k``
        tracks come back only when the lists reach fewer tracks. Stores of
        at most 1024 tracks are scanned instead (as cheap). If True, every
        stored vector is scored (exact, ``O(len(store) * dim)``, read in
        chunks of ``batch_size``).
    batch_size : int, default=65536
        Rows per chunk of the exhaustive scan.
    aggregate : {"mean", "clusters"}, default="mean"
        ``"mean"``: one query, the mean profile above. ``"clusters"``: the
        history's vectors are clustered by k-means into ``min(3, n)``
        clusters (``n`` distinct vectors), each cluster's mean is a query
        searched as above, and the lists are merged round-robin, largest
        cluster first, so that every taste of the history is represented
        (one exhaustive scan per cluster with ``exhaustive=True``).

    Returns
    -------
    recommended : list of (track_id, float)
        ``(track_id, score)`` pairs, best first (with
        ``aggregate="clusters"``: in round-robin order, each score against
        its cluster's query).

    Raises
    ------
    KeyError
        If a history track is not in the store.

    Examples
    --------
    >>> from sklearn_music.store import SimilarityStore
    >>> path = getfixture("tmp_path") / "tracks.db"
    >>> vectors = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]
    >>> SimilarityStore.build(path, vectors, ["a", "b", "c", "d"], n_neighbors=3)
    >>> SimilarityStore(path).recommend(["a", "b"], k=1, exhaustive=True)
    [('c', 1.0)]
    """
    check_query_params(
        RECOMMEND,
        "SimilarityStore.recommend",
        history=history,
        k=k,
        exhaustive=exhaustive,
        batch_size=batch_size,
        aggregate=aggregate,
    )
    self._check_open()
    history = list(history)
    if not history:
        raise ValueError("history is empty; give at least one stored track id")
    if aggregate == "clusters":
        return _aggregate.recommend_clusters(
            self, history, k=int(k), exhaustive=exhaustive, batch_size=int(batch_size)
        )
    H = search.prepare(self._vectors(history), self.metric)
    q = H.mean(axis=0, keepdims=True)
    if self.metric == "cosine":
        norm = np.linalg.norm(q)
        if norm == 0:
            raise ValueError("the history's unit vectors sum to zero; no direction to recommend")
        q /= norm
    exclude = {self._key(t) for t in history}
    if exhaustive:
        scan = rd.scan(self._conn, self._info, batch_size)
        chunks = ((keys, X) for keys, X, _ in scan)
        best_s, best_k = search.best_of(chunks, q, exclude=exclude, k=k, metric=self.metric)
    else:
        best_s, best_k = self._best_of_similar(q, history, exclude, k)
    return [(self._to_id(key), float(s)) for s, key in zip(best_s, best_k)]


# Beam width of the graph search: the best BEAM tracks found so far are kept and
# expanded until no unexpanded candidate can enter them (HNSW's ``ef``).
BEAM = 64
# Tracks whose lists are read per SQL query while searching.
STEP = 8
# Stores of at most this many tracks are scanned exhaustively by the default
# search: a scan of a few thousand rows costs about what the graph search reads.
SCAN_BELOW = 1024


def _read_vectors(self, keys):
    """Checked vectors of stored TEXT ``keys``, float32 rows in the order of ``keys``."""
    info, found = self._info, {}
    for lo in range(0, len(keys), 500):
        part = keys[lo : lo + 500]
        rows = self._conn.execute(
            f"SELECT {info.track_columns} FROM tracks "
            f"WHERE track_id IN ({','.join('?' * len(part))})",
            part,
        ).fetchall()
        for row in rows:
            key, vector, _ = rd.track_row(info, row)
            found[key] = vector
    missing = [key for key in keys if key not in found]
    if missing:
        raise rd.StoreError(
            self.path, f"track {missing[0]!r} is in a neighbour list but has no vector"
        )
    return np.vstack([found[key] for key in keys])


def _read_lists(self, keys):
    """The stored neighbour keys of each of ``keys``, in the order of ``keys``."""
    found = {key: nbrs for key, _, nbrs in rd.read_lists(self._conn, self._info, keys)}
    return [found[key] for key in keys]


def _best_of_similar(self, q, history, exclude, k):
    """The k best tracks for the prepared query q, by a search of the stored lists.

    Best-first search of the graph of stored similar tracks (as HNSW and
    pynndescent query theirs): the stored lists of the history's tracks are read
    first, then the lists of the best unexpanded track, a few at a time, while it
    can still enter the best ``max(k, BEAM)``; every track met is scored exactly
    against q from its stored vector. A store of at most ``SCAN_BELOW`` tracks is
    scanned instead.
    """
    if len(self) <= SCAN_BELOW:
        chunks = ((keys, X) for keys, X, _ in rd.scan(self._conn, self._info, 65536))
        return search.best_of(chunks, q, exclude=exclude, k=k, metric=self.metric)
    seeds = list(dict.fromkeys(self._key(t) for t in history))
    return graph_search(self, q, seeds, exclude, k)


def graph_search(self, q, seeds, exclude, k, *, beam=None, lists=None, vectors=None):
    """Best-first search from ``seeds`` (TEXT keys): (scores, keys) of the k best.

    Returns the best k tracks met that are not in ``exclude``, best first.
    ``lists(keys)`` (the stored neighbour keys of each of ``keys``) and
    ``vectors(keys)`` (their vectors, rows in the order of ``keys``) read the
    store by default; ``batch.recommend_all`` passes readers of a store held in
    memory, so that both give the same lists.
    """
    if lists is None:
        lists = lambda keys: _read_lists(self, keys)  # noqa: E731
    if vectors is None:
        vectors = lambda keys: _read_vectors(self, keys)  # noqa: E731
    ef = max(k, BEAM if beam is None else beam)
    visited = set(seeds)
    frontier = []  # heap of (-score, key): tracks whose lists are not read yet
    best = []  # heap of (score, key): the best ef tracks met, outside exclude

    def expand(keys):
        new = []
        for nbrs in lists(keys):
            for key in nbrs:
                if key not in visited:
                    visited.add(key)
                    new.append(key)
        if not new:
            return
        X = search.prepare(vectors(new), self.metric)
        for score, key in zip(search.scores(q, X, self.metric)[0].tolist(), new):
            heapq.heappush(frontier, (-score, key))
            if key in exclude:
                continue
            if len(best) < ef:
                heapq.heappush(best, (score, key))
            elif score > best[0][0]:
                heapq.heapreplace(best, (score, key))

    expand(seeds)
    while frontier:
        batch = []
        while frontier and len(batch) < STEP:
            if len(best) >= ef and -frontier[0][0] < best[0][0]:
                frontier.clear()  # nothing left can enter the best ef
                break
            batch.append(heapq.heappop(frontier)[1])
        if batch:
            expand(batch)
    best.sort(key=lambda pair: -pair[0])
    top = best[:k]
    return [s for s, _ in top], [key for _, key in top]


def similar_to_vector(self, vector, *, k=10, batch_size=65536):
    """Return the stored tracks most similar to a vector, by an exhaustive scan.

    For a track that is not stored, e.g. a new upload's embedding. Every
    stored vector is scored as by ``recommend(..., exhaustive=True)``:
    exact, ``O(len(store) * dim)``, read in chunks of ``batch_size``.

    Parameters
    ----------
    vector : array-like of shape (dim,)
        The query.
    k : int, default=10
        Number of tracks to return.
    batch_size : int, default=65536
        Rows per chunk of the scan.

    Returns
    -------
    similar : list of (track_id, float)
        ``(track_id, score)`` pairs, best first.

    Examples
    --------
    >>> from sklearn_music.store import SimilarityStore
    >>> path = getfixture("tmp_path") / "tracks.db"
    >>> SimilarityStore.build(path, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], ["a", "b", "c"])
    >>> SimilarityStore(path).similar_to_vector([1.0, 0.1], k=2)
    [('a', 0.995...), ('c', 0.773...)]
    """
    check_query_params(
        SIMILAR_TO_VECTOR,
        "SimilarityStore.similar_to_vector",
        vector=vector,
        k=k,
        batch_size=batch_size,
    )
    self._check_open()
    if np.ndim(vector) != 1:
        raise ValueError(f"vector must be 1-D (dim,), got shape {np.shape(vector)}")
    X = fmt.check_vectors([vector], dim=self.dim, metric=self.metric, what="vector")
    chunks = ((keys, V) for keys, V, _ in rd.scan(self._conn, self._info, batch_size))
    q = search.prepare(X, self.metric)
    best_s, best_k = search.best_of(chunks, q, exclude=(), k=int(k), metric=self.metric)
    return [(self._to_id(key), float(s)) for s, key in zip(best_s, best_k)]
