"""Bulk reads of a store: every track's id and vector, in batches or all at once.

The functions take the store as their first argument and are bound as methods of
:class:`~sklearn_music.store.SimilarityStore` (``iter_vectors = _bulk.iter_vectors``),
which keeps ``_store.py`` to the lookups and the writes.
"""

import numpy as np

from . import _read as rd
from ._params import BATCH_SIZE, check_query_params

_ITER = {"batch_size": BATCH_SIZE}


def scan(store, batch_size):
    """(keys, float32 vectors, worst) of every stored track, ``batch_size`` rows at a time."""
    return rd.scan(store._conn, store._info, batch_size)


def _ids(store, keys):
    """Track ids of TEXT keys, as an array: int64 for an int store, else object."""
    if store.id_type is int:
        return np.array([int(k) for k in keys], dtype=np.int64)
    out = np.empty(len(keys), dtype=object)
    out[:] = keys
    return out


def iter_vectors(self, *, batch_size=65536):
    """Iterate over the stored tracks in batches of ids and vectors.

    The tracks come in the order they were written (as :meth:`__iter__`), read
    ``batch_size`` rows at a time, so memory stays ``O(batch_size * dim)``
    whatever the size of the store.

    Parameters
    ----------
    batch_size : int, default=65536
        Tracks per batch (the last batch may be shorter).

    Returns
    -------
    batches : iterator of (track_ids, vectors)
        ``track_ids``, ndarray of shape (n_batch,): the batch's ids, ``int64``
        for a store of int ids, else ``object`` (str); ``vectors``, ndarray of
        shape (n_batch, dim), dtype float32: their stored vectors, row ``i`` for
        ``track_ids[i]``. The arguments are checked when the method is called.

    See Also
    --------
    to_arrays : All the ids and vectors at once.

    Examples
    --------
    >>> from sklearn_music.store import SimilarityStore
    >>> path = getfixture("tmp_path") / "tracks.db"
    >>> SimilarityStore.build(path, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], ["a", "b", "c"])
    >>> for ids, vectors in SimilarityStore(path).iter_vectors(batch_size=2):
    ...     print(ids.tolist(), vectors.shape)
    ['a', 'b'] (2, 2)
    ['c'] (1, 2)
    """
    check_query_params(_ITER, "SimilarityStore.iter_vectors", batch_size=batch_size)
    self._check_open()
    return ((_ids(self, keys), X) for keys, X, _ in scan(self, int(batch_size)))


def to_arrays(self, *, batch_size=65536):
    """Return every stored track id and vector as two arrays.

    Parameters
    ----------
    batch_size : int, default=65536
        Rows read at a time (the result holds them all).

    Returns
    -------
    track_ids : ndarray of shape (n_tracks,)
        The ids in the order the tracks were written: ``int64`` for a store of
        int ids, else ``object`` (str).
    vectors : ndarray of shape (n_tracks, dim), dtype float32
        The stored vectors, row ``i`` for ``track_ids[i]``.

    See Also
    --------
    iter_vectors : The same in batches, for stores larger than memory.

    Examples
    --------
    >>> from sklearn_music.store import SimilarityStore
    >>> path = getfixture("tmp_path") / "tracks.db"
    >>> SimilarityStore.build(path, [[1.0, 2.0], [3.0, 4.0]], [7, 9])
    >>> ids, vectors = SimilarityStore(path).to_arrays()
    >>> ids
    array([7, 9])
    >>> vectors
    array([[1., 2.],
           [3., 4.]], dtype=float32)
    """
    ids, vectors = [], []
    for batch_ids, X in iter_vectors(self, batch_size=batch_size):
        ids.append(batch_ids)
        vectors.append(X)
    if not ids:  # an empty store
        return _ids(self, []), np.empty((0, self.dim), dtype=np.float32)
    return np.concatenate(ids), np.concatenate(vectors)


# --------------------------------------------------------------------------- #
# many lookups at once (recommendations for many users: sklearn_music.batch)
# --------------------------------------------------------------------------- #
_IN_CHUNK = 900  # keys per ``IN (...)`` query, under SQLite's oldest variable limit


def _rows_in(store, table, columns, keys):
    """Rows of ``table`` whose ``track_id`` is one of ``keys``, ``_IN_CHUNK`` keys a query."""
    for lo in range(0, len(keys), _IN_CHUNK):
        part = keys[lo : lo + _IN_CHUNK]
        marks = ",".join("?" * len(part))
        yield from store._conn.execute(
            f"SELECT {columns} FROM {table} WHERE track_id IN ({marks})", part
        )


def lists_of(store, keys):
    """The stored neighbour lists of many TEXT keys, read with few queries.

    Parameters
    ----------
    store : SimilarityStore
        An open store.
    keys : list of str
        TEXT keys (``_format.id_to_key``); keys without a list are left out,
        as ``key in store`` is False for them.

    Returns
    -------
    lists : dict
        key -> neighbour keys, best first (every stored neighbour, checked as
        :meth:`~sklearn_music.store.SimilarityStore.similar` checks them).
    """
    info = store._info
    rows = _rows_in(store, "neighbors", f"track_id, {info.list_columns}", keys)
    return {row[0]: rd.list_row(info, row[0], row[1:])[1] for row in rows}


def vectors_of(store, keys):
    """The stored vectors of many TEXT keys, in the order of ``keys``.

    Parameters
    ----------
    store : SimilarityStore
        An open store.
    keys : list of str
        Distinct TEXT keys of stored tracks.

    Returns
    -------
    vectors : ndarray of shape (len(keys), dim), dtype float32
        Row ``i`` is the vector of ``keys[i]``, checked as
        :meth:`~sklearn_music.store.SimilarityStore.vector` checks it.

    Raises
    ------
    StoreError
        If a key has a neighbour list but no vector (a damaged store).
    KeyError
        If a key is not stored at all.
    """
    where = {key: i for i, key in enumerate(keys)}
    X = np.empty((len(keys), store.dim), dtype=np.float32)
    found = np.zeros(len(keys), dtype=bool)
    for row in _rows_in(store, "tracks", store._info.track_columns, keys):
        key, vector, _ = rd.track_row(store._info, row)
        i = where.get(key)
        if i is None:
            raise rd.StoreError(store.path, f"the index returned track {key!r}, not asked for")
        X[i] = vector
        found[i] = True
    if not found.all():
        key = keys[int(np.flatnonzero(~found)[0])]
        raise store._missing(store._to_id(key), key, "tracks", "neighbors")
    return X


def iter_lists(store, chunk=10000):
    """Every stored neighbour list, checked: (key, neighbour keys), in key order."""
    info = store._info
    cur = store._conn.execute(f"SELECT track_id, {info.list_columns} FROM neighbors")
    while rows := cur.fetchmany(chunk):
        for row in rows:
            yield row[0], rd.list_row(info, row[0], row[1:])[1]
