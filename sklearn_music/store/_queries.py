"""Queries by vector: recommendations from a history and search for a new vector.

The functions are methods of :class:`~sklearn_music.store.SimilarityStore`
(bound in its class body), kept here so that the class module stays small.
"""

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
        If False, the candidates are the stored similar tracks of the
        history's tracks, re-ranked against the query: cost
        ``O(len(history) * n_neighbors)`` lookups, independent of the store
        size, and fewer than ``k`` tracks may come back. If True, every
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


def _best_of_similar(self, q, history, exclude, k):
    """The k best of the history's stored similar tracks for the prepared query q."""
    cand = {}  # key -> id, in order of discovery
    for tid in history:
        for other, _ in self.similar(tid, k=self.n_neighbors):
            cand.setdefault(self._key(other), other)
    for key in exclude:
        cand.pop(key, None)
    if not cand:
        return [], []
    X = search.prepare(self._vectors(list(cand.values()), "candidates"), self.metric)
    top_s, top_k = search.top_k(
        search.scores(q, X, self.metric), np.asarray(list(cand), dtype=object), k
    )
    return list(top_s[0]), list(top_k[0])


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
