"""Input checks shared by layers that must not import each other."""

from numbers import Integral, Real

import numpy as np


def check_nonzero_rows(X, *, what="X"):
    """Raise a ValueError naming the first all-zero row of ``X`` (cosine undefined).

    The one rule of :class:`~sklearn_music.NearestTracks` and
    :class:`~sklearn_music.store.SimilarityStore` for ``metric="cosine"``.
    """
    zero = ~np.any(X != 0, axis=1)
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise ValueError(
            f"{what} row {row} is all zeros; its cosine similarity is undefined "
            f"({int(zero.sum())} such row(s); drop them or use another metric)"
        )


def _kind(value):
    """The kind of an id or label: its type, numpy scalars counted as Python's."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    for kind, types in (("str", str), ("bytes", bytes), ("int", Integral), ("float", Real)):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def check_one_kind(values, *, what, noun):
    """Refuse missing (None, NaN) and mixed-type ids or labels, naming the position.

    numpy turns ``["a", 1]`` into the strings ``["a", "1"]`` (a later lookup of ``1``
    fails) and sorting ``[None, "a"]`` fails with a bare ``TypeError``. Numeric
    arrays, non-sequences and nested items are left to the caller's shape checks.
    """
    if isinstance(values, np.ndarray) and values.dtype != object:
        return
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    types = set(map(type, items))
    if len(types) <= 1 and not (types & {float, np.float64, np.float32, type(None)}):
        return  # one type, none missing: the fast path
    first = None
    for i, value in enumerate(items):
        if value is None or (isinstance(value, Real) and value != value):
            raise ValueError(f"{what}[{i}] is {value!r}: missing {noun}s are not allowed")
        if isinstance(value, (list, tuple, np.ndarray)):
            continue
        if first is None:
            first = (_kind(value), value)
        elif _kind(value) != first[0]:
            raise ValueError(
                f"{what}[{i}]={value!r} is {_kind(value)} but {what}[0]={first[1]!r} is "
                f"{first[0]}: all {noun}s must have one type (e.g. all str or all int)"
            )


def check_track_ids(track_ids, n):
    """The fitted tracks' ids: ``track_ids`` checked, or ``0 .. n - 1``."""
    if track_ids is None:
        return np.arange(n)
    if isinstance(track_ids, (str, bytes)):
        raise TypeError(f"track_ids must be a sequence of ids, got the string {track_ids!r}")
    check_one_kind(track_ids, what="track_ids", noun="id")
    ids = np.asarray(track_ids)
    if ids.dtype.kind == "f" and np.isnan(ids).any():
        i = int(np.flatnonzero(np.isnan(ids))[0]) if ids.ndim == 1 else "..."
        raise ValueError(f"track_ids[{i}] is NaN: every track needs an id")
    if ids.ndim != 1 or ids.shape[0] != n:
        raise ValueError(f"track_ids has shape {ids.shape}; expected ({n},), one id per row of X")
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.shape[0] != n:
        dup = uniq[counts > 1][0]
        raise ValueError(
            f"track_ids must be unique; {dup.tolist()!r} appears {counts[counts > 1][0]} times"
        )
    return ids
