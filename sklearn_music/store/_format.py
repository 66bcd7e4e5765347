"""The store's file format: schema, meta keys, track ids, vectors, neighbour blobs.

See the package documentation (:mod:`sklearn_music.store`) for the layout.
"""

import datetime
import math
import numbers
import sqlite3
import struct

import numpy as np

from ..utils._checks import check_nonzero_rows

FORMAT = "sklearn_music.SimilarityStore"
FORMAT_VERSION = 1
METRICS = ("cosine", "euclidean")
MAX_NEIGHBORS = 65535  # the count is packed as uint16


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
        check_nonzero_rows(X, what=what)
    return np.ascontiguousarray(X)


def check_tracks(vectors, track_ids, *, metric, dim=None, kind=None):
    """Check vectors and ids together; return (float32 matrix, TEXT keys, id kind)."""
    X = check_vectors(vectors, dim=dim, metric=metric)
    keys, kind = normalize_ids(track_ids, kind=kind)
    if len(keys) != X.shape[0]:
        raise ValueError(f"vectors has {X.shape[0]} rows but track_ids has {len(keys)} ids")
    return X, keys, kind


def decode_vector(blob):
    """One stored vector blob as a float32 array (read-only view)."""
    return np.frombuffer(blob, dtype="<f4")


def decode_vectors(blobs, dim):
    """Stored vector blobs as a float32 matrix of shape (len(blobs), dim)."""
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim)


# --------------------------------------------------------------------------- #
# the packed neighbour blob
# --------------------------------------------------------------------------- #
def pack(scores, keys):
    """uint16 count n, n float32 scores, then the n keys joined by NUL (UTF-8)."""
    n = len(keys)
    return struct.pack(f"<H{n}f", n, *scores) + "\0".join(keys).encode("utf-8")


def unpack(blob):
    """Return (scores, keys) from a blob made by :func:`pack`."""
    (n,) = struct.unpack_from("<H", blob, 0)
    if n == 0:
        return (), []
    scores = struct.unpack_from(f"<{n}f", blob, 2)
    keys = blob[2 + 4 * n :].decode("utf-8").split("\0")
    return scores, keys


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


def read_meta(conn, path):
    """Return the meta table as a dict; raise ValueError if it is not a store we can read."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{str(path)!r} is not a similarity store ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a similarity store")
    if int(meta["format_version"]) > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has store format version {meta['format_version']}; "
            f"this sklearn_music reads up to {FORMAT_VERSION}"
        )
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


def iter_keys(conn, chunk=10000):
    """Yield the stored TEXT keys in insertion order, ``chunk`` rows per query."""
    last = -1
    while True:
        rows = conn.execute(
            "SELECT pos, track_id FROM tracks WHERE pos > ? ORDER BY pos LIMIT ?", (last, chunk)
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        for _, key in rows:
            yield key


def scan(conn, dim, batch_size):
    """Yield (keys, float32 matrix, worst) over all stored tracks, in order."""
    cur = conn.execute("SELECT track_id, vector, worst FROM tracks ORDER BY pos")
    while rows := cur.fetchmany(batch_size):
        keys = [r[0] for r in rows]
        worst = np.array([r[2] for r in rows], dtype=np.float64)
        yield keys, decode_vectors([r[1] for r in rows], dim), worst


def read_lists(conn, keys, chunk=500):
    """Yield (key, scores, neighbour keys) of stored tracks, ``chunk`` keys per query."""
    for lo in range(0, len(keys), chunk):
        part = keys[lo : lo + chunk]
        rows = conn.execute(
            f"SELECT track_id, data FROM neighbors WHERE track_id IN ({','.join('?' * len(part))})",
            part,
        ).fetchall()
        for key, blob in rows:
            yield (key, *unpack(blob))
