"""Reading a store from disk, checked: :class:`StoreError`, the file header, the meta
values and schema, and every row a query reads.

Nothing read from the file is trusted: a damaged or tampered store gives either
the right answer or a :class:`StoreError` naming the file and the cause. From
format version 2 on, every row and the meta values carry a CRC-32 (see
:mod:`._format`), so a changed byte in a vector or a neighbour list is caught
too; stores of version 1 (sklearn_music 0.1) are checked for structure only.
"""

import contextlib
import functools
import math
import re
import sqlite3
import struct
from typing import NamedTuple

import numpy as np

from . import _format as fmt

_INT = re.compile(r"[0-9]{1,18}")


class StoreError(ValueError):
    """A file that is not a similarity store, or a damaged or tampered one.

    Raised when a store is opened (not an SQLite file, a truncated file, an
    unknown schema or format version, a missing or invalid meta value, meta
    values that disagree with the rows or their checksum) and when a query
    reads a damaged row (a vector or neighbour list that does not decode or
    whose checksum does not match, pages that SQLite reports as malformed).
    A subclass of :class:`ValueError`; the message names the file and the cause.

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


class Info(NamedTuple):
    """What the row checks need to know about an open store."""

    path: str
    version: int
    dim: int
    metric: str
    id_type: str
    n_tracks: int

    @property
    def track_columns(self):
        return "pos, track_id, vector, worst" + (", crc" if self.version >= 2 else "")

    @property
    def list_columns(self):
        return "data" + (", crc" if self.version >= 2 else "")


# --------------------------------------------------------------------------- #
# SQLite's own damage reports
# --------------------------------------------------------------------------- #
@contextlib.contextmanager
def damage_as_store_error(path):
    """Turn SQLite's report of a damaged file into a :class:`StoreError` naming ``path``."""
    try:
        yield
    except sqlite3.ProgrammingError:
        raise
    except sqlite3.DatabaseError as exc:
        raise StoreError(path, f"damaged file ({exc})") from None


def checked(method):
    """Run a query method with SQLite's errors turned into :class:`StoreError`."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.path, f"damaged file ({exc})") from None

    return wrapper


# --------------------------------------------------------------------------- #
# the file and its meta table
# --------------------------------------------------------------------------- #
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
    """Return the checked meta values and the store's :class:`Info`.

    Checks the schema, the format and its version, the meta checksum, and that
    ``dim``, ``metric``, ``n_neighbors``, ``id_type`` and ``n_tracks`` are valid
    and agree with the rows (row positions, first and last rows).
    """
    try:
        tables = {
            name: [(r[1], r[2].upper()) for r in conn.execute(f"PRAGMA table_info({name})")]
            for name in fmt.SCHEMAS[1]
        }
    except sqlite3.DatabaseError as exc:
        raise StoreError(path, f"not a similarity store: {exc}") from None
    if not tables["meta"]:
        raise StoreError(path, "not a similarity store: it has no meta table")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") != fmt.FORMAT:
        raise StoreError(path, f"not a similarity store: meta format is {meta.get('format')!r}")
    version = meta.get("format_version")
    if not isinstance(version, str) or not _INT.fullmatch(version) or int(version) < 1:
        raise StoreError(path, f"meta format_version={version!r} is not a positive integer")
    version = int(version)
    if version > fmt.FORMAT_VERSION:
        raise StoreError(
            path,
            f"store format version {version}; this sklearn_music reads up to "
            f"{fmt.FORMAT_VERSION} (upgrade sklearn_music)",
        )
    for name, columns in fmt.SCHEMAS[version].items():
        if tables[name] != columns:
            raise StoreError(path, f"table {name!r} has columns {tables[name]}, not {columns}")
    if version >= 2 and meta.get("checksum") != fmt.meta_crc(meta):
        raise StoreError(path, "the meta values do not match their checksum (edited or damaged)")
    meta = _check_meta_values(path, meta)
    info = Info(str(path), version, meta["dim"], meta["metric"], meta["id_type"], meta["n_tracks"])
    # two queries: SQLite answers a lone MIN or MAX of the key from the b-tree's ends
    (lo,) = conn.execute("SELECT MIN(pos) FROM tracks").fetchone()
    (hi,) = conn.execute("SELECT MAX(pos) FROM tracks").fetchone()
    if (lo, hi) != (0, info.n_tracks - 1):
        raise StoreError(
            path,
            f"meta n_tracks={info.n_tracks} but the track rows are at positions {lo} to {hi}",
        )
    rows = conn.execute(f"SELECT {info.track_columns} FROM tracks WHERE pos IN (?, ?)", (lo, hi))
    for row in rows:
        track_row(info, row)
    return meta, info


def _check_meta_values(path, meta):
    missing = [k for k in fmt.META_KEYS if k not in meta]
    if missing:
        raise StoreError(path, f"meta key(s) {', '.join(map(repr, missing))} missing")
    for name, low, high in (
        ("dim", 1, 2**24),
        ("n_neighbors", 1, fmt.MAX_NEIGHBORS),
        ("n_tracks", 1, 2**62),
    ):
        value = meta[name]
        if not isinstance(value, str) or not _INT.fullmatch(value) or not low <= int(value) <= high:
            raise StoreError(path, f"meta {name}={value!r} is not an integer in [{low}, {high}]")
        meta[name] = int(value)
    if meta["metric"] not in fmt.METRICS:
        raise StoreError(path, f"meta metric={meta['metric']!r} is not one of {fmt.METRICS}")
    if meta["id_type"] not in ("str", "int"):
        raise StoreError(path, f"meta id_type={meta['id_type']!r} is not 'str' or 'int'")
    return meta


# --------------------------------------------------------------------------- #
# rows
# --------------------------------------------------------------------------- #
def is_int_key(key):
    """True if ``key`` is the TEXT form of an int id (as ``id_to_key`` writes it)."""
    if not isinstance(key, str) or not re.fullmatch(r"-?[0-9]+", key):
        return False
    return key == str(int(key))


def check_key(info, key, where):
    """Return a stored TEXT key read from the file, or raise :class:`StoreError`."""
    if not isinstance(key, str) or "\0" in key or (info.id_type == "int" and not is_int_key(key)):
        raise StoreError(info.path, f"damaged track id {key!r} {where}")
    return key


def _track_fields(info, row):
    """Check a ``tracks`` row ``(pos, track_id, vector, worst[, crc])`` but the vector's
    values; return its key."""
    pos, key, blob, worst = row[:4]
    key = check_key(info, key, f"at position {pos}")
    if not isinstance(blob, bytes) or len(blob) != 4 * info.dim:
        size = f"{len(blob)} bytes" if isinstance(blob, bytes) else f"a {type(blob).__name__}"
        raise StoreError(
            info.path,
            f"the vector of track {key!r} has {size}, not {4 * info.dim} ({info.dim} float32)",
        )
    if not isinstance(worst, float) or worst != worst or worst == math.inf:
        raise StoreError(info.path, f"track {key!r} has a damaged worst score {worst!r}")
    if info.version >= 2 and row[4] != fmt.track_crc(pos, key, blob, worst):
        raise StoreError(info.path, f"the row of track {key!r} does not match its checksum")
    return key


def _bad_vectors(X, metric):
    """Row mask of vectors that are non-finite or (cosine) all zeros."""
    bad = ~np.isfinite(X).all(axis=1)
    if metric == "cosine":
        bad |= ~X.any(axis=1)
    return bad


def track_row(info, row):
    """Check a ``tracks`` row ``(pos, track_id, vector, worst[, crc])``.

    Returns
    -------
    key, vector, worst : str, ndarray of shape (dim,), float
    """
    key = _track_fields(info, row)
    v = np.frombuffer(row[2], dtype="<f4")
    sq = float(np.dot(v, v))  # finite and > 0 for a finite, non-zero vector (fast path)
    if not (0.0 < sq < math.inf) and _bad_vectors(v[None, :], info.metric)[0]:
        raise StoreError(info.path, f"the vector of track {key!r} is non-finite or zero")
    return key, v, row[3]


def list_row(info, key, row):
    """Check a ``neighbors`` row ``(data[, crc])`` of track ``key``; return (scores, keys)."""
    blob = row[0]

    def bad(cause):
        return StoreError(info.path, f"the neighbour list of track {key!r} is damaged ({cause})")

    if not isinstance(blob, bytes) or len(blob) < 2:
        raise bad("too short" if isinstance(blob, bytes) else f"a {type(blob).__name__}")
    if info.version >= 2 and row[1] != fmt.list_crc(key, blob):
        raise bad("it does not match its checksum")
    n = blob[0] | (blob[1] << 8)
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
    prev = math.inf
    for x in scores:  # NaN fails every comparison
        if not x <= prev:
            raise bad("scores are not best first")
        prev = x
    if not (math.isfinite(scores[0]) and math.isfinite(prev)):
        raise bad("scores are not finite")
    if len(set(keys)) != n or key in keys:
        raise bad("repeated ids")
    if info.id_type == "int" and not all(is_int_key(k) for k in keys):
        raise bad("ids are not integers")
    return scores, keys


def iter_keys(conn, info, chunk=10000):
    """Yield the stored TEXT keys in insertion order, ``chunk`` rows per query."""
    last, count = -1, 0
    while True:
        rows = conn.execute(
            f"SELECT {info.track_columns} FROM tracks WHERE pos > ? ORDER BY pos LIMIT ?",
            (last, chunk),
        ).fetchall()
        if not rows:
            break
        for row in rows:
            if row[0] != count:
                raise StoreError(info.path, f"track row {count} is missing (next is at {row[0]})")
            count += 1
            yield _track_fields(info, row)
        last = rows[-1][0]
    if count != info.n_tracks:
        raise StoreError(
            info.path, f"meta n_tracks={info.n_tracks} but the file has {count} track rows"
        )


def scan(conn, info, batch_size):
    """Yield (keys, float32 matrix, worst) over all stored tracks, in order, checked."""
    cur = conn.execute(f"SELECT {info.track_columns} FROM tracks ORDER BY pos")
    while rows := cur.fetchmany(batch_size):
        keys = [_track_fields(info, row) for row in rows]
        X = np.frombuffer(b"".join(row[2] for row in rows), dtype="<f4")
        X = X.reshape(len(rows), info.dim)
        bad = _bad_vectors(X, info.metric)
        if bad.any():
            key = keys[int(np.flatnonzero(bad)[0])]
            raise StoreError(info.path, f"the vector of track {key!r} is non-finite or zero")
        yield keys, X, np.array([row[3] for row in rows], dtype=np.float64)


def read_lists(conn, info, keys, chunk=500):
    """Yield (key, scores, neighbour keys) of stored tracks, ``chunk`` keys per query."""
    for lo in range(0, len(keys), chunk):
        part = keys[lo : lo + chunk]
        rows = conn.execute(
            f"SELECT track_id, {info.list_columns} FROM neighbors "
            f"WHERE track_id IN ({','.join('?' * len(part))})",
            part,
        ).fetchall()
        if len(rows) != len(part):  # a key without a list, or a key given twice
            found = {r[0] for r in rows}
            missing = [k for k in part if k not in found]
            if missing:
                raise StoreError(
                    info.path, f"track {missing[0]!r} has a vector but no neighbour list"
                )
        for row in rows:
            yield (row[0], *list_row(info, row[0], row[1:]))
