"""The :class:`SimilarityStore` class: open, query, build and update a store."""

import os
from numbers import Integral
from pathlib import Path

import numpy as np

from ..utils._sklearn_compat import Interval, StrOptions, validate_params
from . import _aggregate, _bulk, _write
from . import _format as fmt
from . import _read as rd
from . import _search as search
from ._files import connect_readonly, writer_lock
from ._params import (
    BATCH_SIZE,
    PATH,
    RECOMMEND,
    SIMILAR_TO_VECTOR,
    check_k,
    check_query_params,
)

__all__ = ["SimilarityStore"]


class SimilarityStore:
    """Precomputed similar tracks and track vectors in one SQLite file.

    Open an existing store; create one with :meth:`build` or
    :meth:`from_pipeline`. Lookups by track id are primary-key lookups:
    :meth:`similar` reads one packed row. See :mod:`sklearn_music.store` for
    the file layout and the update protocol (copy-on-write, atomic rename).

    Parameters
    ----------
    path : str or path-like
        The store file.
    mode : {"r", "a"}, default="r"
        ``"r"`` opens the store read-only; ``"a"`` also allows :meth:`add`.

    Attributes
    ----------
    path : pathlib.Path
        The store file.
    dim : int
        Dimension of the stored vectors.
    metric : str
        ``"cosine"`` or ``"euclidean"``.
    n_neighbors : int
        Number of similar tracks stored per track (fewer when the store holds
        fewer than ``n_neighbors + 1`` tracks).
    id_type : type
        :class:`str` or :class:`int`, the type of the track ids.
    created : str
        When the file was written (ISO 8601, UTC).

    Raises
    ------
    StoreError
        If the file is not a similarity store or is damaged: checked when the
        store is opened (schema, format version, meta values against the rows,
        a truncated file) and for every row that a lookup reads.

    See Also
    --------
    sklearn_music.NearestTracks : The index that computes the neighbours.

    Notes
    -----
    Scores are similarities (larger is more similar): ``1 - cosine distance``
    for ``metric="cosine"`` and ``-distance`` for ``metric="euclidean"``.

    A store object reads the file it opened, even after a rebuild replaced it;
    :meth:`refresh` switches to the current file. Use one store object per
    thread (it wraps one :mod:`sqlite3` connection).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.store import SimilarityStore
    >>> vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> path = getfixture("tmp_path") / "tracks.db"
    >>> SimilarityStore.build(path, vectors, ["a", "b", "c", "d"], n_neighbors=2)
    >>> with SimilarityStore(path) as store:
    ...     print(len(store), store.similar("a", k=1))
    4 [('b', 0.99...)]
    """

    @validate_params(
        {"path": PATH, "mode": [StrOptions({"r", "a"})]}, prefer_skip_nested_validation=True
    )
    def __init__(self, path, *, mode="r"):
        self.path = Path(path)
        self.mode = mode
        self._conn = None
        self._open()

    # ------------------------------------------------------------------ open
    def _open(self):
        if not self.path.is_file():
            raise FileNotFoundError(f"no similarity store at {str(self.path)!r}")
        st = os.stat(self.path)
        rd.check_file(self.path, st.st_size)
        conn = None
        try:
            with rd.damage_as_store_error(self.path):
                conn = connect_readonly(self.path)
                meta, info = rd.read_meta(conn, self.path)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if self._conn is not None:
            self._conn.close()
        self._conn = conn
        self._stat = (st.st_dev, st.st_ino, st.st_mtime_ns)
        self._meta = meta
        self._info = info
        self.dim = meta["dim"]
        self.metric = meta["metric"]
        self.n_neighbors = meta["n_neighbors"]
        self.id_type = int if meta["id_type"] == "int" else str
        self.created = meta.get("created", "")
        self._n_tracks = meta["n_tracks"]

    def refresh(self):
        """Switch to the current file if a build or add replaced it.

        Returns
        -------
        changed : bool
            True if the store now reads a different file than before.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_music.store import SimilarityStore
        >>> path = getfixture("tmp_path") / "tracks.db"
        >>> SimilarityStore.build(path, np.eye(3), [1, 2, 3], n_neighbors=1)
        >>> store = SimilarityStore(path)
        >>> SimilarityStore.build(path, np.eye(4), [1, 2, 3, 4], n_neighbors=1)
        >>> len(store), store.refresh(), len(store)
        (3, True, 4)
        """
        self._check_open()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if (st.st_dev, st.st_ino, st.st_mtime_ns) == self._stat:
            return False
        self._open()
        return True

    def close(self):
        """Close the database connection.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_music.store import SimilarityStore
        >>> path = getfixture("tmp_path") / "tracks.db"
        >>> SimilarityStore.build(path, np.eye(2), ["x", "y"])
        >>> store = SimilarityStore(path)
        >>> store.close()
        """
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._conn is None else f"{self._n_tracks} tracks"
        return f"SimilarityStore({str(self.path)!r}, mode={self.mode!r}) <{state}>"

    def _check_open(self):
        if self._conn is None:
            raise ValueError(f"the similarity store {str(self.path)!r} is closed")

    def _key(self, track_id):
        kind = fmt.id_kind(track_id)
        if kind is None or self.id_type.__name__ != kind:
            raise KeyError(
                f"unknown track id {track_id!r}: this store's ids are {self.id_type.__name__}"
            )
        return fmt.id_to_key(track_id, kind)

    def _to_id(self, key):
        return int(key) if self.id_type is int else key

    def _has_row(self, table, key):
        return bool(
            self._conn.execute(f"SELECT 1 FROM {table} WHERE track_id = ?", (key,)).fetchall()
        )

    def _missing(self, track_id, key, table, other, where=""):
        """The error for a key absent from ``table``: KeyError, or StoreError if ``other``
        (the other table) has it (a damaged index)."""
        if self._has_row(other, key):
            return rd.StoreError(
                self.path, f"track {track_id!r} is in the {other} table but not in {table}"
            )
        return KeyError(f"unknown track id {track_id!r}{where}: not in {str(self.path)!r}")

    # ------------------------------------------------------------- mapping
    def __len__(self):
        return self._n_tracks

    @rd.checked
    def __contains__(self, track_id):
        self._check_open()
        try:
            key = self._key(track_id)
        except KeyError:
            return False
        return self._has_row("neighbors", key)

    def __iter__(self):
        self._check_open()
        keys = rd.iter_keys(self._conn, self._info)
        with rd.damage_as_store_error(self.path):
            yield from map(self._to_id, keys)

    # ------------------------------------------------------------- lookups
    iter_vectors = _bulk.iter_vectors
    to_arrays = _bulk.to_arrays

    @rd.checked
    def similar(self, track_id, *, k=10):
        """Return the tracks most similar to a stored track.

        One primary-key lookup: the answer was computed when the track was
        written.

        Parameters
        ----------
        track_id : str or int
            A track in the store.
        k : int, default=10
            Number of tracks to return; at most :attr:`n_neighbors` are stored.

        Returns
        -------
        similar : list of (track_id, float)
            ``(track_id, score)`` pairs, most similar first; the track itself is
            not included. Scores are similarities (see Notes of the class).

        Raises
        ------
        KeyError
            If ``track_id`` is not in the store.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_music.store import SimilarityStore
        >>> path = getfixture("tmp_path") / "tracks.db"
        >>> vectors = [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
        >>> SimilarityStore.build(path, vectors, [10, 20, 30], n_neighbors=2)
        >>> SimilarityStore(path).similar(10)
        [(20, 0.707...), (30, 0.0)]
        """
        self._check_open()
        k = check_k(k, "SimilarityStore.similar")
        key = self._key(track_id)
        rows = self._conn.execute(
            f"SELECT {self._info.list_columns} FROM neighbors WHERE track_id = ?", (key,)
        ).fetchall()
        if not rows:
            raise self._missing(track_id, key, "neighbors", "tracks")
        scores, keys = rd.list_row(self._info, key, rows[0])
        if self.id_type is int:
            return [(int(t), s) for t, s in zip(keys[:k], scores[:k])]
        return list(zip(keys[:k], scores[:k]))

    @rd.checked
    def vector(self, track_id):
        """Return a stored track's vector.

        Parameters
        ----------
        track_id : str or int
            A track in the store.

        Returns
        -------
        vector : ndarray of shape (dim,), dtype float32
            The vector the track was stored with.

        Raises
        ------
        KeyError
            If ``track_id`` is not in the store.

        Examples
        --------
        >>> from sklearn_music.store import SimilarityStore
        >>> path = getfixture("tmp_path") / "tracks.db"
        >>> SimilarityStore.build(path, [[1.0, 2.0], [3.0, 4.0]], ["a", "b"])
        >>> SimilarityStore(path).vector("b")
        array([3., 4.], dtype=float32)
        """
        self._check_open()
        return self._vector(track_id).copy()

    def _vector(self, track_id, where=""):
        key = self._key(track_id)
        rows = self._conn.execute(
            f"SELECT {self._info.track_columns} FROM tracks WHERE track_id = ?", (key,)
        ).fetchall()
        if not rows:
            raise self._missing(track_id, key, "tracks", "neighbors", where)
        found, vector, _ = rd.track_row(self._info, rows[0])
        if found != key:
            raise rd.StoreError(self.path, f"the index sends track {key!r} to the row of {found!r}")
        return vector

    def _vectors(self, track_ids, what="history"):
        return np.vstack([self._vector(tid, f" in {what}") for tid in track_ids])

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
                raise ValueError(
                    "the history's unit vectors sum to zero; no direction to recommend"
                )
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

    # -------------------------------------------------------------- writing
    @classmethod
    @validate_params(
        {
            "path": PATH,
            "vectors": ["array-like"],
            "track_ids": ["array-like"],
            "n_neighbors": [Interval(Integral, 1, fmt.MAX_NEIGHBORS, closed="both")],
            "metric": [StrOptions(set(fmt.METRICS))],
            "algorithm": [str],
            "random_state": ["random_state"],
            "n_jobs": [Integral, None],
            "batch_size": BATCH_SIZE,
            "verbose": ["verbose"],
        },
        # NearestTracks checks ``algorithm`` (and the rest again) in its fit
        prefer_skip_nested_validation=False,
    )
    def build(
        cls,
        path,
        vectors,
        track_ids,
        *,
        n_neighbors=10,
        metric="cosine",
        algorithm="auto",
        random_state=None,
        n_jobs=None,
        batch_size=10000,
        verbose=False,
    ):
        """Compute every track's similar tracks and write a new store.

        The neighbours come from :class:`~sklearn_music.NearestTracks` (exact or
        approximate, per ``algorithm``). The store is written to a temporary file
        in the same directory and renamed onto ``path`` only when complete, so
        an existing store at ``path`` stays readable and intact until then.

        Parameters
        ----------
        path : str or path-like
            Where to write the store; an existing store there is replaced.
        vectors : array-like of shape (n_tracks, dim)
            One vector per track (stored as float32).
        track_ids : sequence of str or int, of length n_tracks
            Unique ids, all ``str`` or all ``int``.
        n_neighbors : int, default=10
            Number of similar tracks stored per track.
        metric : {"cosine", "euclidean"}, default="cosine"
            Similarity measure.
        algorithm : str, default="auto"
            Passed to :class:`~sklearn_music.NearestTracks`.
        random_state : int, RandomState instance or None, default=None
            Passed to :class:`~sklearn_music.NearestTracks`.
        n_jobs : int, default=None
            Passed to :class:`~sklearn_music.NearestTracks`.
        batch_size : int, default=10000
            Rows per ``executemany`` batch while writing.
        verbose : bool, default=False
            Show a progress bar while writing.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_music.store import SimilarityStore
        >>> path = getfixture("tmp_path") / "tracks.db"
        >>> rng = np.random.default_rng(0)
        >>> SimilarityStore.build(path, rng.normal(size=(50, 8)), range(50))
        >>> len(SimilarityStore(path))
        50
        """
        _write.build_store(
            path,
            vectors,
            track_ids,
            n_neighbors=int(n_neighbors),
            metric=metric,
            algorithm=algorithm,
            random_state=random_state,
            n_jobs=n_jobs,
            batch_size=int(batch_size),
            verbose=verbose,
        )

    @classmethod
    @validate_params(
        {"path": PATH, "X": ["array-like", None], "track_ids": ["array-like", None]},
        # build validates kwargs
        prefer_skip_nested_validation=False,
    )
    def from_pipeline(cls, path, pipeline, X, track_ids, **kwargs):
        """Embed tracks with a fitted pipeline and build a store from the vectors.

        Parameters
        ----------
        path : str or path-like
            Where to write the store.
        pipeline : Pipeline or NearestTracks
            A fitted :class:`~sklearn.pipeline.Pipeline` whose steps before the
            last turn ``X`` into vectors (the last step, typically a
            :class:`~sklearn_music.NearestTracks`, is not used), or a fitted
            ``NearestTracks`` whose fitted vectors (unit-normalised for the
            cosine metric) and ``track_ids_`` are stored (then ``X`` must be
            None, and ``metric`` defaults to the index's).
        X : sequence or array-like or None
            The tracks, in the form the pipeline's first step accepts (paths,
            waveforms, spectrograms...).
        track_ids : sequence of str or int
            One unique id per track.
        **kwargs : dict
            Passed to :meth:`build` (``n_neighbors``, ``metric``...).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import FunctionTransformer
        >>> from sklearn.neighbors import NearestNeighbors
        >>> from sklearn_music.store import SimilarityStore
        >>> X = np.random.default_rng(0).normal(size=(20, 4))
        >>> pipe = make_pipeline(FunctionTransformer(np.abs), NearestNeighbors()).fit(X)
        >>> path = getfixture("tmp_path") / "tracks.db"
        >>> SimilarityStore.from_pipeline(path, pipe, X, range(20), n_neighbors=3)
        >>> SimilarityStore(path).vector(0).round(2)
        array([0.13, 0.13, 0.64, 0.1 ], dtype=float32)
        """
        vectors, track_ids, kwargs = _write.pipeline_vectors(pipeline, X, track_ids, kwargs)
        cls.build(path, vectors, track_ids, **kwargs)

    @validate_params(
        {"vectors": ["array-like"], "track_ids": ["array-like"], "batch_size": BATCH_SIZE},
        prefer_skip_nested_validation=True,
    )
    @rd.checked
    def add(self, vectors, track_ids, *, batch_size=65536):
        """Add tracks to the store without a full rebuild.

        The new tracks' neighbours are found by an exact scan over the stored
        vectors (read in chunks) plus the other new tracks, and every stored
        track for which a new track is closer than its current last neighbour
        gets its list updated. The stored lists of the other tracks are kept as
        they are (approximate if the store was built approximately).

        The update is copy-on-write: the file is copied to a temporary file,
        changed there, and renamed onto the store's path (readers are never
        blocked and never see a partial update; a crash leaves the old store).

        Parameters
        ----------
        vectors : array-like of shape (n_new, dim)
            The new tracks' vectors.
        track_ids : sequence of str or int, of length n_new
            New ids, of the store's id type, not already in the store.
        batch_size : int, default=65536
            Stored vectors read per chunk of the scan.

        Notes
        -----
        Cost: one pass over all stored vectors, ``O(n_stored * n_new * dim)``
        operations with ``O(batch_size * dim)`` memory; one read and one write
        per stored track whose list changes; plus copying the file (the same
        order as the scan). Adding many tracks in one call is much cheaper than
        one call per track; past a few percent of the store, rebuild.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_music.store import SimilarityStore
        >>> path = getfixture("tmp_path") / "tracks.db"
        >>> SimilarityStore.build(path, [[1.0, 0.0], [0.0, 1.0]], ["a", "b"])
        >>> with SimilarityStore(path, mode="a") as store:
        ...     store.add([[1.0, 0.1]], ["c"])
        ...     print(store.similar("a", k=1))
        [('c', 0.995...)]
        """
        self._check_open()
        if self.mode != "a":
            raise ValueError(
                f"the store {str(self.path)!r} is open read-only; open it with "
                "mode='a' to add tracks"
            )
        X_new, new_keys, _ = fmt.check_tracks(
            vectors, track_ids, metric=self.metric, dim=self.dim, kind=self.id_type.__name__
        )
        if not new_keys:
            return
        with writer_lock(self.path):
            self.refresh()  # work on the current file, not a replaced one
            _write.check_not_stored(self._conn, self.path, new_keys, track_ids)
            _write.add_tracks(
                self.path,
                rd.scan(self._conn, self._info, batch_size),
                X_new,
                new_keys,
                dict(
                    dim=self.dim,
                    metric=self.metric,
                    n_neighbors=self.n_neighbors,
                    id_type=self.id_type.__name__,
                    n_tracks=self._n_tracks + len(new_keys),
                    created=self.created,  # an update keeps the build's date
                ),
                self._info,
            )
        self._open()
