"""The store's file format: schema, meta keys, track ids, vectors, neighbour blobs.

See the package documentation (:mod:`sklearn_music.store`) for the layout.
"""

import datetime
import math
import numbers
import struct
import zlib

import numpy as np

from ..utils._checks import check_nonzero_rows

FORMAT = "sklearn_music.SimilarityStore"
FORMAT_VERSION = 2  # 2: CRC-32 of every row and of the meta values; 1 (0.1.0): none
METRICS = ("cosine", "euclidean")
MAX_NEIGHBORS = 65535  # the count is packed as uint16
META_KEYS = ("format", "format_version", "dim", "metric", "n_neighbors", "id_type", "n_tracks")
# format version -> table -> [(column, declared type)]
_V1 = {
    "meta": [("key", "TEXT"), ("value", "TEXT")],
    "tracks": [("pos", "INTEGER"), ("track_id", "TEXT"), ("vector", "BLOB"), ("worst", "REAL")],
    "neighbors": [("track_id", "TEXT"), ("data", "BLOB")],
}
SCHEMAS = {
    1: _V1,
    2: {
        "meta": _V1["meta"],
        "tracks": [*_V1["tracks"], ("crc", "INTEGER")],
        "neighbors": [*_V1["neighbors"], ("crc", "INTEGER")],
    },
}


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


# --------------------------------------------------------------------------- #
# the packed neighbour blob
# --------------------------------------------------------------------------- #
def pack(scores, keys):
    """uint16 count n, n float32 scores, then the n keys joined by NUL (UTF-8)."""
    n = len(keys)
    return struct.pack(f"<H{n}f", n, *scores) + "\0".join(keys).encode("utf-8")


def unpack(blob):
    """Return (scores, keys) from a blob made by :func:`pack` (unchecked: see
    :func:`._read.unpack_checked`)."""
    (n,) = struct.unpack_from("<H", blob, 0)
    if n == 0:
        return (), []
    scores = struct.unpack_from(f"<{n}f", blob, 2)
    keys = blob[2 + 4 * n :].decode("utf-8").split("\0")
    return scores, keys


def track_crc(pos, key, vector, worst):
    """CRC-32 of a ``tracks`` row (format 2): position, id, vector and worst score."""
    head = struct.pack("<qd", pos, worst)
    return zlib.crc32(head + key.encode("utf-8", "surrogatepass") + b"\0" + vector)


def list_crc(key, data):
    """CRC-32 of a ``neighbors`` row (format 2): the id and the packed list."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass") + b"\0" + data)


def meta_crc(meta):
    """CRC-32 of the meta values (format 2), every key but ``checksum``, as text."""
    text = "\n".join(f"{k}\t{v}" for k, v in sorted(meta.items()) if k != "checksum")
    return str(zlib.crc32(text.encode("utf-8", "surrogatepass")))


def worst_score(scores, n_neighbors):
    """The ``worst`` column: the last score of a full list, else -inf."""
    return float(scores[-1]) if len(scores) >= n_neighbors else -math.inf


# --------------------------------------------------------------------------- #
# schema, meta and rows
# --------------------------------------------------------------------------- #
def create_schema(conn):
    """Create the three tables (of the current format version) in an empty database."""
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    conn.execute(
        "CREATE TABLE tracks(pos INTEGER PRIMARY KEY, track_id TEXT NOT NULL UNIQUE, "
        "vector BLOB NOT NULL, worst REAL NOT NULL, crc INTEGER NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE neighbors(track_id TEXT PRIMARY KEY, data BLOB NOT NULL, "
        "crc INTEGER NOT NULL) WITHOUT ROWID"
    )


def write_meta(conn, *, version=FORMAT_VERSION, **values):
    """Write the format keys, ``created``, the package version and ``values``.

    ``version`` is the file's format version: an update keeps the version of
    the file it changes. From version 2 on, ``checksum`` covers every meta value.
    """
    from .. import __version__

    meta = {
        "format": FORMAT,
        "format_version": str(version),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sklearn_music_version": __version__,
    }
    meta.update({k: str(v) for k, v in values.items()})
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", meta.items())
    if version >= 2:
        stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('checksum', ?)", (meta_crc(stored),)
        )


def insert_tracks(conn, start, keys, vectors, nbr_scores, nbr_keys, *, n_neighbors, version):
    """Insert tracks at positions ``start, start + 1, ...`` with their neighbour lists.

    ``vectors`` are float32 rows; ``nbr_scores[i]`` / ``nbr_keys[i]`` are the
    i-th track's neighbours, best first. The one routine behind both a build
    and an add; rows of format ``version`` 2 carry their checksum.
    """
    rows = []
    for i, key in enumerate(keys):
        blob, worst = vectors[i].tobytes(), worst_score(nbr_scores[i], n_neighbors)
        rows.append((start + i, key, blob, worst, track_crc(start + i, key, blob, worst)))
    lists = [(key, pack(nbr_scores[i], nbr_keys[i])) for i, key in enumerate(keys)]
    if version >= 2:
        conn.executemany(
            "INSERT INTO tracks(pos, track_id, vector, worst, crc) VALUES (?, ?, ?, ?, ?)", rows
        )
        conn.executemany(
            "INSERT INTO neighbors(track_id, data, crc) VALUES (?, ?, ?)",
            ((key, data, list_crc(key, data)) for key, data in lists),
        )
    else:
        conn.executemany(
            "INSERT INTO tracks(pos, track_id, vector, worst) VALUES (?, ?, ?, ?)",
            (r[:4] for r in rows),
        )
        conn.executemany("INSERT INTO neighbors(track_id, data) VALUES (?, ?)", lists)


def update_lists(conn, lists, *, n_neighbors, version):
    """Replace stored neighbour lists: ``lists`` maps key -> (scores, keys)."""
    packed = {key: pack(s, ks) for key, (s, ks) in lists.items()}
    worst = {key: worst_score(s, n_neighbors) for key, (s, _) in lists.items()}
    if version < 2:
        conn.executemany(
            "UPDATE neighbors SET data = ? WHERE track_id = ?",
            ((data, key) for key, data in packed.items()),
        )
        conn.executemany(
            "UPDATE tracks SET worst = ? WHERE track_id = ?", ((w, k) for k, w in worst.items())
        )
        return
    conn.create_function("sm_track_crc", 4, track_crc, deterministic=True)
    conn.executemany(
        "UPDATE neighbors SET data = ?, crc = ? WHERE track_id = ?",
        ((data, list_crc(key, data), key) for key, data in packed.items()),
    )
    conn.executemany(
        "UPDATE tracks SET worst = ?, crc = sm_track_crc(pos, track_id, vector, ?) "
        "WHERE track_id = ?",
        ((w, w, key) for key, w in worst.items()),
    )


def replace_user_lists(conn, rows):
    """(Re)create the ``users`` table from ``(user key, scores, track keys)`` rows.

    An optional table: readers that do not know it ignore it. Its rows carry no
    CRC (they are a cache that ``recommend_all`` rewrites whole).
    """
    conn.execute("DROP TABLE IF EXISTS users")
    conn.execute("CREATE TABLE users(user_id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID")
    conn.executemany(
        "INSERT INTO users(user_id, data) VALUES (?, ?)",
        ((user, pack(scores, keys)) for user, scores, keys in rows),
    )
