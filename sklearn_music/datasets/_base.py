"""Data home, verified downloads and safe unpacking shared by the fetchers."""

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from ..utils._atomic import atomic_write
from ..utils._sklearn_compat import validate_params

__all__ = ["clear_data_home", "get_data_home"]

DATA_HOME_ENV = "SKLEARN_MUSIC_DATA"
_CHUNK = 1 << 20


@validate_params({"data_home": [str, os.PathLike, None]}, prefer_skip_nested_validation=True)
def get_data_home(data_home=None):
    """Return the folder where sklearn_music keeps downloaded data sets, creating it.

    The folder is, in order of precedence: ``data_home`` if given, the environment
    variable ``SKLEARN_MUSIC_DATA`` if set, else ``~/sklearn_music_data``. A leading
    ``~`` is expanded.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        The folder to use; None for the default described above.

    Returns
    -------
    data_home : str
        The path of the data home folder (it exists on return).

    See Also
    --------
    clear_data_home : Delete the data home and everything in it.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_music.datasets import get_data_home
    >>> parent = tempfile.mkdtemp()
    >>> home = get_data_home(os.path.join(parent, "music"))
    >>> os.path.isdir(home)
    True
    >>> import shutil; shutil.rmtree(parent)  # clean up
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or os.path.join("~", "sklearn_music_data")
    data_home = os.path.expanduser(os.fspath(data_home))
    os.makedirs(data_home, exist_ok=True)
    return data_home


@validate_params({"data_home": [str, os.PathLike, None]}, prefer_skip_nested_validation=True)
def clear_data_home(data_home=None):
    """Delete the data home folder and every data set cached in it.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        The folder to delete; None for the default of :func:`get_data_home`.

    See Also
    --------
    get_data_home : Where the data sets are cached.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_music.datasets import clear_data_home, get_data_home
    >>> parent = tempfile.mkdtemp()
    >>> home = get_data_home(os.path.join(parent, "music"))
    >>> clear_data_home(home)
    >>> os.path.exists(home)
    False
    >>> os.rmdir(parent)  # clean up
    """
    data_home = get_data_home(data_home)
    shutil.rmtree(data_home)


def _parse_checksum(checksum):
    """Return ``(algorithm, hexdigest)`` from a sha256 hex string or an (algo, hex) pair."""
    if checksum is None:
        return None
    if isinstance(checksum, str):
        algorithm, digest = "sha256", checksum
    else:
        try:
            algorithm, digest = checksum
        except (TypeError, ValueError):
            raise ValueError(
                "checksum must be a sha256 hex string or a pair (algorithm, hex digest) "
                f"such as ('md5', '...'); got {checksum!r}."
            ) from None
    algorithm = str(algorithm).lower()
    if algorithm not in hashlib.algorithms_guaranteed:
        raise ValueError(
            f"checksum algorithm {algorithm!r} is not supported; use one of "
            f"{sorted(hashlib.algorithms_guaranteed)}."
        )
    return algorithm, str(digest).lower()


def _copy_stream(resp, out, hasher, *, desc, verbose):
    """Copy an HTTP response into a file in chunks, hashing and showing progress."""
    total = resp.headers.get("Content-Length")
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=desc)
    received = 0
    try:
        while chunk := resp.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
            if hasher is not None:
                hasher.update(chunk)
            if progress is not None:
                progress.update(len(chunk))
    finally:
        if progress is not None:
            progress.close()
    return received, int(total) if total and total.isdigit() else None


def _download(url, target, *, checksum=None, timeout=60.0, verbose=False):
    """Stream ``url`` into ``target``, verified, atomically.

    The bytes go to a hidden temporary file in ``target``'s folder while their digest is
    computed; only a complete, verified download is renamed to ``target``. On any failure
    (network error, checksum mismatch, interruption) the temporary file is removed and
    the error propagates, so no partial file is left behind.
    """
    expected = _parse_checksum(checksum)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, suffix=".part") as tmp:
        hasher = hashlib.new(expected[0]) if expected else None
        try:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                received, declared = _copy_stream(
                    resp, out, hasher, desc=f"Downloading {target.name}", verbose=verbose
                )
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise  # the cache folder itself: the error names the file
            raise OSError(_network_error(url, target, exc)) from exc
        if declared is not None and received < declared:
            raise OSError(
                f"Download of {url} stopped after {received} of the {declared} bytes "
                "the server announced (connection cut?); the partial file was deleted. "
                "Fetch again, or pass a mirror's url or a local copy as a file:// url."
            )
        if hasher is not None and hasher.hexdigest() != expected[1]:
            raise OSError(
                f"Download of {url} has {expected[0]} checksum {hasher.hexdigest()}, "
                f"expected {expected[1]}: the file is corrupted or not the expected one; "
                "it was deleted."
            )
    return target


def _network_error(url, target, exc):
    """A download error's message: the URL, the host, the cause and what to do."""
    if isinstance(exc, urllib.error.HTTPError):
        cause = f"HTTP error {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        cause = str(exc.reason)
    else:
        cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    host = urllib.parse.urlsplit(url).hostname or url
    return (
        f"Could not download {url} from {host!r}: {cause}. Check the network, or "
        f"download the archive yourself and pass url='file:///path/to/{target.name}' "
        f"(or the url of a mirror); it is kept in the cache folder {str(target.parent)!r}."
    )


def _check_member(member, dest):
    """Reject archive members that would land outside ``dest`` or are not plain."""
    name = member.name
    parts = Path(name).parts
    if os.path.isabs(name) or ".." in parts:
        raise OSError(f"Archive member {name!r} points outside the extraction folder.")
    if not (member.isfile() or member.isdir()):
        raise OSError(
            f"Archive member {name!r} is a link or a special file; refusing to extract it."
        )
    resolved = (dest / name).resolve()
    if dest.resolve() not in (resolved, *resolved.parents):
        raise OSError(f"Archive member {name!r} points outside the extraction folder.")


def _extract_tar(archive, dest, *, source=None):
    """Extract a tar archive into the new folder ``dest`` safely and atomically.

    Every member is checked first (no absolute path, no ``..``, no link, no device);
    extraction then uses ``tarfile``'s ``"data"`` filter as a second guard. The archive
    is unpacked into a hidden temporary folder next to ``dest`` and renamed to ``dest``
    only when complete; on failure the temporary folder is removed. An unreadable
    archive (truncated, an HTML page, not a tar) raises an :class:`OSError` naming
    ``archive`` and ``source`` (its URL).
    """
    dest = Path(dest)
    with atomic_write(dest, suffix=".part", directory=True) as tmp:
        try:
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                for member in members:
                    _check_member(member, tmp)
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            if isinstance(exc, OSError) and (
                exc.errno is not None or str(exc).startswith("Archive member")
            ):
                raise  # a system error (disk full...) or an unsafe member: named already
            raise OSError(_archive_error(archive, source, exc)) from exc
    return dest


def _archive_error(archive, source, exc):
    """An unreadable archive's message: which file, from where, why, what to do."""
    with open(archive, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        cause = "it is an HTML or XML page (an error or login page?), not a tar archive"
    else:
        cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        cause = f"it is truncated or not a tar archive ({cause})"
    origin = f" downloaded from {source}" if source else ""
    return (
        f"Cannot unpack {str(archive)!r}{origin}: {cause}. The file was deleted; fetch "
        "again, or pass a mirror's url or a local copy as a file:// url."
    )
