"""Nearest tracks: an exact or approximate (pynndescent, hnswlib) index over track vectors."""

from collections import Counter
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from ._exact import GEMM_METRICS, chunked_kneighbors, exact_kneighbors
from ._hnsw import (
    build_hnsw,
    hnsw_from_plain,
    hnsw_to_plain,
    query_hnsw,
)
from ._nndescent import (
    build_index,
    exact_cosine,
    nndescent_from_plain,
    nndescent_to_plain,
    vectors_from_index,
)
from ._recommend import check_histories, recommend_rows
from .metrics import precision_at_k
from .utils._checks import check_nonzero_rows, check_one_kind, check_track_ids
from .utils._sklearn_compat import Interval, StrOptions, _fit_context, validate_data

__all__ = ["NearestTracks"]

_METRICS = {"cosine", "euclidean", "manhattan"}


class NearestTracks(BaseEstimator):
    """Nearest tracks to a query, or to a listener's history, in a set of track vectors.

    An index over the fitted track vectors (typically the output of
    :class:`~sklearn_music.ConvEmbedder`): exact search, or an approximate
    nearest-neighbour graph for large collections, built with
    :class:`pynndescent.NNDescent` or, when the optional ``hnswlib`` is
    installed, an HNSW graph. :meth:`kneighbors` follows
    :class:`sklearn.neighbors.NearestNeighbors`; :meth:`recommend` ranks unheard
    tracks for listeners; :meth:`score` is the mean precision@k of the retrieved
    tracks' labels, so that :class:`~sklearn.model_selection.GridSearchCV` on a
    whole :class:`~sklearn.pipeline.Pipeline` ranks similarity models by retrieval
    quality.

    Parameters
    ----------
    n_neighbors : int, default=10
        Number of neighbours returned by :meth:`kneighbors` and used by
        :meth:`predict` and :meth:`score`.

    metric : {"cosine", "euclidean", "manhattan"}, default="cosine"
        Distance between track vectors. ``"cosine"`` is ``1 - cos(a, b)``; the
        index keeps L2-normalised copies of the vectors.

    algorithm : {"auto", "hnsw", "nndescent", "brute"}, default="auto"
        ``"brute"`` computes every distance (exact: blocked matrix products
        with a running top-k for cosine and Euclidean); ``"hnsw"`` builds an
        approximate HNSW graph with :mod:`hnswlib` (an optional dependency,
        ``pip install hnswlib``; cosine and Euclidean only); ``"nndescent"``
        builds an approximate :class:`pynndescent.NNDescent` graph (numba
        compilation the first time it is used in a process). ``"auto"`` uses
        ``"brute"`` for at most ``brute_threshold`` fitted tracks and
        ``"nndescent"`` above it, whether or not hnswlib is installed (the
        fitted model does not depend on the environment). In
        ``benchmarks/bench_ann.py`` (10^6 clustered vectors) both approximate
        indexes reach recall@10 >= 0.99 on an idle 2-core machine:
        pynndescent with ``epsilon=0.6`` (0.999, 7,857 queries/s, 66 s build)
        and hnswlib ``M=16, ef=100`` (0.997, 10,322 queries/s, 176 s build).

    index_params : dict, default=None
        Build parameters of the approximate index. For ``"nndescent"``,
        keyword arguments of :class:`pynndescent.NNDescent` (e.g.
        ``n_neighbors``, the graph degree, default 30; ``diversify_prob``;
        ``pruning_degree_multiplier``; ``n_trees``; ``metric``,
        ``random_state``, ``n_jobs`` and ``verbose`` come from this estimator).
        For ``"hnsw"``, ``M`` (graph degree, default 16) and
        ``ef_construction`` (build breadth, default 200). Ignored by
        ``"brute"``.

    epsilon : float, default=0.6
        Search breadth of the approximate index's queries (pynndescent's
        ``epsilon``, whose own default is 0.1): larger is more accurate and
        slower. A query-time parameter: change it with :meth:`set_params`
        without refitting. On 10^6 clustered 64-d vectors
        (``benchmarks/bench_ann.py``, idle 2-core machine) 0.6 gave recall@10
        0.999 at 7,857 queries/s and 0.3 (the default before 0.2) 0.961 at
        15,537: 0.6 is the cheapest setting measured at recall >= 0.99. Models saved with
        another value keep it. Used by ``"nndescent"`` only.

    ef : int, default=50
        Search breadth of the HNSW index's queries (hnswlib's ``ef``; at least
        ``n_neighbors`` is used): larger is more accurate and slower. A
        query-time parameter, like ``epsilon``. Used by ``"hnsw"`` only.

    brute_threshold : int, default=10000
        Largest number of fitted tracks for which ``algorithm="auto"`` uses
        exact search.

    random_state : int, RandomState instance or None, default=None
        Seed of the approximate index's random projections and graph
        initialisation (hnswlib's ``random_seed``); an int gives identical
        indexes (with ``n_jobs=1``).

    n_jobs : int, default=None
        Threads of the search: of the approximate index (numba, hnswlib's
        ``num_threads``) and of the exact search (each thread runs its own
        one-threaded BLAS). ``None`` means 1 for the exact search and the
        library's default (all cores) for the approximate indexes.

    verbose : bool, default=False
        Print the index build's progress.

    Attributes
    ----------
    algorithm_ : {"hnsw", "nndescent", "brute"}
        The search actually used.

    index_ : pynndescent.NNDescent, hnswlib.Index or ndarray of shape \
            (n_samples_fit, n_features)
        The approximate index, or for ``"brute"`` the array ``vectors_`` itself.

    vectors_ : ndarray of shape (n_samples_fit, n_features)
        The fitted track vectors as searched, in fitted order: L2-normalised for
        ``metric="cosine"`` (with any algorithm). float32 for
        the approximate indexes (what they search); for ``"brute"`` the dtype of
        the fitted ``X`` (float32 or float64), so that exact search keeps its
        precision.

    n_samples_fit_ : int
        Number of fitted tracks.

    n_features_in_ : int
        Number of features (embedding dimensions) seen during ``fit``.

    track_ids_ : ndarray of shape (n_samples_fit,)
        The fitted tracks' ids (``np.arange(n_samples_fit)`` if none were given).

    y_ : ndarray of shape (n_samples_fit,)
        The fitted tracks' labels; only when fitted with ``y``.

    classes_ : ndarray of shape (n_classes,)
        The distinct labels; only when fitted with ``y``.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : Exact neighbours, the reference.
    sklearn_music.metrics.retrieval_report : Leave-one-out retrieval metrics.

    Notes
    -----
    An instance pickles its approximate index as plain arrays and rebuilds the
    :class:`~pynndescent.NNDescent` (or :class:`hnswlib.Index`) from copies
    of them when unpickled, so a
    model loaded with ``joblib.load(..., mmap_mode="r")`` can be pickled again
    (pynndescent 0.7.0 crashes pickling an index whose arrays are read-only
    memory maps) and :func:`sklearn_music.persistence.save_model` needs no
    pynndescent or hnswlib type.

    Exact search returns, at equal distance, the smaller fitted row first. The
    approximate indexes return the distances of the neighbours they found
    recomputed exactly from ``vectors_``.

    With ``algorithm="nndescent"`` and ``metric="cosine"``, the index is built
    on ``vectors_``, normalised by this estimator, and the distances returned are
    computed exactly from ``vectors_`` for the neighbours found; pynndescent's search
    itself treats all tracks with a non-positive cosine similarity to the query
    as equally far, so their order among themselves is arbitrary (it only
    matters when fewer than ``n_neighbors`` tracks point the query's way).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music import NearestTracks
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> nn = NearestTracks(n_neighbors=1).fit(X, track_ids=["a", "b", "c", "d"])
    >>> distances, indices = nn.kneighbors([[1.0, 0.05]])
    >>> indices
    array([[0]])
    >>> nn.recommend(["a"], n=2)
    [[('b', 0.99...), ('d', 0.11...)]]
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(_METRICS)],
        "algorithm": [StrOptions({"auto", "hnsw", "nndescent", "brute"})],
        "index_params": [dict, None],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "ef": [Interval(Integral, 1, None, closed="left")],
        "brute_threshold": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_neighbors=10,
        metric="cosine",
        algorithm="auto",
        index_params=None,
        epsilon=0.6,
        ef=50,
        brute_threshold=10000,
        random_state=None,
        n_jobs=None,
        verbose=False,
    ):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.algorithm = algorithm
        self.index_params = index_params
        self.epsilon = epsilon
        self.ef = ef
        self.brute_threshold = brute_threshold
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, track_ids=None):
        """Index the track vectors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The track vectors.

        y : array-like of shape (n_samples,), default=None
            Labels of the tracks (genre, artist...), used by :meth:`predict` and
            :meth:`score`.

        track_ids : array-like of shape (n_samples,), default=None
            Unique ids of the tracks, used by :meth:`recommend`; default
            ``0 .. n_samples - 1``. In a :class:`~sklearn.pipeline.Pipeline`
            with metadata routing enabled, request it with
            ``set_fit_request(track_ids=True)``.

        Returns
        -------
        self : NearestTracks
            The fitted index.
        """
        if y is not None:
            check_one_kind(y, what="y", noun="label")
        if y is None:
            X = validate_data(self, X, dtype=[np.float64, np.float32])
        else:
            X, y = validate_data(
                self,
                X,
                y,
                dtype=[np.float64, np.float32],
                multi_output=False,
                y_numeric=False,
            )
        n = X.shape[0]
        ids = check_track_ids(track_ids, n)
        algorithm = self._choose_algorithm(n)

        # the searched vectors: L2-normalised here for cosine, whatever the backend
        if self.metric == "cosine":
            check_nonzero_rows(X, what="X")
            vectors = normalize(X)
        else:
            vectors = X.copy()
        if algorithm == "brute":
            self.vectors_ = vectors
            self.index_ = vectors
        elif algorithm == "hnsw":
            self.vectors_ = np.asarray(vectors, dtype=np.float32)
            self.index_ = build_hnsw(
                self.vectors_,
                metric=self.metric,
                index_params=self.index_params,
                random_state=self.random_state,
                n_jobs=self.n_jobs,
            )
        else:
            self.vectors_ = np.asarray(vectors, dtype=np.float32)
            self.index_ = build_index(
                self.vectors_,
                metric=self.metric,
                index_params=self.index_params,
                random_state=self.random_state,
                n_jobs=self.n_jobs,
                verbose=self.verbose,
            )
        self.algorithm_ = algorithm
        self.n_samples_fit_ = n
        self.track_ids_ = ids
        self._id_to_row = {tid: i for i, tid in enumerate(ids.tolist())}
        if y is not None:
            self.y_ = np.asarray(y)
            self.classes_ = np.unique(self.y_)
        else:
            for attr in ("y_", "classes_"):
                if hasattr(self, attr):
                    delattr(self, attr)
        return self

    def _choose_algorithm(self, n):
        if self.algorithm != "auto":
            return self.algorithm
        if n <= self.brute_threshold:
            return "brute"
        return "nndescent"

    # ------------------------------------------------------------ neighbours
    def _check_k(self, n_neighbors, exclude_self):
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_neighbors={k!r} must be a positive integer")
        available = self.n_samples_fit_ - (1 if exclude_self else 0)
        if k > available:
            raise ValueError(
                f"n_neighbors={k} is larger than the {available} fitted tracks "
                + ("other than the query track " if exclude_self else "")
                + "available; expected n_neighbors <= "
                f"{available}"
            )
        return int(k)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the nearest fitted tracks of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            The query vectors. ``None`` queries every fitted track against the
            others: a track is not its own neighbour (as in scikit-learn).

        n_neighbors : int, default=None
            Number of neighbours; default the ``n_neighbors`` parameter.

        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Distances to the neighbours, increasing along each row; only when
            ``return_distance=True``.

        indices : ndarray of shape (n_queries, n_neighbors)
            Row numbers of the neighbours in the fitted data (``track_ids_[indices]``
            gives their ids).
        """
        check_is_fitted(self)
        exclude_self = X is None
        k = self._check_k(n_neighbors, exclude_self)
        if X is None:
            Q = self.vectors_
        else:
            Q = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
            if self.metric == "cosine":
                check_nonzero_rows(Q, what="X")
                Q = normalize(Q)
        dist, ind = self._search(Q, k, exclude_self)
        return (dist, ind) if return_distance else ind

    def _search(self, Q, k, exclude_self):
        """(distances, indices) of the ``k`` nearest fitted rows, exact or approximate."""
        if self.algorithm_ == "brute":
            return self._brute(Q, k, exclude_self)
        return self._query_index(Q, k, exclude_self)

    def _brute(self, Q, k, exclude_self):
        search = exact_kneighbors if self.metric in GEMM_METRICS else chunked_kneighbors
        return search(
            Q, self.vectors_, k, metric=self.metric, exclude_self=exclude_self, n_jobs=self.n_jobs
        )

    def _query_index(self, Q, k, exclude_self):
        index = self.index_
        kq = min(k + 1, self.n_samples_fit_) if exclude_self else k
        if self.algorithm_ == "hnsw":
            dist, ind = query_hnsw(
                index, Q, self.vectors_, kq, ef=self.ef, metric=self.metric, n_jobs=self.n_jobs
            )
        else:
            ind, dist = index.query(np.asarray(Q, dtype=np.float32), k=kq, epsilon=self.epsilon)
        ind = ind.astype(np.intp)
        dist = dist.astype(np.float64)
        if exclude_self:
            own = ind == np.arange(ind.shape[0])[:, None]
            # drop the track itself, or the farthest neighbour if it was not found
            own[~own.any(axis=1), -1] = True
            keep = ~own
            ind = ind[keep].reshape(ind.shape[0], kq - 1)[:, :k]
            dist = dist[keep].reshape(dist.shape[0], kq - 1)[:, :k]
        if self.metric == "cosine" and self.algorithm_ == "nndescent":
            dist, ind = exact_cosine(Q, self.vectors_, dist, ind)
        return dist, ind

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Compute the graph of each query's nearest fitted tracks.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            The query vectors; ``None`` means the fitted tracks, each excluded
            from its own neighbours.

        n_neighbors : int, default=None
            Number of neighbours; default the ``n_neighbors`` parameter.

        mode : {"connectivity", "distance"}, default="connectivity"
            ``"connectivity"`` puts ones, ``"distance"`` the distances.

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
            CSR matrix; row ``i`` holds query ``i``'s neighbours.
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(
                f"mode={mode!r} is not supported; expected 'connectivity' or 'distance'"
            )
        dist, ind = self.kneighbors(X, n_neighbors)
        n_queries, k = ind.shape
        data = np.ones(n_queries * k) if mode == "connectivity" else dist.ravel()
        return sparse.csr_matrix(
            (data, ind.ravel(), np.arange(0, n_queries * k + 1, k)),
            shape=(n_queries, self.n_samples_fit_),
        )

    # --------------------------------------------------------------- labels
    def _check_labels(self, method):
        check_is_fitted(self)
        if not hasattr(self, "y_"):
            raise AttributeError(f"{method} needs labels: this NearestTracks was fitted without y")

    def predict(self, X):
        """Predict the majority label of each query's nearest fitted tracks.

        Ties go to the label of the nearest of the tied neighbours.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            The query vectors.

        Returns
        -------
        y_pred : ndarray of shape (n_queries,)
            Predicted labels.
        """
        self._check_labels("predict")
        ind = self.kneighbors(X, min(self.n_neighbors, self.n_samples_fit_), return_distance=False)
        labels = self.y_[ind]
        out = np.empty(labels.shape[0], dtype=self.y_.dtype)
        for i, row in enumerate(labels.tolist()):
            counts = Counter(row)
            top = max(counts.values())
            out[i] = next(v for v in row if counts[v] == top)
        return out

    def score(self, X, y):
        """Mean precision@k of the labels of the query's nearest fitted tracks.

        For each query, the fraction of its ``n_neighbors`` nearest fitted
        tracks whose label (``y_``) equals the query's label, averaged over the
        queries. ``X`` is searched against the fitted tracks as they are: when
        ``X`` holds fitted tracks themselves, each finds itself first (which
        inflates the score); for leave-one-out retrieval within a set, see
        :func:`sklearn_music.metrics.retrieval_report`.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            The query vectors (e.g. held-out tracks).

        y : array-like of shape (n_queries,)
            The queries' labels.

        Returns
        -------
        score : float
            Mean precision@k, in [0, 1].
        """
        self._check_labels("score")
        k = min(self.n_neighbors, self.n_samples_fit_)
        ind = self.kneighbors(X, k, return_distance=False)
        return precision_at_k(np.asarray(y), self.y_[ind], k=k)

    # -------------------------------------------------------- recommending
    def _rows(self, ids, user):
        rows = []
        for tid in ids:
            try:
                rows.append(self._id_to_row[tid])
            except (KeyError, TypeError):
                raise KeyError(
                    f"unknown track id {tid!r} in the history of user {user}: it is "
                    "not among the fitted track_ids_"
                ) from None
        return rows

    def recommend(self, history, n=10, *, aggregate="mean", exclude_history=True):
        """Recommend unheard tracks closest to listeners' histories.

        Parameters
        ----------
        history : sequence of track ids, or sequence of such sequences
            One listener's history (track ids from ``track_ids_``), or a list of
            listeners' histories. A sequence whose items are all lists, tuples or
            arrays is read as several listeners.

        n : int, default=10
            Number of recommendations per listener (fewer when fewer tracks are
            left).

        aggregate : {"mean", "max"}, default="mean"
            ``"mean"``: rank tracks by their similarity to the profile, the mean
            of the history's vectors (L2-normalised vectors for
            ``metric="cosine"``); ``"max"``: rank each track by its highest
            similarity to any track of the history.

        exclude_history : bool, default=True
            Leave the history's own tracks out of the recommendations.

        Returns
        -------
        recommendations : list of list of (track_id, float)
            One list per listener (a one-element list for a single history),
            each holding ``(track id, score)`` pairs sorted by decreasing score.
            The score is the similarity: ``1 - distance`` for cosine,
            ``-distance`` for the other metrics.
        """
        check_is_fitted(self)
        if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n={n!r} must be a positive integer")
        if aggregate not in ("mean", "max"):
            raise ValueError(f"aggregate={aggregate!r} must be 'mean' or 'max'")
        users = check_histories(history)
        out = []
        for u, hist in enumerate(users):
            rows = self._rows(list(hist), u)
            if not rows:
                raise ValueError(f"the history of user {u} is empty")
            out.append(recommend_rows(self, rows, n, aggregate, exclude_history))
        return out

    # -------------------------------------------------------------- pickling
    # parameters added since 0.1.0, with the value that keeps an old model's behaviour
    _ADDED_PARAMS = {"ef": 50}

    def __getstate__(self):
        state = dict(super().__getstate__())  # object's is self.__dict__ itself
        state.pop("_id_to_row", None)
        index = state.get("index_")
        if index is not None and not isinstance(index, np.ndarray):
            if state.get("algorithm_") == "hnsw":
                state["index_"] = hnsw_to_plain(index)
            else:
                state["index_"] = nndescent_to_plain(index)
        return state

    def __setstate__(self, state):
        state = {**self._ADDED_PARAMS, **state}
        state.pop("_fit_X", None)  # saved by sklearn_music 0.1: the vectors, or a view
        index = state.get("index_")
        if isinstance(index, dict) and "hnswlib_state" in index:
            state["index_"] = hnsw_from_plain(index)
            state["vectors_"] = np.array(state["vectors_"])
        elif isinstance(index, dict):
            state["index_"] = nndescent_from_plain(index)
            if "vectors_" in state:
                state["vectors_"] = np.array(state["vectors_"])  # owned, writeable
            else:  # saved by sklearn_music 0.1
                vectors = vectors_from_index(state["index_"])
                if state.get("metric") == "cosine":
                    vectors = normalize(vectors)
                state["vectors_"] = vectors
        elif isinstance(index, np.ndarray):
            state["index_"] = np.array(index)  # an owned, writeable copy
            state["vectors_"] = state["index_"]
        super().__setstate__(state)
        if hasattr(self, "track_ids_"):
            self.track_ids_ = np.array(self.track_ids_)
            self._id_to_row = {t: i for i, t in enumerate(self.track_ids_.tolist())}
        for attr in ("y_", "classes_"):
            if hasattr(self, attr):
                setattr(self, attr, np.array(getattr(self, attr)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags
