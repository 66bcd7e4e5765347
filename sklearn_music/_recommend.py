"""Recommendations of :class:`~sklearn_music.NearestTracks`: histories in, ranked tracks out."""

import numpy as np
from sklearn.preprocessing import normalize


def check_histories(history):
    """The list of listeners' histories in ``history`` (one history or several).

    A sequence whose items are all lists, tuples or arrays is several listeners;
    a string, a non-iterable or a mix of ids and sequences is refused with a
    TypeError saying what to pass.
    """
    if isinstance(history, (str, bytes)):
        raise TypeError(
            f"history must be a sequence of track ids, got the string {history!r}; "
            f"pass [{history!r}] for a history of one track"
        )
    if not hasattr(history, "__iter__"):
        raise TypeError(
            f"history must be a sequence of track ids, got {type(history).__name__} {history!r}"
        )
    history = list(history)
    nested = [isinstance(h, (list, tuple, np.ndarray)) for h in history]
    several = len(history) > 0 and all(nested)
    if any(nested) and not several:
        i = nested.index(False)
        raise TypeError(
            f"history[{i}]={history[i]!r} is a single id but history[{nested.index(True)}]"
            " is a sequence: pass one history (a sequence of ids) or a list of "
            "histories (each a sequence of ids)"
        )
    return history if several else [history]


def recommend_rows(est, rows, n, aggregate, exclude_history):
    """The ``n`` best ``(track id, score)`` of one listener whose history is ``rows``.

    The search is the fitted :class:`~sklearn_music.NearestTracks` ``est``'s own
    (exact or approximate), asked for enough neighbours to fill ``n`` after the
    history is left out.
    """
    heard = set(rows)
    n_avail = est.n_samples_fit_ - (len(heard) if exclude_history else 0)
    n_take = min(n, n_avail)
    if n_take <= 0:
        return []
    V = est.vectors_[rows]
    if aggregate == "mean":
        queries = V.mean(axis=0, keepdims=True)
        if est.metric == "cosine" and not np.any(queries):
            raise ValueError(
                "the history's unit vectors sum to zero: no direction to recommend "
                "(use aggregate='max')"
            )
    else:
        queries = V
    if est.metric == "cosine":  # the searches expect unit queries
        queries = normalize(queries)
    # candidates: enough neighbours of each query to fill n after exclusion
    k = min(n_take + (len(heard) if exclude_history else 0), est.n_samples_fit_)
    dist, ind = est._search(queries, k, False)
    best = {}
    for d_row, i_row in zip(dist, ind):
        for d, i in zip(d_row.tolist(), i_row.tolist()):
            if i < 0 or (exclude_history and i in heard):
                continue
            if i not in best or d < best[i]:
                best[i] = d
    ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))[:n_take]
    ids = est.track_ids_.tolist()
    if est.metric == "cosine":
        return [(ids[i], 1.0 - d) for i, d in ranked]
    return [(ids[i], -d) for i, d in ranked]
