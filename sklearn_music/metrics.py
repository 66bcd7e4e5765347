"""Retrieval metrics for nearest-track lists, scorers, and a linear probe.

The ranking metrics take the labels of the queries and the label matrix of
their retrieved neighbours, nearest first::

    y_query      shape (n_queries,)               e.g. the genre of each query track
    y_neighbors  shape (n_queries, n_retrieved)   the genre of each retrieved track

A retrieved track is *relevant* when its label equals the query's label.
Optional ``groups_query`` / ``groups_neighbors`` (same shapes) name a group for
each track (the track itself, its artist, its album): a retrieved track of the
query's own group is removed from the list *before* it is cut at ``k``, so
that "more tracks by the same artist" does not count as finding similar music.
"""

from numbers import Integral, Real

import numpy as np

from ._assessor import assessor_report
from .utils._docstring import Substitution, _shared_docs
from .utils._sklearn_compat import Interval, StrOptions, validate_params

__all__ = [
    "assessor_report",
    "average_precision",
    "linear_probe_score",
    "make_retrieval_scorer",
    "mean_average_precision",
    "precision_at_k",
    "recall_at_k",
    "retrieval_report",
]


# --------------------------------------------------------------------------- #
# input checks
# --------------------------------------------------------------------------- #
_K = Interval(Integral, 1, None, closed="left")
_GROUP_PARAMS = {
    "groups_query": ["array-like", None],
    "groups_neighbors": ["array-like", None],
}
_RANKING_PARAMS = {"y_query": ["array-like"], "y_neighbors": ["array-like"], **_GROUP_PARAMS}


def _relevance(y_query, y_neighbors, groups_query, groups_neighbors):
    """Relevance matrix and validity mask (False where excluded by group)."""
    y_query = np.asarray(y_query)
    y_neighbors = np.asarray(y_neighbors)
    if y_query.ndim != 1:
        raise ValueError(f"y_query must be 1-D (one label per query), got shape {y_query.shape}")
    if y_neighbors.ndim != 2 or y_neighbors.shape[0] != y_query.shape[0]:
        raise ValueError(
            f"y_neighbors must have shape (n_queries, n_retrieved) = "
            f"({y_query.shape[0]}, n_retrieved), got {y_neighbors.shape}"
        )
    relevant = y_neighbors == y_query[:, None]
    valid = np.ones(relevant.shape, dtype=bool)
    if (groups_query is None) != (groups_neighbors is None):
        raise ValueError("groups_query and groups_neighbors must be given together (or neither)")
    if groups_query is not None:
        groups_query = np.asarray(groups_query)
        groups_neighbors = np.asarray(groups_neighbors)
        if groups_query.shape != y_query.shape:
            raise ValueError(
                f"groups_query has shape {groups_query.shape}; expected "
                f"{y_query.shape} like y_query"
            )
        if groups_neighbors.shape != y_neighbors.shape:
            raise ValueError(
                f"groups_neighbors has shape {groups_neighbors.shape}; expected "
                f"{y_neighbors.shape} like y_neighbors"
            )
        valid = groups_neighbors != groups_query[:, None]
    return relevant, valid


def _compact(relevant, valid):
    """Relevance with excluded entries removed (rows padded with False at the end).

    Returns the compacted relevance and the number of kept entries per row.
    """
    n_kept = valid.sum(axis=1)
    # stable sort puts kept entries first, in their original order
    order = np.argsort(~valid, axis=1, kind="stable")
    rel = np.take_along_axis(relevant & valid, order, axis=1)
    return rel, n_kept


def _docs(*names):
    """Fill the shared parameter texts ``names`` into a docstring."""
    return Substitution(**{name: _shared_docs[name] for name in names})


_GROUP_DOCS = ("y_query", "y_neighbors", "groups_query", "groups_neighbors")


def _reduce(values, average):
    return float(np.mean(values)) if average else values


# --------------------------------------------------------------------------- #
# metrics
# --------------------------------------------------------------------------- #
@validate_params(
    {**_RANKING_PARAMS, "k": [_K, None], "average": ["boolean"]},
    prefer_skip_nested_validation=True,
)
@_docs(*_GROUP_DOCS)
def precision_at_k(
    y_query, y_neighbors, *, k=10, groups_query=None, groups_neighbors=None, average=True
):
    """Fraction of the first ``k`` retrieved tracks that share the query's label.

    Parameters
    ----------
    {y_query}
    {y_neighbors}
    k : int or None, default=10
        Cut-off; ``None`` means the whole retrieved list. A list shorter than
        ``k`` (after group exclusion) counts as missing relevant tracks: the
        denominator stays ``k``.
    {groups_query}
    {groups_neighbors}
    average : bool, default=True
        Return the mean over queries; ``False`` returns one value per query.

    Returns
    -------
    precision : float or ndarray of shape (n_queries,)
        Precision@k in [0, 1].

    Examples
    --------
    >>> from sklearn_music.metrics import precision_at_k
    >>> precision_at_k(["rock", "jazz"], [["rock", "jazz"], ["rock", "rock"]], k=2)
    0.25
    >>> precision_at_k(["rock"], [["rock", "jazz", "rock"]], k=2,
    ...                groups_query=["a"], groups_neighbors=[["a", "b", "c"]])
    0.5
    """
    relevant, valid = _relevance(y_query, y_neighbors, groups_query, groups_neighbors)
    rel, _ = _compact(relevant, valid)
    kk = rel.shape[1] if k is None else k
    values = rel[:, :kk].sum(axis=1) / max(kk, 1)
    return _reduce(values, average)


@validate_params(
    {
        **_RANKING_PARAMS,
        "k": [_K, None],
        "n_relevant": ["array-like", None],
        "average": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
@_docs(*_GROUP_DOCS, "n_relevant")
def recall_at_k(
    y_query,
    y_neighbors,
    *,
    k=10,
    n_relevant=None,
    groups_query=None,
    groups_neighbors=None,
    average=True,
):
    """Fraction of the query's relevant tracks found among the first ``k``.

    Parameters
    ----------
    {y_query}
    {y_neighbors}
    k : int or None, default=10
        Cut-off; ``None`` means the whole retrieved list.
    {n_relevant}
    {groups_query}
    {groups_neighbors}
    average : bool, default=True
        Return the mean over queries; ``False`` returns one value per query.

    Returns
    -------
    recall : float or ndarray of shape (n_queries,)
        Recall@k in [0, 1].

    Examples
    --------
    >>> from sklearn_music.metrics import recall_at_k
    >>> recall_at_k([0], [[0, 1, 0, 0]], k=2)
    0.333...
    >>> recall_at_k([0], [[0, 1]], k=2, n_relevant=[4])
    0.25
    """
    relevant, valid = _relevance(y_query, y_neighbors, groups_query, groups_neighbors)
    rel, _ = _compact(relevant, valid)
    total = _n_relevant(n_relevant, rel)
    kk = rel.shape[1] if k is None else k
    found = rel[:, :kk].sum(axis=1)
    values = np.divide(found, total, out=np.zeros(len(found)), where=total > 0)
    return _reduce(values, average)


def _n_relevant(n_relevant, rel):
    if n_relevant is None:
        return rel.sum(axis=1).astype(float)
    total = np.asarray(n_relevant, dtype=float)
    if total.shape != (rel.shape[0],):
        raise ValueError(f"n_relevant has shape {total.shape}; expected ({rel.shape[0]},)")
    found = rel.sum(axis=1)
    bad = np.flatnonzero(total < found)
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"n_relevant[{i}]={total[i]:g} is smaller than the {found[i]} relevant "
            f"tracks retrieved for query {i}"
        )
    return total


@validate_params(
    {**_RANKING_PARAMS, "k": [_K, None], "n_relevant": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
@_docs(*_GROUP_DOCS, "n_relevant")
def average_precision(
    y_query, y_neighbors, *, k=None, n_relevant=None, groups_query=None, groups_neighbors=None
):
    """Average precision of each query's retrieved list.

    ``AP = sum_i P@i * rel_i / R`` over the first ``k`` retrieved tracks, where
    ``rel_i`` is 1 when the i-th track is relevant and ``R`` is ``n_relevant``
    (default: the relevant tracks in the retrieved list, so that AP of a full
    ranking is the usual one), capped at ``k``. A query without any relevant
    track scores 0.

    Parameters
    ----------
    {y_query}
    {y_neighbors}
    k : int or None, default=None
        Cut-off; ``None`` means the whole retrieved list.
    {n_relevant}
    {groups_query}
    {groups_neighbors}

    Returns
    -------
    ap : ndarray of shape (n_queries,)
        Average precision of each query, in [0, 1].

    See Also
    --------
    mean_average_precision : Its mean over the queries.

    Examples
    --------
    >>> from sklearn_music.metrics import average_precision
    >>> average_precision([1, 1], [[1, 0, 1], [0, 0, 0]])
    array([0.83333333, 0.        ])
    """
    relevant, valid = _relevance(y_query, y_neighbors, groups_query, groups_neighbors)
    rel, _ = _compact(relevant, valid)
    total = _n_relevant(n_relevant, rel)
    kk = rel.shape[1] if k is None else min(k, rel.shape[1])
    rel = rel[:, :kk]
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, kk + 1)
    precision_sum = (hits / ranks * rel).sum(axis=1)
    denom = np.minimum(total, kk if k is not None else np.inf)
    return np.divide(precision_sum, denom, out=np.zeros(len(denom)), where=denom > 0)


@validate_params(
    {**_RANKING_PARAMS, "k": [_K, None], "n_relevant": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
@_docs(*_GROUP_DOCS, "n_relevant")
def mean_average_precision(
    y_query, y_neighbors, *, k=None, n_relevant=None, groups_query=None, groups_neighbors=None
):
    """Mean over the queries of :func:`average_precision`.

    Parameters
    ----------
    {y_query}
    {y_neighbors}
    k : int or None, default=None
        Cut-off; ``None`` means the whole retrieved list.
    {n_relevant}
    {groups_query}
    {groups_neighbors}

    Returns
    -------
    map : float
        Mean average precision in [0, 1].

    Examples
    --------
    >>> from sklearn_music.metrics import mean_average_precision
    >>> round(mean_average_precision([1, 1], [[1, 0, 1], [0, 1, 0]]), 4)
    0.6667
    """
    return float(
        np.mean(
            average_precision(
                y_query,
                y_neighbors,
                k=k,
                n_relevant=n_relevant,
                groups_query=groups_query,
                groups_neighbors=groups_neighbors,
            )
        )
    )


# --------------------------------------------------------------------------- #
# leave-one-out retrieval within a set
# --------------------------------------------------------------------------- #
def _loo_rankings(X, metric, chunk_size=1024):
    """Yield (rows, ranking) for row chunks: every other row, nearest first."""
    from sklearn.metrics import pairwise_distances

    n = X.shape[0]
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        D = pairwise_distances(X[start:stop], X, metric=metric)
        rows = np.arange(start, stop)
        D[rows - start, rows] = np.inf
        order = np.argsort(D, axis=1, kind="stable")[:, : n - 1]
        yield rows, order


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "groups": ["array-like", None],
        "k": [_K, "array-like"],
        "metric": [str, callable],
    },
    prefer_skip_nested_validation=True,
)
def retrieval_report(X, y, *, groups=None, k=(1, 10), metric="cosine"):
    """Leave-one-out retrieval quality of a set of track vectors (exact search).

    Every track queries all the others (itself excluded, and with ``groups``
    every track of its own group excluded too) ranked by ``metric``; a
    retrieved track is relevant when it has the query's label.

    Parameters
    ----------
    X : array-like of shape (n_tracks, n_features)
        Track vectors.
    y : array-like of shape (n_tracks,)
        Track labels (e.g. genre).
    groups : array-like of shape (n_tracks,), default=None
        Track groups (e.g. artist, or the source track of excerpts): tracks of
        the query's group are not retrieved.
    k : int or tuple of int, default=(1, 10)
        Cut-offs of the precision@k entries.
    metric : str, default="cosine"
        A metric of :func:`sklearn.metrics.pairwise_distances`.

    Returns
    -------
    report : dict
        ``{"P@1": ..., "P@10": ..., "mAP": ...}`` (one ``"P@k"`` per cut-off,
        then the mean average precision over the full ranking), floats.

    Examples
    --------
    >>> from sklearn_music.metrics import retrieval_report
    >>> X = [[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.2]]
    >>> retrieval_report(X, ["a", "a", "b", "b"], k=(1, 2))
    {'P@1': 1.0, 'P@2': 0.5, 'mAP': 1.0}
    """
    from sklearn.utils.validation import check_array, check_consistent_length

    X = check_array(X, dtype=[np.float64, np.float32])
    y = np.asarray(y)
    check_consistent_length(X, y)
    ks = (k,) if isinstance(k, Integral) else tuple(k)
    for kk in ks:
        if not isinstance(kk, Integral) or isinstance(kk, bool) or kk < 1:
            raise ValueError(f"k={k!r} must hold positive integers; {kk!r} is not one")
    if X.shape[0] < 2:
        raise ValueError(f"retrieval_report needs at least 2 tracks, got {X.shape[0]}")
    if groups is not None:
        groups = np.asarray(groups)
        check_consistent_length(X, groups)
    sums = {kk: 0.0 for kk in ks}
    ap_sum = 0.0
    for rows, order in _loo_rankings(X, metric):
        gq = None if groups is None else groups[rows]
        gn = None if groups is None else groups[order]
        for kk in ks:
            sums[kk] += precision_at_k(
                y[rows], y[order], k=kk, groups_query=gq, groups_neighbors=gn, average=False
            ).sum()
        ap_sum += average_precision(y[rows], y[order], groups_query=gq, groups_neighbors=gn).sum()
    n = X.shape[0]
    report = {f"P@{kk}": float(sums[kk] / n) for kk in ks}
    report["mAP"] = float(ap_sum / n)
    return report


# --------------------------------------------------------------------------- #
# scorers
# --------------------------------------------------------------------------- #
_SCORES = ("precision", "recall", "average_precision")


class _RetrievalScorer:
    """Callable ``scorer(estimator, X, y)``; see :func:`make_retrieval_scorer`."""

    def __init__(self, score, k, metric):
        self.score = score
        self.k = k
        self.metric = metric

    def __repr__(self):
        return f"make_retrieval_scorer(score={self.score!r}, k={self.k}, metric={self.metric!r})"

    def _value(self, y_query, y_neighbors, n_relevant=None):
        if self.score == "precision":
            return precision_at_k(y_query, y_neighbors, k=self.k)
        if self.score == "recall":
            return recall_at_k(y_query, y_neighbors, k=self.k, n_relevant=n_relevant)
        return mean_average_precision(y_query, y_neighbors, k=self.k, n_relevant=n_relevant)

    def __call__(self, estimator, X, y):
        y = np.asarray(y)
        is_pipeline = hasattr(estimator, "steps")
        final = estimator[-1] if is_pipeline else estimator
        if hasattr(final, "kneighbors"):  # a fitted index, e.g. NearestTracks
            E = estimator[:-1].transform(X) if is_pipeline else X
            return self._search_score(final, E, y)
        return self._loo_score(np.asarray(estimator.transform(X)), y)

    def _search_score(self, index, E, y):
        """``E`` queries the index's fitted tracks, whose labels are ``index.y_``."""
        fitted = getattr(index, "y_", None)
        if fitted is None:
            raise AttributeError(
                f"the retrieval scorer needs the labels of the fitted tracks: this "
                f"{type(index).__name__} has no y_ (fit it with y)"
            )
        fitted = np.asarray(fitted)
        k = min(self.k, fitted.shape[0])
        ind = index.kneighbors(E, n_neighbors=k, return_distance=False)
        labels, counts = np.unique(fitted, return_counts=True)
        lookup = dict(zip(labels.tolist(), counts.tolist()))
        n_relevant = np.array([lookup.get(v, 0) for v in y.tolist()])
        return self._value(y, fitted[ind], n_relevant)

    def _loo_score(self, E, y):
        """Each row of ``E`` queries the others (exact, leave-one-out)."""
        y_neighbors = np.vstack(
            [y[order][:, : self.k] for _, order in _loo_rankings(E, self.metric)]
        )
        labels, counts = np.unique(y, return_counts=True)
        lookup = dict(zip(labels.tolist(), (counts - 1).tolist()))
        n_relevant = np.array([lookup[v] for v in y.tolist()])
        return self._value(y, y_neighbors, n_relevant)


@validate_params(
    {"score": [StrOptions(set(_SCORES))], "k": [_K], "metric": [str, callable]},
    prefer_skip_nested_validation=True,
)
def make_retrieval_scorer(score="precision", *, k=10, metric="cosine"):
    """Make a scorer of retrieval quality for ``scoring=`` in model selection.

    The scorer ``scorer(estimator, X, y)`` works on two kinds of estimators:

    - a :class:`~sklearn_music.NearestTracks`, or a
      :class:`~sklearn.pipeline.Pipeline` ending in one: ``X`` (transformed by
      the pipeline's earlier steps) queries the fitted tracks; relevant fitted
      tracks are those whose label (``y_``) equals the query's label in ``y``;
    - a transformer (e.g. a pipeline ending in a
      :class:`~sklearn_music.ConvEmbedder`): the transformed ``X`` is searched
      leave-one-out (each track against the others, exact, ``metric``).

    The scorer excludes no groups. With a pipeline ending in
    :class:`~sklearn_music.NearestTracks`, split with
    :class:`~sklearn.model_selection.GroupKFold` on the artist (or album) so
    that no test track has a same-artist track among the fitted ones.

    Parameters
    ----------
    score : {"precision", "recall", "average_precision"}, default="precision"
        :func:`precision_at_k`, :func:`recall_at_k` (relevant tracks counted in
        the searched collection) or :func:`mean_average_precision` (at ``k``).
    k : int, default=10
        Cut-off.
    metric : str, default="cosine"
        Distance for the leave-one-out search of a transformer's output.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn_music.metrics import make_retrieval_scorer
    >>> X = np.array([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.2]])
    >>> scorer = make_retrieval_scorer("precision", k=1)
    >>> scorer(PCA(n_components=2).fit(X), X, ["a", "a", "b", "b"])
    1.0
    """
    return _RetrievalScorer(score, int(k), metric)


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "cv": ["cv_object"],
        "groups": ["array-like", None],
        "C": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def linear_probe_score(X, y, *, cv=5, groups=None, C=1.0, random_state=None):
    """Cross-validated accuracy of a linear classifier on the vectors.

    A :class:`~sklearn.linear_model.LogisticRegression` on standardised
    vectors, evaluated with :func:`~sklearn.model_selection.cross_val_score`:
    how well the vectors expose a label they were not necessarily trained on.

    Parameters
    ----------
    X : array-like of shape (n_tracks, n_features)
        Track vectors.
    y : array-like of shape (n_tracks,)
        Labels to predict.
    cv : int or cross-validation generator, default=5
        Splitter; an int means :class:`~sklearn.model_selection.StratifiedKFold`,
        or :class:`~sklearn.model_selection.GroupKFold` when ``groups`` is given.
    groups : array-like of shape (n_tracks,), default=None
        Groups (e.g. artist) kept within one fold.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.
    random_state : int or None, default=None
        Seed of the logistic regression's solver.

    Returns
    -------
    scores : ndarray of shape (n_splits,)
        Accuracy of each fold.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.metrics import linear_probe_score
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20)
    >>> X = rng.normal(size=(40, 3)) + 3 * y[:, None]
    >>> float(linear_probe_score(X, y, cv=4).mean())
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if groups is not None and isinstance(cv, Integral):
        cv = GroupKFold(n_splits=cv)
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=1000, random_state=random_state)
    )
    return cross_val_score(model, X, y, cv=cv, groups=groups)
