"""Latent factors of users and tracks from implicit feedback (play counts).

Weighted matrix factorisation for implicit feedback (Hu, Koren & Volinsky, 2008),
fitted by alternating least squares with the `implicit
<https://benfred.github.io/implicit/>`_ package: the solver is implicit's, this
module only turns play histories into its input and its factors into an
estimator.
"""

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from .utils._sklearn_compat import Interval, StrOptions, _fit_context, validate_params

__all__ = ["ImplicitFactors"]


def _is_long_frame(X):
    """True for a pandas DataFrame in long form (``user_id``, ``track_id`` columns)."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return False
    return {"user_id", "track_id"} <= set(map(str, columns))


def _triplets_from_history(history):
    """(users, tracks, plays) from ``user_id -> [track_ids]`` or ``-> {track_id: plays}``."""
    users, rows, tracks, plays = [], [], [], []
    for row, (user, items) in enumerate(history.items()):
        users.append(user)
        if isinstance(items, Mapping):
            pairs = list(items.items())
        elif isinstance(items, (str, bytes)):
            raise ValueError(
                f"history of user {_py(user)!r} must be a list of track ids or a "
                f"{{track_id: plays}} mapping, got the string {items!r}"
            )
        else:
            pairs = [(track, 1.0) for track in items]
        for track, count in pairs:
            rows.append(row)
            tracks.append(track)
            plays.append(count)
    return users, np.asarray(rows, dtype=np.intp), tracks, plays


def _triplets_from_frame(frame):
    """(users, rows, tracks, plays) from a long DataFrame ``(user_id, track_id[, plays])``."""
    user_col = frame["user_id"].to_numpy()
    tracks = list(frame["track_id"].to_numpy())
    if "plays" in frame.columns:
        plays = list(frame["plays"].to_numpy())
    else:
        plays = [1.0] * len(tracks)
    users, index = [], {}
    rows = np.empty(len(user_col), dtype=np.intp)
    for i, user in enumerate(user_col):
        if user not in index:
            index[user] = len(users)
            users.append(user)
        rows[i] = index[user]
    return users, rows, tracks, plays


class ImplicitFactors(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Latent factors of users and tracks from play counts (implicit feedback).

    Weighted matrix factorisation for implicit feedback (Hu, Koren & Volinsky,
    2008): every user-track pair gets a preference ``p = 1`` if the user played
    the track (``0`` otherwise) and a confidence ``c = 1 + alpha * s(plays)``;
    user factors ``x_u`` and track factors ``y_i`` minimise
    ``sum c (p - x_u . y_i)^2 + regularization (|x|^2 + |y|^2)``. The
    alternating least squares solver is the one of the `implicit
    <https://benfred.github.io/implicit/>`_ package (imported when fitting).

    ``transform`` folds new users in: each row of play counts over the fitted
    tracks gives the user factors that minimise the same loss with the track
    factors held fixed.

    Parameters
    ----------
    n_factors : int, default=32
        Number of latent factors.

    regularization : float, default=0.1
        L2 penalty on the factors.

    alpha : float, default=10.0
        Confidence weight of observed plays, ``c = 1 + alpha * s(plays)``.

    scaling : {"log", "linear"}, default="log"
        ``s``: ``log(1 + plays)`` (``"log"``, the variant van den Oord et al. used,
        which damps heavy repeat listening), or the play count itself
        (``"linear"``, Hu et al.'s main form, usually with ``alpha=40``).

    iterations : int, default=15
        Number of ALS sweeps (users then tracks).

    normalize_items : bool, default=False
        Scale every track factor to unit length after fitting (Dieleman's trick
        against popularity bias: popular tracks otherwise get long factors, and a
        regression from audio would have to predict popularity).
        ``item_factors_`` holds the normalised factors and :meth:`recommend`
        ranks with them.

    random_state : int, RandomState instance or None, default=None
        Seeds the initial factors. An int gives identical factors from one fit to
        the next.

    n_jobs : int, default=None
        Number of threads of implicit's solver; ``None`` means 1 and ``-1`` all
        cores (resolved with :func:`joblib.effective_n_jobs`). The result does
        not depend on it: each user's (track's) solve is independent.

    verbose : int, default=0
        Show implicit's progress bar when positive.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
        Factors of the users of the training data, float32.

    item_factors_ : ndarray of shape (n_tracks, n_factors)
        Factors of the tracks of the training data, float32 (unit length when
        ``normalize_items=True``).

    user_ids_ : ndarray of shape (n_users,)
        User id of each row of ``user_factors_``.

    track_ids_ : ndarray of shape (n_tracks,)
        Track id of each row of ``item_factors_``.

    user_items_ : scipy.sparse.csr_matrix of shape (n_users, n_tracks)
        The play counts seen in ``fit`` (used to leave known tracks out of
        recommendations).

    n_features_in_ : int
        Number of tracks (the columns of a play-count matrix).

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names when ``X`` was a wide DataFrame with string column names.

    See Also
    --------
    sklearn_music.ConvEmbedder : Predicts the track factors from audio.
    sklearn_music.coldstart.evaluate_cold_start : Ranks held-out tracks per user.

    Notes
    -----
    ``X`` can be

    - a play-count matrix (dense or sparse) with one row per user and one column
      per track; ids are the row and column positions unless given by
      ``user_ids`` / ``catalogue``;
    - a mapping ``user_id -> [track_ids]`` (one play each) or
      ``user_id -> {track_id: plays}``;
    - a long pandas DataFrame with columns ``user_id``, ``track_id`` and
      optionally ``plays`` (repeated pairs are summed).

    Every user must have played something, and every track of the catalogue must
    have been played: a row or column without plays has no factors to learn.

    References
    ----------
    Y. Hu, Y. Koren and C. Volinsky, "Collaborative filtering for implicit
    feedback datasets", ICDM 2008.

    A. van den Oord, S. Dieleman and B. Schrauwen, "Deep content-based music
    recommendation", NIPS 2013.

    Examples
    --------
    >>> from sklearn_music import ImplicitFactors
    >>> history = {"ann": ["a", "b"], "bob": ["b", "c"], "cid": ["a", "c", "d"]}
    >>> model = ImplicitFactors(n_factors=2, random_state=0).fit(history)
    >>> model.item_factors_.shape
    (4, 2)
    >>> model.track_ids_.tolist()
    ['a', 'b', 'c', 'd']
    >>> tracks, scores = model.recommend("ann", n=2)
    >>> "a" in tracks or "b" in tracks
    False
    """

    _parameter_constraints: dict = {
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "scaling": [StrOptions({"linear", "log"})],
        "iterations": [Interval(Integral, 1, None, closed="left")],
        "normalize_items": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_factors=32,
        regularization=0.1,
        alpha=10.0,
        scaling="log",
        iterations=15,
        normalize_items=False,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.n_factors = n_factors
        self.regularization = regularization
        self.alpha = alpha
        self.scaling = scaling
        self.iterations = iterations
        self.normalize_items = normalize_items
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ input
    def _play_matrix(self, X, *, reset, catalogue=None, user_ids=None):
        """Play-count csr matrix, user ids and track ids from any accepted form of X."""
        if isinstance(X, Mapping) or _is_long_frame(X):
            if user_ids is not None:
                raise ValueError(
                    "user_ids is only used with a play-count matrix; a history "
                    "mapping or a (user_id, track_id) frame names its users itself"
                )
            matrix, user_ids, track_ids = self._matrix_from_history(X, reset, catalogue)
        else:
            matrix, user_ids, track_ids = self._matrix_from_array(X, reset, catalogue, user_ids)
        for kind, ids in (("track", track_ids), ("user", user_ids)):
            seen = set()
            for value in ids.tolist():
                if value in seen:
                    raise ValueError(f"{kind} id {_py(value)!r} appears twice")
                seen.add(value)
        empty = np.flatnonzero(np.diff(matrix.indptr) == 0)
        if empty.size:
            raise ValueError(
                f"{empty.size} user(s) have no plays, e.g. user {_py(user_ids[empty[0]])!r} "
                f"(row {empty[0]}); a user without plays has no factors"
            )
        return matrix, user_ids, track_ids

    def _matrix_from_history(self, X, reset, catalogue):
        """Play matrix from a history mapping or a long (user_id, track_id) frame."""
        if isinstance(X, Mapping):
            users, rows, tracks, plays = _triplets_from_history(X)
        else:
            users, rows, tracks, plays = _triplets_from_frame(X)
        if not users:
            raise ValueError("the play history is empty: no users")
        if catalogue is None:
            track_ids, cols = _index_ids(tracks)
        else:
            track_ids = _as_id_array(list(catalogue))
            index = {t: j for j, t in enumerate(track_ids.tolist())}
            cols = np.empty(len(tracks), dtype=np.intp)
            for k, track in enumerate(tracks):
                j = index.get(track)
                if j is None:
                    raise ValueError(
                        f"track {_py(track)!r} in the history of user "
                        f"{_py(users[rows[k]])!r} is not in the catalogue"
                    )
                cols[k] = j
        plays = np.asarray(plays, dtype=np.float64)
        bad = ~np.isfinite(plays) | (plays < 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"play count {_py(plays[k])!r} of user {_py(users[rows[k]])!r} for track "
                f"{_py(tracks[k])!r} must be a finite non-negative number"
            )
        matrix = sp.csr_matrix(
            (plays, (rows, np.asarray(cols, dtype=np.intp))),
            shape=(len(users), len(track_ids)),
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()  # a zero play count is no play
        if reset:
            self.n_features_in_ = matrix.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif matrix.shape[1] != self.n_features_in_:  # pragma: no cover
            raise ValueError("internal error: catalogue size changed")
        user_ids = _as_id_array(users)
        return matrix, user_ids, track_ids

    def _matrix_from_array(self, X, reset, catalogue, user_ids):
        """Play matrix from a dense or sparse (n_users, n_tracks) array of play counts."""
        matrix = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
        )
        check_non_negative(matrix, f"{type(self).__name__} (play counts)")
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        matrix.eliminate_zeros()
        n_users, n_tracks = matrix.shape
        if catalogue is None:
            track_ids = np.arange(n_tracks)
        else:
            track_ids = _as_id_array(list(catalogue))
            if track_ids.shape != (n_tracks,):
                raise ValueError(
                    f"catalogue has {track_ids.shape[0]} "
                    f"track ids but the play matrix has {n_tracks} columns"
                )
        if user_ids is None:
            user_ids = np.arange(n_users)
        else:
            user_ids = _as_id_array(list(user_ids))
            if user_ids.shape != (n_users,):
                raise ValueError(
                    f"user_ids has {user_ids.shape[0]} ids but the play matrix has {n_users} rows"
                )
        return matrix, user_ids, track_ids

    def _confidence(self, matrix):
        """Hu et al.'s confidence ``1 + alpha * s(plays)`` on the observed entries."""
        conf = matrix.astype(np.float32, copy=True)
        data = conf.data.astype(np.float64)
        if self.scaling == "log":
            data = np.log1p(data)
        conf.data = (1.0 + self.alpha * data).astype(np.float32)
        return conf

    def _make_solver(self, seed=None):
        from implicit.cpu.als import AlternatingLeastSquares  # heavy: lazily
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit asks for single-threaded BLAS
            return AlternatingLeastSquares(
                factors=self.n_factors,
                regularization=self.regularization,
                alpha=1.0,  # the confidence is computed here, see _confidence
                iterations=self.iterations,
                num_threads=int(effective_n_jobs(self.n_jobs)),
                random_state=seed,
            )

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, catalogue=None, user_ids=None):
        """Fit user and track factors to play counts.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_tracks), dict or DataFrame
            Play counts: a matrix with one row per user, a mapping
            ``user_id -> [track_ids]`` or ``user_id -> {track_id: plays}``, or a
            long DataFrame with columns ``user_id``, ``track_id`` (and
            ``plays``). See the Notes of the class.

        y : None
            Ignored.

        catalogue : array-like of shape (n_tracks,), default=None
            Track ids. With a matrix, the id of each column; with a history, the
            tracks to factorise, in this order (a played track missing from it
            is an error, and so is a catalogue track nobody played). By default
            the columns' positions, or the sorted ids found in the history.

        user_ids : array-like of shape (n_users,), default=None
            Id of each row of a play-count matrix; by default the row positions.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        matrix, user_ids, track_ids = self._play_matrix(
            X, reset=True, catalogue=catalogue, user_ids=user_ids
        )
        unplayed = np.flatnonzero(np.diff(matrix.tocsc().indptr) == 0)
        if unplayed.size:
            raise ValueError(
                f"{unplayed.size} track(s) of the catalogue were never played, e.g. "
                f"track {_py(track_ids[unplayed[0]])!r} (column {unplayed[0]}); a track "
                "without plays has no factors (predict them from audio instead)"
            )
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        solver = self._make_solver(seed)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            solver.fit(self._confidence(matrix), show_progress=bool(self.verbose))
        self._fitted_item_factors = np.array(solver.item_factors, dtype=np.float32)
        self.user_factors_ = np.array(solver.user_factors, dtype=np.float32)
        items = np.array(solver.item_factors, dtype=np.float32)
        if self.normalize_items:
            norms = np.linalg.norm(items, axis=1, keepdims=True)
            items = items / np.maximum(norms, np.finfo(np.float32).tiny)
        self.item_factors_ = items
        self.user_ids_ = user_ids
        self.track_ids_ = track_ids
        self.user_items_ = matrix
        self._n_features_out = self.n_factors
        self._user_index = {u: i for i, u in enumerate(user_ids.tolist())}
        self._track_index = {t: j for j, t in enumerate(track_ids.tolist())}
        return self

    # -------------------------------------------------------------- transform
    def transform(self, X):
        """Fold new users in: user factors from their play counts.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_tracks), dict or DataFrame
            Play counts over the fitted tracks (the columns follow
            ``track_ids_``), or a history / long DataFrame whose track ids are in
            ``track_ids_``.

        Returns
        -------
        user_factors : ndarray of shape (n_users, n_factors)
            Factors that minimise the weighted loss with the track factors held
            fixed, float32, in the order of the users of ``X``.
        """
        check_is_fitted(self)
        matrix, _, _ = self._play_matrix(X, reset=False, catalogue=self.track_ids_)
        from threadpoolctl import threadpool_limits

        solver = self._make_solver()
        # a fresh, writable copy: the fitted arrays may be a read-only memmap
        solver.item_factors = np.array(self._fitted_item_factors, dtype=np.float32)
        with threadpool_limits(1, "blas"):
            factors = solver.recalculate_user(np.arange(matrix.shape[0]), self._confidence(matrix))
        return np.asarray(factors, dtype=np.float32).reshape(matrix.shape[0], -1)

    # ------------------------------------------------------------ look-ups
    def _rows(self, ids, index, kind):
        ids_list = np.asarray(ids).tolist() if not np.isscalar(ids) else [ids]
        rows = []
        for value in ids_list:
            row = index.get(value)
            if row is None:
                raise KeyError(f"{kind} {_py(value)!r} was not seen in fit")
            rows.append(row)
        return np.asarray(rows, dtype=np.intp)

    def item_factors_for(self, track_ids):
        """Look up the factors of the given tracks.

        Parameters
        ----------
        track_ids : array-like of shape (n_query,)
            Ids from ``track_ids_``.

        Returns
        -------
        factors : ndarray of shape (n_query, n_factors)
            Rows of ``item_factors_`` in the order asked.

        Raises
        ------
        KeyError
            Naming the first id that was not seen in ``fit``.

        Examples
        --------
        >>> from sklearn_music import ImplicitFactors
        >>> model = ImplicitFactors(n_factors=2, random_state=0)
        >>> model = model.fit({"ann": ["a", "b"], "bob": ["b", "c"]})
        >>> model.item_factors_for(["c", "a"]).shape
        (2, 2)
        """
        check_is_fitted(self)
        return self.item_factors_[self._rows(track_ids, self._track_index, "track")]

    def user_factors_for(self, user_ids):
        """Look up the factors of the given users.

        Parameters
        ----------
        user_ids : array-like of shape (n_query,)
            Ids from ``user_ids_``.

        Returns
        -------
        factors : ndarray of shape (n_query, n_factors)
            Rows of ``user_factors_`` in the order asked.

        Raises
        ------
        KeyError
            Naming the first id that was not seen in ``fit``.

        Examples
        --------
        >>> from sklearn_music import ImplicitFactors
        >>> model = ImplicitFactors(n_factors=2, random_state=0)
        >>> model = model.fit({"ann": ["a", "b"], "bob": ["b", "c"]})
        >>> model.user_factors_for(["bob"]).shape
        (1, 2)
        """
        check_is_fitted(self)
        return self.user_factors_[self._rows(user_ids, self._user_index, "user")]

    @validate_params(
        {
            "user": "no_validation",  # looked up in user_ids_, a KeyError names it
            "n": [Interval(Integral, 1, None, closed="left")],
            "exclude_seen": ["boolean"],
        },
        prefer_skip_nested_validation=True,
    )
    def recommend(self, user, n=10, *, exclude_seen=True):
        """Best tracks for a user of the training data.

        Tracks are ranked by ``user_factors_[u] @ item_factors_.T`` (ties broken
        by catalogue order).

        Parameters
        ----------
        user : hashable
            An id from ``user_ids_``.

        n : int, default=10
            Number of tracks; fewer are returned when fewer are left.

        exclude_seen : bool, default=True
            Leave out the tracks the user played in the training data.

        Returns
        -------
        track_ids : ndarray of shape (n_found,)
            Ids of the recommended tracks, best first.

        scores : ndarray of shape (n_found,)
            Their scores, non-increasing.

        Raises
        ------
        KeyError
            When ``user`` was not seen in ``fit``.

        Examples
        --------
        >>> from sklearn_music import ImplicitFactors
        >>> history = {"ann": ["a", "b"], "bob": ["b", "c"], "cid": ["c", "d"]}
        >>> model = ImplicitFactors(n_factors=2, random_state=0).fit(history)
        >>> tracks, scores = model.recommend("ann", n=5)
        >>> sorted(tracks.tolist())
        ['c', 'd']
        """
        check_is_fitted(self)
        row = self._rows(user, self._user_index, "user")[0]
        scores = self.item_factors_ @ self.user_factors_[row]
        candidates = np.arange(len(scores))
        if exclude_seen:
            seen = self.user_items_.indices[
                self.user_items_.indptr[row] : self.user_items_.indptr[row + 1]
            ]
            candidates = np.setdiff1d(candidates, seen, assume_unique=True)
        order = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
        return self.track_ids_[order], scores[order]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        return tags


def _as_id_array(values):
    """1-D array of ids (object dtype when numpy would make it 2-D or mixed)."""
    arr = np.asarray(values)
    if arr.ndim != 1 or len({type(v) for v in values}) > 1:
        arr = np.empty(len(values), dtype=object)
        arr[:] = list(values)
    return arr


def _index_ids(values):
    """Unique ids (sorted when they can be, else in order of appearance) and codes."""
    try:
        uniques = sorted(set(values))
    except TypeError:  # ids of several types: keep the order of appearance
        uniques = list(dict.fromkeys(values))
    index = {v: j for j, v in enumerate(uniques)}
    codes = np.fromiter((index[v] for v in values), dtype=np.intp, count=len(values))
    return _as_id_array(uniques), codes


def _py(value):
    """A numpy scalar as the Python value it holds (for readable error messages)."""
    return value.item() if isinstance(value, np.generic) else value
