"""The GTZAN genre collection: :func:`fetch_gtzan`."""

import os
from numbers import Real
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..utils._sklearn_compat import Interval, validate_params
from ._base import _download, _extract_tar, get_data_home
from ._folder import load_audio_folder

__all__ = ["fetch_gtzan"]

# The archive as published by its author (G. Tzanetakis, marsyas.info), and its SHA-256
# as recorded in torchaudio/datasets/gtzan.py (pytorch/audio). mirdata records the MD5
# 5b3d6dddb579ab49814ab86dba69e7c7 for the same URL.
GTZAN_URL = "http://opihi.cs.uvic.ca/sound/genres.tar.gz"
GTZAN_SHA256 = "24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6"

_DESCR = """\
GTZAN genre collection
----------------------

**Data set characteristics:**

    :Number of tracks: 1000 (100 per genre)
    :Genres: blues, classical, country, disco, hiphop, jazz, metal, pop, reggae, rock
    :Clip: 30 s, 22050 Hz, mono, 16-bit (``.au`` or ``.wav`` files, by copy)
    :Size: about 1.2 GB

Collected by G. Tzanetakis in 2000-2001 from CDs, radio and microphone recordings, and
used in "Musical genre classification of audio signals", G. Tzanetakis and P. Cook, IEEE
Transactions on Speech and Audio Processing, 2002. The collection has known faults
(repeated clips, mislabelings, distortions; B. Sturm, 2013), so use artist-aware splits
and read results with care. See http://marsyas.info/downloads/datasets.html before
publishing results.
"""


def _genres_folder(unpacked):
    """The folder holding the genre folders inside an unpacked archive."""
    if (unpacked / "genres").is_dir():
        return unpacked / "genres"
    tops = [p for p in unpacked.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(tops) == 1:
        return tops[0]
    raise OSError(
        f"The archive unpacked into {str(unpacked)!r} has no 'genres' folder "
        f"(top-level entries: {sorted(p.name for p in unpacked.iterdir())}); delete this "
        "folder and fetch again, or pass the url of a GTZAN archive."
    )


@validate_params(
    {
        "data_home": [str, os.PathLike, None],
        "download_if_missing": ["boolean"],
        "url": [str],
        "checksum": [str, tuple, list, None],
        "subset": [str, list, tuple, None],
        "return_X_y": ["boolean"],
        "timeout": [Interval(Real, 0, None, closed="neither")],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def fetch_gtzan(
    *,
    data_home=None,
    download_if_missing=True,
    url=GTZAN_URL,
    checksum=GTZAN_SHA256,
    subset=None,
    return_X_y=False,
    timeout=60.0,
    verbose=0,
):
    """Load the GTZAN genre collection, downloading it on first use.

    The archive (about 1.2 GB) is streamed into ``<data_home>/gtzan/``, its checksum
    verified, and it is unpacked there, then deleted; later calls read the unpacked
    copy and touch no network. A failed or corrupted download, or a failed unpacking,
    leaves no file behind. The files are listed with :func:`load_audio_folder`; the
    audio itself is read later, e.g. by :class:`sklearn_music.MelSpectrogramTransformer`.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        Where to cache the data set; None for :func:`get_data_home`'s default
        (``$SKLEARN_MUSIC_DATA`` or ``~/sklearn_music_data``).

    download_if_missing : bool, default=True
        If False, raise an :class:`OSError` instead of downloading when the data set is
        not in the cache.

    url : str, default="http://opihi.cs.uvic.ca/sound/genres.tar.gz"
        Where to download the ``.tar.gz`` archive from (``http``, ``https`` or
        ``file`` URL). Pass a mirror if the original host is unreachable.

    checksum : str, tuple of (str, str) or None, \
default="24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6"
        Expected digest of the archive: a SHA-256 hex string, or a pair such as
        ``("md5", "5b3d6dddb579ab49814ab86dba69e7c7")``. None skips the verification.

    subset : str or list of str, default=None
        Genres to keep (e.g. ``["jazz", "rock"]``); None keeps all ten.
        ``target`` then indexes the kept genres, in sorted order.

    return_X_y : bool, default=False
        If True, return ``(filenames, target)`` instead of a Bunch.

    timeout : float, default=60.0
        Seconds to wait for the server before giving up.

    verbose : int, default=0
        If positive, show a progress bar while downloading.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of shape (n_tracks,), dtype str
            Paths of the audio files in the cache.
        target : ndarray of shape (n_tracks,), dtype int
            Index of each track's genre in ``target_names``.
        target_names : list of str
            The genre names, sorted.
        DESCR : str
            Description of the data set.

    (filenames, target) : tuple if ``return_X_y`` is True
        The paths and the genre indices.

    Raises
    ------
    OSError
        If the data set is not cached and ``download_if_missing`` is False, if the
        download fails (the message names the URL, its host, the cause and the cache
        folder), stops short of the announced size or its checksum differs, if the
        archive cannot be unpacked (truncated, an HTML page, not a tar archive; the
        message names the file and the URL) or is unsafe (a member that points
        outside the cache, a link), or if it has no genre folders. Nothing partial is
        left in the cache.
    ValueError
        If ``subset`` names a genre that is not in the collection.

    See Also
    --------
    load_audio_folder : Load any folder-per-label collection.
    make_tracks : Synthesized labelled clips that need no download.

    Examples
    --------
    The real download, about 1.2 GB:

    >>> from sklearn_music.datasets import fetch_gtzan
    >>> gtzan = fetch_gtzan()  # doctest: +SKIP
    >>> gtzan.target_names  # doctest: +SKIP
    ['blues', 'classical', 'country', 'disco', 'hiphop', 'jazz', 'metal', 'pop', \
'reggae', 'rock']

    The same steps on a tiny archive in the GTZAN layout, served from a local file:

    >>> import hashlib, os, tarfile, tempfile
    >>> from pathlib import Path
    >>> import soundfile as sf
    >>> from sklearn_music.datasets import make_tracks
    >>> work = Path(tempfile.mkdtemp())
    >>> tracks = make_tracks(4, n_genres=2, duration=0.25, random_state=0)
    >>> for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
    ...     (work / "genres" / genre).mkdir(parents=True, exist_ok=True)
    ...     sf.write(work / "genres" / genre / f"{genre}.{i:05d}.wav", x, tracks.sr)
    >>> with tarfile.open(work / "genres.tar.gz", "w:gz") as tar:
    ...     tar.add(work / "genres", arcname="genres")
    >>> sha256 = hashlib.sha256((work / "genres.tar.gz").read_bytes()).hexdigest()
    >>> data = fetch_gtzan(data_home=work / "home",
    ...                    url=(work / "genres.tar.gz").as_uri(), checksum=sha256)
    >>> data.target_names, data.target
    (['rock', 'techno'], array([0, 0, 1, 1]))
    >>> techno_only = fetch_gtzan(data_home=work / "home", subset=["techno"],
    ...                         download_if_missing=False)
    >>> [os.path.basename(f) for f in techno_only.filenames]
    ['techno.00000.wav', 'techno.00002.wav']
    >>> import shutil; shutil.rmtree(work)  # clean up
    """
    folder = Path(get_data_home(data_home)) / "gtzan"
    unpacked = folder / "unpacked"
    if not unpacked.is_dir():
        if not download_if_missing:
            raise OSError(
                f"GTZAN is not in the cache {str(folder)!r} and download_if_missing is False."
            )
        archive = folder / "genres.tar.gz"
        if not archive.is_file():
            _download(url, archive, checksum=checksum, timeout=timeout, verbose=verbose)
        try:
            _extract_tar(archive, unpacked, source=url)
        finally:
            # A verified archive that fails to unpack is unusable too: never keep it.
            archive.unlink(missing_ok=True)

    collection = load_audio_folder(_genres_folder(unpacked))
    filenames, target = collection.filenames, collection.target
    target_names = collection.target_names
    if subset is not None:
        wanted = [subset] if isinstance(subset, str) else list(subset)
        unknown = sorted(set(wanted) - set(target_names))
        if unknown:
            raise ValueError(f"subset names unknown genre(s) {unknown}; GTZAN has {target_names}.")
        keep_names = sorted(set(wanted))
        keep = np.isin(np.asarray(target_names)[target], keep_names)
        remap = np.array([keep_names.index(n) if n in keep_names else -1 for n in target_names])
        filenames, target = filenames[keep], remap[target[keep]]
        target_names = keep_names
    if return_X_y:
        return filenames, target
    return Bunch(filenames=filenames, target=target, target_names=target_names, DESCR=_DESCR)
