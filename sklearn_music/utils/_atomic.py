"""Atomic writes: a file (or folder) appears at its path complete, or not at all.

:func:`atomic_write` yields a fresh hidden temporary path beside the target
(``.<name>.<pid>.<random><suffix>``); when the block ends without an exception
the temporary file is ``fsync``-ed, renamed onto the target with
:func:`os.replace` and the folder is ``fsync``-ed. On any exception, including
:class:`KeyboardInterrupt`, the temporary file or folder is removed and the
target is left as it was. The pid in the name lets a later writer tell a
temporary file of a live process from one left by a killed one
(:func:`temp_owner`).
"""

import contextlib
import os
import secrets
import shutil
from pathlib import Path

__all__ = [
    "atomic_write",
    "fsync_dir",
    "fsync_file",
    "resolve_target",
    "temp_owner",
    "temp_path",
]


def resolve_target(target):
    """Return the path that writing ``target`` must replace: symbolic links followed.

    ``os.replace`` onto a link's name replaces the link itself, so the file it
    points to would never see the new content. A dangling link resolves to
    the path it names (the file is created there).
    """
    target = Path(target)
    if not target.is_symlink():
        return target
    return Path(os.path.realpath(target))


def temp_path(target, *, suffix=".tmp"):
    """Return a new hidden temporary name in ``target``'s folder.

    The name is ``.<target name>.<pid>.<12 hex digits><suffix>``.
    """
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}{suffix}")


def temp_owner(target, name, *, suffix=".tmp"):
    """Return the pid in ``name`` if :func:`temp_path` made it for ``target``, else None."""
    prefix = f".{Path(target).name}."
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    middle = name[len(prefix) : len(name) - len(suffix)].split(".")
    if len(middle) != 2 or not middle[0].isdigit():
        return None
    return int(middle[0])


def fsync_file(path):
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory):
    """Flush a folder's entries (a rename in it) to disk; a no-op outside POSIX."""
    if os.name != "posix":  # pragma: no cover - directories cannot be fsynced there
        return
    fsync_file(directory)


def _remove(tmp):
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(target, *, suffix=".tmp", directory=False, lock=None):
    """Yield a temporary path and publish it onto ``target`` if the block succeeds.

    Parameters
    ----------
    target : str or path-like
        The file (or folder) to create or replace; its folder must exist. A
        symbolic link is followed (:func:`resolve_target`): the file it points
        to is replaced and the link is kept.
    suffix : str, default=".tmp"
        Ending of the temporary name.
    directory : bool, default=False
        If True, the temporary path is created as an empty folder and renamed
        onto ``target`` (which must not exist or be an empty folder); its
        files are not fsync-ed one by one.
    lock : context manager, default=None
        Held around the rename (e.g. a writer lock), entered only on success.

    Yields
    ------
    tmp : pathlib.Path
        Where to write; the caller must have closed it when the block ends.
    """
    target = resolve_target(target)
    tmp = temp_path(target, suffix=suffix)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if not directory:
            fsync_file(tmp)
        with lock if lock is not None else contextlib.nullcontext():
            os.replace(tmp, target)
            fsync_dir(target.parent)
    except BaseException:
        _remove(tmp)
        raise
