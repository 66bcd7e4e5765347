"""Cold-start evaluation: recommending tracks that nobody has played yet.

Collaborative filtering learns a track's latent factors from its plays, so a new
track has none. Following van den Oord, Dieleman and Schrauwen (NIPS 2013), a
model predicts the factors of held-out tracks from their audio; every user then
ranks the held-out tracks by ``user_factors @ predicted_factors.T`` and the
ranking is scored against the user's actual plays of those tracks.

:func:`cold_start_split` holds whole tracks out (none of their plays is seen in
training) and drops the users and tracks left without a training play;
:func:`evaluate_cold_start` computes the mean average precision at
``k`` (mAP@k) and the mean per-user area under the ROC curve (AUC).
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from .utils._sklearn_compat import Interval, validate_params

__all__ = ["cold_start_split", "evaluate_cold_start"]


@validate_params(
    {
        "plays": ["array-like", "sparse matrix"],
        "test_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def cold_start_split(plays, *, test_size=0.2, random_state=None):
    """Split the tracks of a play matrix into training and held-out (cold) tracks.

    Whole columns are held out: none of the plays of a held-out track is in the
    training matrix, so a model fitted on it knows nothing of those tracks
    except what it can infer from their content.

    Users and training tracks without a play in the training matrix are dropped
    (see Notes), so that ``train_plays`` can be passed to
    :class:`~sklearn_music.ImplicitFactors` as it is, and the rows of
    ``test_plays`` are the users of its ``user_factors_``.

    Parameters
    ----------
    plays : {array-like, sparse matrix} of shape (n_users, n_tracks)
        Play counts, one row per user and one column per track.

    test_size : float or int, default=0.2
        Fraction (between 0 and 1) or number of tracks to hold out.

    random_state : int, RandomState instance or None, default=None
        Seed of the random choice of the held-out tracks.

    Returns
    -------
    train_plays : scipy.sparse.csr_matrix of shape (n_kept_users, n_train_tracks)
        The plays of the kept users on the training tracks; no row or column is
        empty.

    test_plays : scipy.sparse.csr_matrix of shape (n_kept_users, n_test_tracks)
        The plays of the kept users on the held-out tracks.

    train_tracks : ndarray of shape (n_train_tracks,)
        Column indices (into ``plays``) of the training tracks, increasing.

    test_tracks : ndarray of shape (n_test_tracks,)
        Column indices of the held-out tracks, increasing.

    users : ndarray of shape (n_kept_users,)
        Row indices (into ``plays``) of the kept users, increasing: those with at
        least one play of a training track. ``plays[users]`` is, for example, what
        a factorisation of all plays (the upper bound of the evaluation) is fitted
        on.

    Notes
    -----
    What is dropped, and why dropped rather than masked: a factor model learns
    a user's factors from the user's plays and a track's from its plays, so
    neither exists without them (:class:`~sklearn_music.ImplicitFactors` refuses
    empty rows and columns), and :func:`evaluate_cold_start` needs one row of
    ``test_plays`` per row of user factors. Returning the matrices already cut,
    with the indices of what was kept, lets every caller use them directly.

    - A user whose plays all fall on held-out tracks (no training play) is left
      out of both matrices; that user's plays of the held-out tracks are not
      evaluated.
    - A training track that nobody played is left out of ``train_tracks``, so
      ``train_tracks`` and ``test_tracks`` together may miss some columns of
      ``plays``. The held-out tracks are kept as drawn, played or not: a column of
      ``test_plays`` may be empty (the track then counts as not played for every
      user).

    Which tracks are held out depends only on the number of tracks, ``test_size``
    and ``random_state``, not on the plays.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.coldstart import cold_start_split
    >>> plays = np.arange(12).reshape(3, 4)
    >>> train, test, train_tracks, test_tracks, users = cold_start_split(
    ...     plays, test_size=1, random_state=0)
    >>> train.shape, test.shape
    ((3, 3), (3, 1))
    >>> sorted(np.concatenate([train_tracks, test_tracks]).tolist())
    [0, 1, 2, 3]
    >>> users
    array([0, 1, 2])
    """
    plays = sp.csr_matrix(check_array(plays, accept_sparse="csr", dtype=None), copy=True)
    plays.eliminate_zeros()  # a stored zero is no play
    n_tracks = plays.shape[1]
    n_test = (
        int(round(test_size * n_tracks))
        if isinstance(test_size, Real) and not isinstance(test_size, Integral)
        else int(test_size)
    )
    if not 1 <= n_test < n_tracks:
        raise ValueError(
            f"test_size={test_size!r} holds out {n_test} of {n_tracks} tracks; "
            "at least one track must be held out and one kept for training"
        )
    rng = check_random_state(random_state)
    test_tracks = np.sort(rng.choice(n_tracks, size=n_test, replace=False))
    train_tracks = np.setdiff1d(np.arange(n_tracks), test_tracks)
    # users and tracks without a training play have no factors: drop them (see Notes)
    train_plays = plays[:, train_tracks]
    played = train_plays.getnnz(axis=0) > 0
    train_tracks, train_plays = train_tracks[played], train_plays[:, played]
    users = np.flatnonzero(train_plays.getnnz(axis=1) > 0)
    if users.size == 0:
        raise ValueError(
            f"no user played any of the {n_tracks - n_test} training tracks "
            f"(test_size={test_size!r}): nothing to fit factors on"
        )
    return train_plays[users], plays[users][:, test_tracks], train_tracks, test_tracks, users


@validate_params(
    {
        "user_factors": ["array-like"],
        "item_factors": ["array-like"],
        "test_plays": ["array-like", "sparse matrix"],
        "k": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def evaluate_cold_start(user_factors, item_factors, test_plays, *, k=500):
    """Score the ranking of held-out tracks per user: mAP@k and mean AUC.

    Every user scores the held-out tracks with ``user_factors @ item_factors.T``;
    the tracks the user played (``test_plays > 0``) are the relevant ones.

    - average precision at ``k`` of a user (the Million Song Dataset challenge's
      definition used by van den Oord et al.):
      ``AP@k = sum_{i<=k} precision@i * rel_i / min(k, n_relevant)``, with the
      ranking by decreasing score (ties in column order);
    - AUC of a user: the probability that a played track scores higher than an
      unplayed one (ties count one half).

    Means are over the users with at least one played held-out track (for AUC,
    also at least one unplayed one).

    Parameters
    ----------
    user_factors : array-like of shape (n_users, n_factors)
        Factors of the users (one row per row of ``test_plays``).

    item_factors : array-like of shape (n_test_tracks, n_factors)
        Factors of the held-out tracks: true, predicted from audio, or random.

    test_plays : {array-like, sparse matrix} of shape (n_users, n_test_tracks)
        Play counts of the held-out tracks.

    k : int, default=500
        Cut-off of the average precision.

    Returns
    -------
    scores : dict
        ``"map_at_k"`` (float), ``"auc"`` (float), ``"k"`` (int),
        ``"n_users"`` (users in the mAP mean) and ``"n_users_auc"`` (users in the
        AUC mean).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.coldstart import evaluate_cold_start
    >>> users = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> tracks = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    >>> plays = np.array([[3, 0, 0], [0, 0, 1]])
    >>> result = evaluate_cold_start(users, tracks, plays, k=2)
    >>> result["map_at_k"], result["auc"]
    (0.75, 0.75)
    """
    users = check_array(user_factors, dtype=np.float64)
    items = check_array(item_factors, dtype=np.float64)
    plays = check_array(test_plays, accept_sparse="csr", dtype=np.float64)
    if users.shape[1] != items.shape[1]:
        raise ValueError(
            f"user_factors have {users.shape[1]} factors but item_factors {items.shape[1]}"
        )
    if plays.shape != (users.shape[0], items.shape[0]):
        raise ValueError(
            f"test_plays has shape {plays.shape}; expected (n_users, n_test_tracks)"
            f" = ({users.shape[0]}, {items.shape[0]})"
        )
    relevant = (plays.toarray() if sp.issparse(plays) else plays) > 0
    if (plays.data if sp.issparse(plays) else plays).min(initial=0) < 0:
        raise ValueError("test_plays must be non-negative play counts")
    scores = users @ items.T
    n_pos = relevant.sum(axis=1)
    n_neg = relevant.shape[1] - n_pos
    has_pos = n_pos > 0
    if not has_pos.any():
        raise ValueError("no user played any of the held-out tracks: nothing to rank")

    # average precision at k
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rel = np.take_along_axis(relevant, order, axis=1)
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)
    ap = (precision * rel).sum(axis=1)[has_pos] / np.minimum(n_pos[has_pos], k)

    # AUC from average ranks (Mann-Whitney U)
    both = has_pos & (n_neg > 0)
    ranks = rankdata(scores[both], axis=1)
    pos_rank_sum = (ranks * relevant[both]).sum(axis=1)
    npos, nneg = n_pos[both], n_neg[both]
    auc = (pos_rank_sum - npos * (npos + 1) / 2) / (npos * nneg)
    return {
        "map_at_k": float(ap.mean()),
        "auc": float(auc.mean()) if auc.size else float("nan"),
        "k": int(k),
        "n_users": int(has_pos.sum()),
        "n_users_auc": int(both.sum()),
    }
