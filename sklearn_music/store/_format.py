"""The store's file format: schema, meta keys, track ids, vectors, neighbour blobs.

See the package documentation (:mod:`sklearn_music.store`) for the layout.
"""

import datetime
import math
import numbers
import re
import sqlite3
import struct

import numpy as np

FORMAT = "sklearn_music.SimilarityStore"
FORMAT_VERSION = 1
METRICS = ("cosine", "euclidean")
MAX_NEIGHBORS = 65535  # the count is packed as uint16
META_KEYS = ("format", "format_version", "dim", "metric", "n_neighbors", "id_type", "n_tracks")
# table -> [(column, declared type)] of format version 1
SCHEMA = {
    "meta": [("key", "TEXT"), ("value", "TEXT")],
    "tracks": [("pos", "INTEGER"), ("track_id", "TEXT"), ("vector", "BLOB"), ("worst", "REAL")],
    "neighbors": [("track_id", "TEXT"), ("data", "BLOB")],
}
_INT = re.compile(r"[0-9]{1,18}")


class StoreError(ValueError):
    """A file that is not a similarity store, or a damaged or tampered one.

    Raised when a store is opened (a missing or invalid meta value, an
    unknown schema or format version, a truncated or non-SQLite file) and when
    a lookup meets a damaged row (a vector or neighbour list that does not
    decode, pages that SQLite reports as malformed). A subclass of
    :class:`ValueError`; the message names the file and the cause.

    Parameters
    ----------
    path : str or path-like
        The store file.
    cause : str
        What is wrong with it.

    Attributes
    ----------
    path : str
        The store file.
    cause : str
        What is wrong with it.

    Examples
    --------
    >>> from sklearn_music.store import SimilarityStore, StoreError
    >>> path = getfixture("tmp_path") / "notes.db"
    >>> _ = path.write_text("not a database")
    >>> try:
    ...     SimilarityStore(path)
    ... except StoreError as exc:
    ...     print(exc.cause)
    not a similarity store: not an SQLite file
    """

    def __init__(self, path, cause):
        self.path = str(path)
        self.cause = str(cause)
        super().__init__(f"cannot use {self.path!r} as a similarity store: {self.cause}")

    def __reduce__(self):
        return type(self), (self.path, self.cause)


# --------------------------------------------------------------------------- #
# track ids: stored as TEXT, one kind ("str" or "int") per store
# --------------------------------------------------------------------------- #
def id_kind(track_id):
    """Return "int" or "str" for a valid id, else None."""
    if isinstance(track_id, (bool, np.bool_)):
        return None
    if isinstance(track_id, str):
        return "str"
    if isinstance(track_id, numbers.Integral):
        return "int"
    return None


def id_to_key(track_id, kind):
    """The TEXT key of an id of the given kind."""
    return track_id if kind == "str" else str(int(track_id))


def normalize_ids(track_ids, *, kind=None, what="track_ids"):
    """Check ids (one kind, no NUL, no duplicates); return (list of TEXT keys, kind)."""
    if isinstance(track_ids, (str, bytes)) or not hasattr(track_ids, "__len__"):
        raise TypeError(
            f"{what} must be a sequence of str or int ids, got {type(track_ids).__name__}"
        )
    keys = []
    seen = {}
    for i, tid in enumerate(track_ids):
        k = id_kind(tid)
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
        key = id_to_key(tid, k)
        if "\0" in key:
            raise ValueError(f"{what}[{i}]={tid!r} contains a NUL character")
        if key in seen:
            raise ValueError(f"duplicate track id {tid!r} in {what} (rows {seen[key]} and {i})")
        seen[key] = i
        keys.append(key)
    return keys, kind


# --------------------------------------------------------------------------- #
# vectors: little-endian float32 blobs
# --------------------------------------------------------------------------- #
def check_vectors(vectors, *, dim=None, metric="cosine", what="vectors"):
    """Return ``vectors`` as a C-contiguous float32 matrix, or raise naming the bad row."""
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


def check_tracks(vectors, track_ids, *, metric, dim=None, kind=None):
    """Check vectors and ids together; return (float32 matrix, TEXT keys, id kind)."""
    X = check_vectors(vectors, dim=dim, metric=metric)
    keys, kind = normalize_ids(track_ids, kind=kind)
    if len(keys) != X.shape[0]:
        raise ValueError(f"vectors has {X.shape[0]} rows but track_ids has {len(keys)} ids")
    return X, keys, kind


def decode_vector(blob, dim, path, key):
    """One stored vector blob as a float32 array (read-only view), checked.

    Raises :class:`StoreError` naming ``path`` and the track if the blob is not
    ``dim`` finite float32 values.
    """
    if not isinstance(blob, bytes) or len(blob) != 4 * dim:
        size = f"{len(blob)} bytes" if isinstance(blob, bytes) else type(blob).__name__
        raise StoreError(
            path, f"the vector of track {key!r} has {size}, not {4 * dim} ({dim} float32)"
        )
    v = np.frombuffer(blob, dtype="<f4")
    if not np.isfinite(v).all():
        raise StoreError(path, f"the vector of track {key!r} holds a non-finite value")
    return v


def decode_vectors(blobs, keys, dim, path):
    """Stored vector blobs as a float32 matrix of shape (len(blobs), dim), checked."""
    for blob, key in zip(blobs, keys):
        if not isinstance(blob, bytes) or len(blob) != 4 * dim:
            decode_vector(blob, dim, path, key)  # raises, naming the track
    X = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim)
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        decode_vector(blobs[row], dim, path, keys[row])
    return X


# --------------------------------------------------------------------------- #
# the packed neighbour blob
# --------------------------------------------------------------------------- #
def pack(scores, keys):
    """uint16 count n, n float32 scores, then the n keys joined by NUL (UTF-8)."""
    n = len(keys)
    return struct.pack(f"<H{n}f", n, *scores) + "\0".join(keys).encode("utf-8")


def unpack(blob, path, key, id_type="str"):
    """Return (scores, keys) from a blob made by :func:`pack`, checked.

    Raises :class:`StoreError` naming ``path`` and the track ``key`` if the
    blob is not a list of distinct ids (of ``id_type``, without the track
    itself) with finite scores, best first.
    """

    def bad(cause):
        return StoreError(path, f"the neighbour list of track {key!r} is damaged ({cause})")

    if not isinstance(blob, bytes) or len(blob) < 2:
        raise bad("too short" if isinstance(blob, bytes) else f"a {type(blob).__name__}")
    (n,) = struct.unpack_from("<H", blob, 0)
    if n == 0:
        if len(blob) != 2:
            raise bad("0 entries but trailing bytes")
        return (), []
    if len(blob) < 2 + 5 * n - 1:
        raise bad(f"{len(blob)} bytes cannot hold {n} entries")
    scores = struct.unpack_from(f"<{n}f", blob, 2)
    try:
        keys = blob[2 + 4 * n :].decode("utf-8").split("\0")
    except UnicodeDecodeError as exc:
        raise bad(f"ids are not UTF-8: {exc.reason}") from None
    if len(keys) != n:
        raise bad(f"{len(keys)} ids for {n} scores")
    if not all(math.isfinite(x) for x in scores) or any(a < b for a, b in zip(scores, scores[1:])):
        raise bad("scores are not finite and best first")
    if len(set(keys)) != n or key in keys:
        raise bad("repeated ids")
    if id_type == "int" and not all(is_int_key(k) for k in keys):
        raise bad("ids are not integers")
    return scores, keys


def is_int_key(key):
    """True if ``key`` is the TEXT form of an int id (as :func:`id_to_key` writes it)."""
    return isinstance(key, str) and key == str(_to_int(key))


def _to_int(key):
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


def worst_score(scores, n_neighbors):
    """The ``worst`` column: the last score of a full list, else -inf."""
    return float(scores[-1]) if len(scores) >= n_neighbors else -math.inf


# --------------------------------------------------------------------------- #
# schema, meta and rows
# --------------------------------------------------------------------------- #
def create_schema(conn):
    """Create the three tables in an empty database."""
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    conn.execute(
        "CREATE TABLE tracks(pos INTEGER PRIMARY KEY, track_id TEXT NOT NULL UNIQUE, "
        "vector BLOB NOT NULL, worst REAL NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE neighbors(track_id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID"
    )


def write_meta(conn, **values):
    """Write the format keys, ``created``, the package version and ``values``."""
    from .. import __version__

    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sklearn_music_version": __version__,
    }
    meta.update({k: str(v) for k, v in values.items()})
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", meta.items())


def check_file(path, size):
    """Check the SQLite header of the file at ``path`` against its ``size`` in bytes.

    Catches a file that is not SQLite and a truncated one (the header declares
    its page count) before SQLite reads past the end.
    """
    with open(path, "rb") as fh:
        head = fh.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\0"):
        raise StoreError(path, "not a similarity store: not an SQLite file")
    (page_size,) = struct.unpack_from(">H", head, 16)
    page_size = 65536 if page_size == 1 else page_size
    counter, n_pages, valid_for = (struct.unpack_from(">I", head, o)[0] for o in (24, 28, 92))
    if page_size < 512 or page_size & (page_size - 1):
        raise StoreError(path, f"damaged SQLite header (page size {page_size})")
    if counter == valid_for and size < n_pages * page_size:
        raise StoreError(
            path,
            f"truncated: the file has {size} bytes but its header declares "
            f"{n_pages} pages of {page_size} bytes",
        )


def read_meta(conn, path):
    """Return the meta table as a dict of checked values, or raise :class:`StoreError`.

    Checks the schema, the format and its version, and that ``dim``,
    ``metric``, ``n_neighbors``, ``id_type`` and ``n_tracks`` are valid and
    agree with the rows (first and last vector sizes, row positions).
    """
    try:
        tables = {
            name: [(r[1], r[2].upper()) for r in conn.execute(f"PRAGMA table_info({name})")]
            for name in SCHEMA
        }
    except sqlite3.DatabaseError as exc:
        raise StoreError(path, f"not a similarity store: {exc}") from None
    if not tables["meta"]:
        raise StoreError(path, "not a similarity store: it has no meta table")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") != FORMAT:
        raise StoreError(path, f"not a similarity store: meta format is {meta.get('format')!r}")
    version = meta.get("format_version")
    if not isinstance(version, str) or not _INT.fullmatch(version) or int(version) < 1:
        raise StoreError(path, f"meta format_version={version!r} is not a positive integer")
    if int(version) > FORMAT_VERSION:
        raise StoreError(
            path,
            f"store format version {version}; this sklearn_music reads up to {FORMAT_VERSION}",
        )
    for name, columns in SCHEMA.items():
        if tables[name] != columns:
            raise StoreError(path, f"table {name!r} has columns {tables[name]}, not {columns}")
    return _check_meta_values(conn, path, meta)


def _check_meta_values(conn, path, meta):
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise StoreError(path, f"meta key(s) {', '.join(map(repr, missing))} missing")
    for name, low, high in (
        ("dim", 1, 2**24),
        ("n_neighbors", 1, MAX_NEIGHBORS),
        ("n_tracks", 1, 2**62),
    ):
        value = meta[name]
        if not isinstance(value, str) or not _INT.fullmatch(value) or not low <= int(value) <= high:
            raise StoreError(path, f"meta {name}={value!r} is not an integer in [{low}, {high}]")
        meta[name] = int(value)
    if meta["metric"] not in METRICS:
        raise StoreError(path, f"meta metric={meta['metric']!r} is not one of {METRICS}")
    if meta["id_type"] not in ("str", "int"):
        raise StoreError(path, f"meta id_type={meta['id_type']!r} is not 'str' or 'int'")
    lo, hi = conn.execute("SELECT MIN(pos), MAX(pos) FROM tracks").fetchone()
    if (lo, hi) != (0, meta["n_tracks"] - 1):
        raise StoreError(
            path,
            f"meta n_tracks={meta['n_tracks']} but the track rows are at positions {lo} to {hi}",
        )
    for key, blob in conn.execute(
        "SELECT track_id, vector FROM tracks WHERE pos IN (?, ?)", (lo, hi)
    ):
        decode_vector(blob, meta["dim"], path, key)
    return meta


def insert_tracks(conn, start, keys, vectors, nbr_scores, nbr_keys, *, n_neighbors):
    """Insert tracks at positions ``start, start + 1, ...`` with their neighbour lists.

    ``vectors`` are float32 rows; ``nbr_scores[i]`` / ``nbr_keys[i]`` are the
    i-th track's neighbours, best first. The one routine behind both a build
    and an add.
    """
    conn.executemany(
        "INSERT INTO tracks(pos, track_id, vector, worst) VALUES (?, ?, ?, ?)",
        (
            (start + i, key, vectors[i].tobytes(), worst_score(nbr_scores[i], n_neighbors))
            for i, key in enumerate(keys)
        ),
    )
    conn.executemany(
        "INSERT INTO neighbors(track_id, data) VALUES (?, ?)",
        ((key, pack(nbr_scores[i], nbr_keys[i])) for i, key in enumerate(keys)),
    )


def update_lists(conn, lists, *, n_neighbors):
    """Replace stored neighbour lists: ``lists`` maps key -> (scores, keys)."""
    conn.executemany(
        "UPDATE neighbors SET data = ? WHERE track_id = ?",
        ((pack(s, ks), key) for key, (s, ks) in lists.items()),
    )
    conn.executemany(
        "UPDATE tracks SET worst = ? WHERE track_id = ?",
        ((worst_score(s, n_neighbors), key) for key, (s, _) in lists.items()),
    )


def check_key(key, id_type, path, where):
    """Return a stored TEXT key read from the file, or raise :class:`StoreError`."""
    if not isinstance(key, str) or "\0" in key or (id_type == "int" and not is_int_key(key)):
        raise StoreError(path, f"damaged track id {key!r} {where}")
    return key


def iter_keys(conn, path, id_type, n_tracks, chunk=10000):
    """Yield the stored TEXT keys in insertion order, ``chunk`` rows per query."""
    last, count = -1, 0
    while True:
        rows = conn.execute(
            "SELECT pos, track_id FROM tracks WHERE pos > ? ORDER BY pos LIMIT ?", (last, chunk)
        ).fetchall()
        if not rows:
            break
        for pos, key in rows:
            if pos != count:
                raise StoreError(path, f"track row {count} is missing (next is at {pos})")
            count += 1
            yield check_key(key, id_type, path, f"at position {pos}")
        last = rows[-1][0]
    if count != n_tracks:
        raise StoreError(path, f"meta n_tracks={n_tracks} but the file has {count} track rows")


def scan(conn, dim, batch_size, path, id_type="str"):
    """Yield (keys, float32 matrix, worst) over all stored tracks, in order, checked."""
    cur = conn.execute("SELECT track_id, vector, worst FROM tracks ORDER BY pos")
    while rows := cur.fetchmany(batch_size):
        keys = [check_key(r[0], id_type, path, "in the tracks table") for r in rows]
        worst = [r[2] for r in rows]
        for key, w in zip(keys, worst):
            if not isinstance(w, float) or math.isnan(w) or w == math.inf:
                raise StoreError(path, f"track {key!r} has a damaged worst score {w!r}")
        X = decode_vectors([r[1] for r in rows], keys, dim, path)
        yield keys, X, np.array(worst, dtype=np.float64)


def read_lists(conn, keys, path, id_type="str", chunk=500):
    """Yield (key, scores, neighbour keys) of stored tracks, ``chunk`` keys per query."""
    for lo in range(0, len(keys), chunk):
        part = keys[lo : lo + chunk]
        rows = conn.execute(
            f"SELECT track_id, data FROM neighbors WHERE track_id IN ({','.join('?' * len(part))})",
            part,
        ).fetchall()
        if len(rows) != len(part):
            found = {r[0] for r in rows}
            key = next(k for k in part if k not in found)
            raise StoreError(path, f"track {key!r} has a vector but no neighbour list")
        for key, blob in rows:
            yield (key, *unpack(blob, path, key, id_type))
