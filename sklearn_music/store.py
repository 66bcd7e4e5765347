"""A precomputed similar-track store in one SQLite file.

"How to build a fast system for a million users? 1. pre-compute vectors and
track similarities 2. fast key-value storage." :class:`SimilarityStore` does
both: :meth:`SimilarityStore.build` computes every track's top-k most similar
tracks once (through :class:`~sklearn_music.NearestTracks`) and writes them,
with the track vectors, to an SQLite database (standard library, one file, no
server). Serving :meth:`~SimilarityStore.similar` is then a single primary-key
lookup that returns a packed blob.

File layout
-----------
``meta(key, value)``
    ``format``, ``format_version``, ``dim``, ``metric``, ``n_neighbors``,
    ``id_type`` (``"str"`` or ``"int"``), ``n_tracks``, ``created`` (ISO 8601,
    UTC), ``sklearn_music_version``.
``tracks(pos INTEGER PRIMARY KEY, track_id TEXT UNIQUE, vector BLOB, worst REAL)``
    the vectors as little-endian float32 blobs, in insertion order; ``worst`` is
    the score of the track's last stored neighbour (``-inf`` while its list is
    shorter than ``n_neighbors``), which lets :meth:`~SimilarityStore.add` find
    the lists that a new track enters without reading them.
``neighbors(track_id TEXT PRIMARY KEY, data BLOB) WITHOUT ROWID``
    one row per track: ``uint16`` count ``n``, ``n`` float32 scores (best
    first), then the ``n`` neighbour ids as UTF-8 joined by ``"\\0"``.

Track ids are stored as TEXT. A store holds either only ``str`` ids or only
``int`` ids (numpy integers count as ``int``); the kind is recorded in ``meta``
and ids come back with their original type. ``bool`` ids and ids that contain
``"\\0"`` are refused.

Scores are similarities, larger is more similar: ``1 - cosine distance`` (the
cosine of the angle, in ``[-1, 1]``) for ``metric="cosine"``, and minus the
Euclidean distance for ``metric="euclidean"``.

Updates and concurrency
-----------------------
The published file is never modified in place. :meth:`SimilarityStore.build`
and :meth:`SimilarityStore.add` write a private temporary file in the same
directory (``.<name>.<pid>.<random>.tmp``), ``fsync`` it and ``os.replace`` it
onto the store's path, then ``fsync`` the directory. Hence

* a reader never sees a half-built store: it has either the old file or the
  new one open, and a reader that opened the old file keeps reading the old
  inode until it calls :meth:`SimilarityStore.refresh` or reopens;
* a crash (even ``SIGKILL``) mid-build or mid-add leaves the previous store
  intact; the orphaned temporary file is removed by the next build or add on
  that path, or by the failing call's own exception handler;
* readers open the file ``immutable`` (no locks, no journal files), which is
  what makes lookups cheap. Never modify the published file in place with
  another tool while stores have it open.

This relies on POSIX rename semantics (an open file survives its replacement);
on Windows, replacing a store that a reader holds open fails.

Writers to the same path are serialised with an advisory ``flock`` on
``<path>.lock`` (POSIX only): ``add`` reads the current file and publishes its
result under the lock, and ``build`` publishes under it, so no update is lost
to a race (a ``build`` that publishes after an ``add`` replaces it, as a
rebuild should).

The issue suggested SQLite's WAL mode. WAL (like the rollback journal) keys its
``-wal``/``-shm`` side files by file *name*, so a database that is replaced by a
rename while connections are open would share those files with its successor,
which is one of SQLite's documented ways to corrupt a database. Copy-on-write
plus rename gives what WAL was wanted for -- readers never blocked by a writer
-- without that hazard, so the published file uses no journal at all.
"""

import contextlib
import datetime
import math
import numbers
import operator
import os
import secrets
import sqlite3
import struct
from pathlib import Path

import numpy as np

__all__ = ["SimilarityStore"]

_first = operator.itemgetter(0)

_FORMAT = "sklearn_music.SimilarityStore"
_FORMAT_VERSION = 1
_METRICS = ("cosine", "euclidean")
_MAX_NEIGHBORS = 65535  # the count is packed as uint16


# --------------------------------------------------------------------------- #
# track ids
# --------------------------------------------------------------------------- #
def _id_kind(track_id):
    """Return "int" or "str" for a valid id, else None."""
    if isinstance(track_id, (bool, np.bool_)):
        return None
    if isinstance(track_id, str):
        return "str"
    if isinstance(track_id, numbers.Integral):
        return "int"
    return None


def _normalize_ids(track_ids, *, kind=None, what="track_ids"):
    """Check ids (one kind, no NUL, no duplicates); return (list of TEXT keys, kind)."""
    if isinstance(track_ids, (str, bytes)) or not hasattr(track_ids, "__len__"):
        raise TypeError(
            f"{what} must be a sequence of str or int ids, got {type(track_ids).__name__}"
        )
    keys = []
    seen = {}
    for i, tid in enumerate(track_ids):
        k = _id_kind(tid)
        if k is None:
            raise TypeError(
                f"{what}[{i}]={tid!r} has type {type(tid).__name__}; track ids must be str or int"
            )
        if kind is None:
            kind = k
        elif k != kind:
            raise TypeError(
                f"{what}[{i}]={tid!r} is {k} but the store's ids are {kind}; a store "
                "holds only str ids or only int ids"
            )
        key = tid if k == "str" else str(int(tid))
        if "\0" in key:
            raise ValueError(f"{what}[{i}]={tid!r} contains a NUL character")
        if key in seen:
            raise ValueError(f"duplicate track id {tid!r} in {what} (rows {seen[key]} and {i})")
        seen[key] = i
        keys.append(key)
    return keys, kind


# --------------------------------------------------------------------------- #
# vectors and scores
# --------------------------------------------------------------------------- #
def _check_vectors(vectors, *, dim=None, metric="cosine", what="vectors"):
    try:
        X = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a 2-D array of numbers: {exc}") from None
    if X.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n_tracks, dim), got shape {X.shape}")
    if X.shape[1] == 0:
        raise ValueError(f"{what} has 0 columns; vectors need at least 1 dimension")
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{what} has {X.shape[1]} dimensions but the store's vectors have {dim}")
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{what} row {row} contains a non-finite value (NaN or inf); "
            f"{int((~finite).sum())} row(s) in all"
        )
    if metric == "cosine":
        zero = ~np.any(X != 0, axis=1)
        if zero.any():
            row = int(np.flatnonzero(zero)[0])
            raise ValueError(f"{what} row {row} is all zeros; its cosine similarity is undefined")
    return np.ascontiguousarray(X)


def _prepare(X, metric):
    """Return the float64 form that `_scores` expects."""
    X = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        return X / np.linalg.norm(X, axis=1, keepdims=True)
    return X


def _scores(A, B, metric):
    """Similarity scores between prepared rows of A and B, shape (len(A), len(B))."""
    if metric == "cosine":
        return A @ B.T
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    return -np.sqrt(np.maximum(sq, 0.0))


def _distance_to_score(dist, metric):
    dist = np.asarray(dist, dtype=np.float64)
    return 1.0 - dist if metric == "cosine" else -dist


def _top_k(scores, ids, k):
    """Row-wise top-k (descending) of a score matrix; ids maps columns to ids."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((scores.shape[0], 0)), np.empty((scores.shape[0], 0), dtype=ids.dtype)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-s, axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(s, order, axis=1), ids[part]


def _merge(scores_a, ids_a, scores_b, ids_b, k):
    """Merge two descending (score, id) lists into the best k, best first."""
    pairs = [*zip(scores_a, ids_a), *zip(scores_b, ids_b)]
    pairs.sort(key=_first, reverse=True)  # stable: ties keep a's order first
    del pairs[k:]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# --------------------------------------------------------------------------- #
# the packed neighbour blob
# --------------------------------------------------------------------------- #
def _pack(scores, keys):
    n = len(keys)
    return struct.pack(f"<H{n}f", n, *scores) + "\0".join(keys).encode("utf-8")


def _unpack(blob):
    (n,) = struct.unpack_from("<H", blob, 0)
    if n == 0:
        return (), []
    scores = struct.unpack_from(f"<{n}f", blob, 2)
    keys = blob[2 + 4 * n :].decode("utf-8").split("\0")
    return scores, keys


# --------------------------------------------------------------------------- #
# files
# --------------------------------------------------------------------------- #
def _tmp_pattern(path):
    return f".{path.name}.", ".tmp"


def _new_tmp_path(path):
    prefix, suffix = _tmp_pattern(path)
    return path.with_name(f"{prefix}{os.getpid()}.{secrets.token_hex(6)}{suffix}")


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_stale_tmp(path):
    """Remove temporary files left by builds whose process is gone."""
    prefix, suffix = _tmp_pattern(path)
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        middle = name[len(prefix) : -len(suffix)].split(".")
        if len(middle) != 2 or not middle[0].isdigit():
            continue
        if _pid_alive(int(middle[0])):
            continue
        for p in (entry, entry.with_name(name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(entry)
    return removed


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory):
    if os.name != "posix":  # pragma: no cover - directories cannot be fsynced there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _writer_lock(path):
    """Serialise writers of one store path (advisory flock, POSIX only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _connect_private(tmp_path):
    conn = sqlite3.connect(tmp_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def _publish(tmp_path, path):
    """fsync the private file, rename it onto path, fsync the directory."""
    _fsync_file(tmp_path)
    os.replace(tmp_path, path)
    _fsync_dir(path.parent)


def _row_batches(n, batch_size):
    """Yield (start, stop) slices of the rows to write; one transaction in all."""
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _write_store(
    path,
    vectors,
    keys,
    id_type,
    nbr_idx,
    nbr_scores,
    *,
    metric,
    n_neighbors,
    batch_size,
    verbose=False,
):
    """Write a complete store to a private file and publish it at path.

    ``nbr_idx`` / ``nbr_scores`` hold, for each row, its neighbours' row indices
    and scores, best first (``nbr_idx`` may be a list of arrays of varying
    length, or a 2-D array).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(path)
    tmp = _new_tmp_path(path)
    try:
        conn = _connect_private(tmp)
        try:
            _create_schema(conn)
            n, dim = vectors.shape
            keys_arr = keys
            conn.execute("BEGIN")
            batches = _row_batches(n, batch_size)
            if verbose:
                from tqdm.auto import tqdm

                batches = tqdm(
                    batches,
                    total=math.ceil(n / batch_size),
                    desc="writing store",
                    unit="batch",
                )
            for start, stop in batches:
                conn.executemany(
                    "INSERT INTO tracks(pos, track_id, vector, worst) VALUES (?, ?, ?, ?)",
                    (
                        (
                            i,
                            keys_arr[i],
                            vectors[i].tobytes(),
                            float(nbr_scores[i][-1])
                            if len(nbr_scores[i]) >= n_neighbors
                            else -math.inf,
                        )
                        for i in range(start, stop)
                    ),
                )
                conn.executemany(
                    "INSERT INTO neighbors(track_id, data) VALUES (?, ?)",
                    (
                        (
                            keys_arr[i],
                            _pack(nbr_scores[i], [keys_arr[j] for j in nbr_idx[i]]),
                        )
                        for i in range(start, stop)
                    ),
                )
            _write_meta(
                conn,
                dim=dim,
                metric=metric,
                n_neighbors=n_neighbors,
                id_type=id_type,
                n_tracks=n,
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        with _writer_lock(path):
            _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _create_schema(conn):
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    conn.execute(
        "CREATE TABLE tracks(pos INTEGER PRIMARY KEY, track_id TEXT NOT NULL UNIQUE, "
        "vector BLOB NOT NULL, worst REAL NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE neighbors(track_id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID"
    )


def _write_meta(conn, **values):
    from . import __version__

    meta = {
        "format": _FORMAT,
        "format_version": str(_FORMAT_VERSION),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sklearn_music_version": __version__,
    }
    meta.update({k: str(v) for k, v in values.items()})
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", meta.items())


def _compute_neighbors(vectors, n_neighbors, *, metric, algorithm, random_state, n_jobs, verbose):
    """Each row's top-k other rows via NearestTracks: (indices, scores) lists."""
    n = vectors.shape[0]
    k = min(n_neighbors, n - 1)
    if k == 0:
        return [np.empty(0, dtype=np.intp)] * n, [np.empty(0)] * n
    from ._neighbors import NearestTracks

    index = NearestTracks(
        n_neighbors=k,
        metric=metric,
        algorithm=algorithm,
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    index.fit(vectors)
    # X=None: every track against the others, itself excluded (as in sklearn)
    dist, ind = index.kneighbors(n_neighbors=k)
    scores = _distance_to_score(dist, metric)
    out_idx, out_scores = [], []
    for i in range(n):
        row, s = np.asarray(ind[i]), scores[i]
        keep = (row != i) & (row >= 0)
        row, s = row[keep][:k], s[keep][:k]
        order = np.argsort(-s, kind="stable")
        out_idx.append(row[order])
        out_scores.append(s[order])
    return out_idx, out_scores


# --------------------------------------------------------------------------- #
# the store
# --------------------------------------------------------------------------- #
class SimilarityStore:
    """Precomputed similar tracks and track vectors in one SQLite file.

    Open an existing store; create one with :meth:`build` or
    :meth:`from_pipeline`. Lookups by track id are primary-key lookups:
    :meth:`similar` reads one packed row. See the module documentation for the
    file layout and the update protocol (copy-on-write, atomic rename).

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

    def __init__(self, path, *, mode="r"):
        if mode not in ("r", "a"):
            raise ValueError(f"mode={mode!r} must be 'r' or 'a'")
        self.path = Path(path)
        self.mode = mode
        self._conn = None
        self._open()

    # ------------------------------------------------------------------ open
    def _open(self):
        if not self.path.is_file():
            raise FileNotFoundError(f"no similarity store at {str(self.path)!r}")
        st = os.stat(self.path)
        uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            rows = conn.execute("SELECT key, value FROM meta").fetchall()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ValueError(f"{str(self.path)!r} is not a similarity store ({exc})") from None
        meta = dict(rows)
        if meta.get("format") != _FORMAT:
            conn.close()
            raise ValueError(f"{str(self.path)!r} is not a similarity store")
        if int(meta["format_version"]) > _FORMAT_VERSION:
            conn.close()
            raise ValueError(
                f"{str(self.path)!r} has store format version {meta['format_version']}; "
                f"this sklearn_music reads up to {_FORMAT_VERSION}"
            )
        if self._conn is not None:
            self._conn.close()
        self._conn = conn
        self._stat = (st.st_dev, st.st_ino, st.st_mtime_ns)
        self._meta = meta
        self.dim = int(meta["dim"])
        self.metric = meta["metric"]
        self.n_neighbors = int(meta["n_neighbors"])
        self.id_type = int if meta["id_type"] == "int" else str
        self.created = meta["created"]
        self._n_tracks = int(meta["n_tracks"])

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

        Returns
        -------
        None

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
        kind = _id_kind(track_id)
        if kind is None or self.id_type.__name__ != kind:
            raise KeyError(
                f"unknown track id {track_id!r}: this store's ids are {self.id_type.__name__}"
            )
        return track_id if kind == "str" else str(int(track_id))

    def _to_id(self, key):
        return int(key) if self.id_type is int else key

    # ------------------------------------------------------------- mapping
    def __len__(self):
        return self._n_tracks

    def __contains__(self, track_id):
        self._check_open()
        try:
            key = self._key(track_id)
        except KeyError:
            return False
        return bool(
            self._conn.execute("SELECT 1 FROM neighbors WHERE track_id = ?", (key,)).fetchall()
        )

    def __iter__(self):
        self._check_open()
        return self._iter_ids(self._conn)

    def _iter_ids(self, conn, chunk=10000):
        last = -1
        while True:
            rows = conn.execute(
                "SELECT pos, track_id FROM tracks WHERE pos > ? ORDER BY pos LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, key in rows:
                yield self._to_id(key)

    # ------------------------------------------------------------- lookups
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
        key = self._key(track_id)
        rows = self._conn.execute(
            "SELECT data FROM neighbors WHERE track_id = ?", (key,)
        ).fetchall()
        if not rows:
            raise KeyError(f"unknown track id {track_id!r}: not in {str(self.path)!r}")
        scores, keys = _unpack(rows[0][0])
        k = int(k)
        if k < 0:
            raise ValueError(f"k={k} must be >= 0")
        if self.id_type is int:
            return [(int(t), s) for t, s in zip(keys[:k], scores[:k])]
        return list(zip(keys[:k], scores[:k]))

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
        key = self._key(track_id)
        rows = self._conn.execute("SELECT vector FROM tracks WHERE track_id = ?", (key,)).fetchall()
        if not rows:
            raise KeyError(f"unknown track id {track_id!r}: not in {str(self.path)!r}")
        return np.frombuffer(rows[0][0], dtype="<f4").copy()

    def _vectors(self, track_ids, what="history"):
        out = []
        for tid in track_ids:
            key = self._key(tid)
            rows = self._conn.execute(
                "SELECT vector FROM tracks WHERE track_id = ?", (key,)
            ).fetchall()
            if not rows:
                raise KeyError(f"unknown track id {tid!r} in {what}: not in {str(self.path)!r}")
            out.append(np.frombuffer(rows[0][0], dtype="<f4"))
        return np.vstack(out)

    def _scan(self, batch_size):
        """Yield (keys, float32 matrix, worst) over all stored vectors, in order."""
        cur = self._conn.execute("SELECT track_id, vector, worst FROM tracks ORDER BY pos")
        while True:
            rows = cur.fetchmany(batch_size)
            if not rows:
                return
            keys = [r[0] for r in rows]
            X = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(
                len(rows), self.dim
            )
            worst = np.array([r[2] for r in rows], dtype=np.float64)
            yield keys, X, worst

    def recommend(self, history, *, k=10, exhaustive=False, batch_size=65536):
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

        Returns
        -------
        recommended : list of (track_id, float)
            ``(track_id, score)`` pairs, best first.

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
        self._check_open()
        history = list(history)
        if not history:
            raise ValueError("history is empty; give at least one stored track id")
        k = int(k)
        if k < 0:
            raise ValueError(f"k={k} must be >= 0")
        H = _prepare(self._vectors(history), self.metric)
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
            best_s, best_k = [], []
            for keys, X, _ in self._scan(batch_size):
                s = _scores(q, _prepare(X, self.metric), self.metric)[0]
                keep = [i for i, key in enumerate(keys) if key not in exclude]
                s = s[keep]
                cand = np.asarray(keys, dtype=object)[keep]
                top_s, top_k = _top_k(s[None, :], cand, k + 0)
                best_s, best_k = _merge(best_s, best_k, top_s[0], top_k[0], k)
        else:
            cand = []
            seen = set(exclude)
            for tid in history:
                for other, _ in self.similar(tid, k=self.n_neighbors):
                    key = self._key(other)
                    if key not in seen:
                        seen.add(key)
                        cand.append(other)
            if not cand:
                return []
            s = _scores(q, _prepare(self._vectors(cand, "candidates"), self.metric), self.metric)[0]
            keys = np.asarray([self._key(c) for c in cand], dtype=object)
            top_s, top_k = _top_k(s[None, :], keys, k)
            best_s, best_k = list(top_s[0]), list(top_k[0])
        return [(self._to_id(key), float(s)) for s, key in zip(best_s, best_k)]

    # -------------------------------------------------------------- writing
    @classmethod
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

        Returns
        -------
        None

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
        metric, n_neighbors, batch_size = _check_params(metric, n_neighbors, batch_size)
        X = _check_vectors(vectors, metric=metric)
        keys, id_type = _normalize_ids(track_ids)
        if len(keys) != X.shape[0]:
            raise ValueError(f"vectors has {X.shape[0]} rows but track_ids has {len(keys)} ids")
        if not keys:
            raise ValueError("cannot build a store from 0 tracks")
        nbr_idx, nbr_scores = _compute_neighbors(
            X,
            n_neighbors,
            metric=metric,
            algorithm=algorithm,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        _write_store(
            path,
            X,
            keys,
            id_type,
            nbr_idx,
            nbr_scores,
            metric=metric,
            n_neighbors=n_neighbors,
            batch_size=batch_size,
            verbose=verbose,
        )

    @classmethod
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

        Returns
        -------
        None

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
        from sklearn.pipeline import Pipeline

        if isinstance(pipeline, Pipeline):
            if X is None:
                raise ValueError("X is None: give the tracks to embed with the pipeline")
            vectors = pipeline[:-1].transform(X) if len(pipeline) > 1 else X
        else:
            if X is not None:
                raise ValueError(
                    f"pipeline is a {type(pipeline).__name__}, not a Pipeline: give "
                    "X=None to store its training vectors, or wrap the embedding "
                    "steps in a Pipeline"
                )
            vectors = _fitted_vectors(pipeline)
            kwargs.setdefault("metric", getattr(pipeline, "metric", "cosine"))
            if track_ids is None:
                track_ids = getattr(pipeline, "track_ids_", None)
                if track_ids is None:
                    raise ValueError("track_ids is None and the index has no track_ids_")
        cls.build(path, vectors, track_ids, **kwargs)

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

        Returns
        -------
        None

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
        X_new = _check_vectors(vectors, dim=self.dim, metric=self.metric)
        new_keys, _ = _normalize_ids(track_ids, kind=self.id_type.__name__)
        if len(new_keys) != X_new.shape[0]:
            raise ValueError(
                f"vectors has {X_new.shape[0]} rows but track_ids has {len(new_keys)} ids"
            )
        if not new_keys:
            return
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        with _writer_lock(self.path):
            self.refresh()  # work on the current file, not a replaced one
            self._check_not_stored(new_keys, track_ids)
            self._add_locked(X_new, new_keys, batch_size)
        self._open()

    def _check_not_stored(self, new_keys, track_ids):
        for start in range(0, len(new_keys), 500):
            chunk = new_keys[start : start + 500]
            rows = self._conn.execute(
                f"SELECT track_id FROM tracks WHERE track_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            if rows:
                dup = rows[0][0]
                i = new_keys.index(dup)
                raise ValueError(
                    f"track id {list(track_ids)[i]!r} (row {i}) is already in {str(self.path)!r}"
                )

    def _add_locked(self, X_new, new_keys, batch_size):
        metric, k = self.metric, self.n_neighbors
        m = len(new_keys)
        Q = _prepare(X_new, metric)
        new_s = [[] for _ in range(m)]  # best-k lists of the new tracks
        new_k = [[] for _ in range(m)]
        updates = {}  # existing key -> (candidate scores, candidate keys)
        for keys, X, worst in self._scan(batch_size):
            S = _scores(Q, _prepare(X, metric), metric)  # (m, chunk)
            keys_arr = np.asarray(keys, dtype=object)
            ts, tk = _top_k(S, keys_arr, k)
            ts, tk = ts.tolist(), tk.tolist()
            for i in range(m):
                new_s[i], new_k[i] = _merge(new_s[i], new_k[i], ts[i], tk[i], k)
            # stored tracks that a new track enters
            hit = np.flatnonzero((S > worst[None, :]).any(axis=0))
            if hit.size:
                cs, ck = _top_k(S[:, hit].T, np.asarray(new_keys, dtype=object), k)
                cs, ck = cs.tolist(), ck.tolist()
                for j, h in enumerate(hit):
                    updates[keys[h]] = (cs[j], ck[j])
        if m > 1:
            S = _scores(Q, Q, metric)
            np.fill_diagonal(S, -np.inf)
            ts, tk = _top_k(S, np.asarray(new_keys, dtype=object), min(k, m - 1))
            ts, tk = ts.tolist(), tk.tolist()
            for i in range(m):
                new_s[i], new_k[i] = _merge(new_s[i], new_k[i], ts[i], tk[i], k)

        import shutil

        path = self.path
        _clean_stale_tmp(path)
        tmp = _new_tmp_path(path)
        try:
            shutil.copyfile(path, tmp)
            conn = _connect_private(tmp)
            try:
                conn.execute("BEGIN")
                keys = list(updates)
                for lo in range(0, len(keys), 500):
                    chunk = keys[lo : lo + 500]
                    rows = conn.execute(
                        "SELECT track_id, data FROM neighbors WHERE track_id IN "
                        f"({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
                    blobs, worsts = [], []
                    for key, blob in rows:
                        cs, ck = updates[key]
                        old_s, old_k = _unpack(blob)
                        s, ks = _merge(old_s, old_k, cs, ck, k)
                        blobs.append((_pack(s, ks), key))
                        worsts.append((float(s[-1]) if len(s) >= k else -math.inf, key))
                    conn.executemany("UPDATE neighbors SET data = ? WHERE track_id = ?", blobs)
                    conn.executemany("UPDATE tracks SET worst = ? WHERE track_id = ?", worsts)
                (start,) = conn.execute("SELECT COALESCE(MAX(pos) + 1, 0) FROM tracks").fetchone()
                conn.executemany(
                    "INSERT INTO tracks(pos, track_id, vector, worst) VALUES (?, ?, ?, ?)",
                    (
                        (
                            start + i,
                            new_keys[i],
                            X_new[i].tobytes(),
                            float(new_s[i][-1]) if len(new_s[i]) >= k else -math.inf,
                        )
                        for i in range(m)
                    ),
                )
                conn.executemany(
                    "INSERT INTO neighbors(track_id, data) VALUES (?, ?)",
                    ((new_keys[i], _pack(new_s[i], new_k[i])) for i in range(m)),
                )
                _write_meta(
                    conn,
                    dim=self.dim,
                    metric=metric,
                    n_neighbors=k,
                    id_type=self.id_type.__name__,
                    n_tracks=self._n_tracks + m,
                )
                conn.execute("UPDATE meta SET value = ? WHERE key = 'created'", (self.created,))
                conn.execute("COMMIT")
            finally:
                conn.close()
            _publish(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise


def _check_params(metric, n_neighbors, batch_size):
    if metric not in _METRICS:
        raise ValueError(f"metric={metric!r} must be one of {_METRICS}")
    if (
        not isinstance(n_neighbors, numbers.Integral)
        or isinstance(n_neighbors, bool)
        or not 1 <= n_neighbors <= _MAX_NEIGHBORS
    ):
        raise ValueError(f"n_neighbors={n_neighbors!r} must be an integer in [1, {_MAX_NEIGHBORS}]")
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    return metric, int(n_neighbors), int(batch_size)


def _fitted_vectors(index):
    """The training vectors of a fitted NearestTracks-like index."""
    vectors = getattr(index, "_fit_X", None)
    if vectors is not None:
        return np.asarray(vectors[:])
    raise ValueError(
        f"{type(index).__name__} does not expose its training vectors; pass a "
        "Pipeline and X instead"
    )
