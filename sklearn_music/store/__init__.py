"""A precomputed similar-track store in one SQLite file.

Serving "tracks like this one" at scale needs two things: the similarities
computed ahead of time, and a fast key-value lookup. :class:`SimilarityStore`
does both: :meth:`SimilarityStore.build` computes every track's top-k most
similar tracks once (through :class:`~sklearn_music.NearestTracks`) and writes
them, with the track vectors, to an SQLite database (standard library, one
file, no server). Serving :meth:`~SimilarityStore.similar` is then a single
primary-key lookup that returns a packed blob.

File layout (format version 2)
------------------------------
``meta(key, value)``
    ``format``, ``format_version``, ``dim``, ``metric``, ``n_neighbors``,
    ``id_type`` (``"str"`` or ``"int"``), ``n_tracks``, ``created`` (ISO 8601,
    UTC), ``sklearn_music_version`` and ``checksum`` (CRC-32 of the other
    ``key<TAB>value`` lines, sorted, joined by newlines).
``tracks(pos INTEGER PRIMARY KEY, track_id TEXT UNIQUE, vector BLOB, worst REAL, crc INTEGER)``
    the vectors as little-endian float32 blobs, at positions ``0 .. n_tracks - 1``
    in insertion order; ``worst`` is the score of the track's last stored
    neighbour (``-inf`` while its list is shorter than ``n_neighbors``), which
    lets :meth:`~SimilarityStore.add` find the lists that a new track enters
    without reading them; ``crc`` is the CRC-32 of ``pos`` (int64) and
    ``worst`` (float64), little-endian, then the UTF-8 id, ``"\\0"`` and the vector.
``neighbors(track_id TEXT PRIMARY KEY, data BLOB, crc INTEGER) WITHOUT ROWID``
    one row per track: ``uint16`` count ``n``, ``n`` float32 scores (best
    first), then the ``n`` neighbour ids as UTF-8 joined by ``"\\0"``; ``crc`` is
    the CRC-32 of the UTF-8 id, ``"\\0"`` and ``data``.

Format version 1 (sklearn_music 0.1) has no ``crc`` columns and no meta
``checksum``; such stores are read and updated in place of format 1.

Damaged and tampered files
--------------------------
Nothing read from the file is trusted. Opening a store checks the SQLite
header (a truncated file is caught by its declared page count), the schema, the
format version, the meta checksum and values (``dim``, ``metric`` among the
known ones, ``n_tracks`` against the row positions, the first and last rows);
every row a query reads is checked against its checksum and decoded
strictly; a track present in one table but missing from the other, and pages
that SQLite reports as malformed, are reported too. Each of these raises
:class:`StoreError` (a :class:`ValueError`) naming the file and the cause: a
damaged store gives the right answer or that error, never a wrong answer.
Rebuild the store from the vectors (or restore a copy) when it is raised. The
checksums catch damage and casual edits, not a deliberate forger.

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

A store path that is a symbolic link is followed: the temporary file is made
beside the real file, which the rename replaces; the link stays.

This relies on POSIX rename semantics (an open file survives its replacement);
on Windows, replacing a store that a reader holds open fails.

Writers to the same path are serialised with an advisory ``flock`` on
``<path>.lock`` (POSIX only): ``add`` reads the current file and publishes its
result under the lock, and ``build`` publishes under it, so no update is lost
to a race (a ``build`` that publishes after an ``add`` replaces it, as a
rebuild should).

Why no write-ahead log
----------------------
SQLite's WAL mode (like its rollback journal) keys its ``-wal``/``-shm`` side
files by file *name*, so a database replaced by a rename while connections are
open would share those files with its successor, one of SQLite's documented
ways to corrupt a database. Copy-on-write plus rename gives readers what WAL
would -- never blocked by a writer -- without that hazard, so the published
file uses no journal at all.
"""

from ._read import StoreError
from ._store import SimilarityStore

__all__ = ["SimilarityStore", "StoreError"]
