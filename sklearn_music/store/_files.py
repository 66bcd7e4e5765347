"""The store's file protocol: private copies, atomic publish, the writer lock.

A writer never changes the published file: it writes a private temporary
file beside it (named by :func:`sklearn_music.utils._atomic.temp_path`) and
publishes it with :func:`~sklearn_music.utils._atomic.atomic_write`. Writers of
one path are serialised by an advisory ``flock`` on ``<path>.lock``. A path that
is a symbolic link is resolved first (the lock, the temporary file and the
rename all act on the file the link points to, and the link stays).
"""

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path

from ..utils._atomic import atomic_write, resolve_target, temp_owner

_SUFFIX = ".tmp"


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


def clean_stale_tmp(path):
    """Remove temporary files left beside ``path`` by writers whose process is gone."""
    path = Path(path)
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        pid = temp_owner(path, entry.name, suffix=_SUFFIX)
        if pid is None or _pid_alive(pid):
            continue
        for p in (entry, entry.with_name(entry.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(entry)
    return removed


@contextlib.contextmanager
def writer_lock(path):
    """Serialise writers of one store path (advisory flock, POSIX only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = resolve_target(path)
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


@contextlib.contextmanager
def private_write(path, *, copy_current=False, lock=True):
    """Yield a connection to a private new file, in a transaction; publish it at ``path``.

    Parameters
    ----------
    path : pathlib.Path
        The store's path; its folder is created if missing.
    copy_current : bool
        Start from a copy of the current file (an update) instead of an empty one.
    lock : bool
        Take the writer lock around the rename; pass False when the caller holds it.
    """
    path = resolve_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(path)
    with atomic_write(path, suffix=_SUFFIX, lock=writer_lock(path) if lock else None) as tmp:
        if copy_current:
            shutil.copyfile(path, tmp)
        conn = _connect_private(tmp)
        try:
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()


def connect_readonly(path):
    """Open a published store without locks or journal files (``immutable``)."""
    uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None)
