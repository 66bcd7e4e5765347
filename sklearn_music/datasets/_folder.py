"""Load a collection of audio files laid out one folder per label: :func:`load_audio_folder`."""

import os
import warnings

import numpy as np
from sklearn.utils import Bunch

from ..utils._sklearn_compat import validate_params

__all__ = ["load_audio_folder"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".au", ".aiff", ".aif", ".m4a")


def _normalise_extensions(extensions):
    if isinstance(extensions, str):
        extensions = (extensions,)
    normalised = []
    for ext in extensions:
        if not isinstance(ext, str) or not ext:
            raise ValueError(f"extensions must be non-empty strings such as '.wav'; got {ext!r}.")
        ext = ext.lower()
        normalised.append(ext if ext.startswith(".") else "." + ext)
    if not normalised:
        raise ValueError("extensions is empty: no file could match.")
    return tuple(normalised)


def _audio_files(folder, extensions):
    """Audio files under ``folder``, recursively, sorted, hidden entries skipped.

    Symbolic links are followed (to files and to folders); a folder reached twice through
    links is visited once.
    """
    found = []
    seen = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in extensions:
                path = os.path.join(root, name)
                if os.path.isfile(path):  # skips broken links
                    found.append(path)
    return sorted(found)


@validate_params(
    {
        "path": [str, os.PathLike],
        "extensions": [str, tuple, list],
        "labeled": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_audio_folder(path, *, extensions=AUDIO_EXTENSIONS, labeled=True):
    """Load the file names and labels of a folder-per-label audio collection.

    Like :func:`sklearn.datasets.load_files`, the audio itself is not read: pass
    ``filenames`` to :func:`sklearn_music.load_audio` or to
    :class:`sklearn_music.MelSpectrogramTransformer`. With ``labeled=True`` (the GTZAN
    layout ``path/<label>/<file>``), every sub-folder of ``path`` is a label and the
    audio files anywhere below it (sub-folders included) belong to it. Labels and files
    are sorted, so the result is the same on every machine.

    What is ignored: files whose extension (case-insensitive) is not in
    ``extensions``; hidden files and folders (name starting with ``"."``); broken
    symbolic links; with ``labeled=True``, files directly in ``path``, and label
    folders that hold no audio file (a warning names them). Symbolic links to files and
    folders are followed.

    Parameters
    ----------
    path : str or os.PathLike
        The folder of the collection.

    extensions : tuple of str, default=(".wav", ".flac", ".ogg", ".mp3", ".au", \
".aiff", ".aif", ".m4a")
        File extensions that count as audio, with or without the leading dot,
        compared case-insensitively.

    labeled : bool, default=True
        If True, each sub-folder of ``path`` is a label. If False, every audio file
        below ``path`` is listed, recursively, and ``target`` and ``target_names`` are
        None.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of shape (n_files,), dtype str
            Paths of the audio files (``path`` joined with their relative path, links
            not resolved), sorted by label, then by path.
        target : ndarray of shape (n_files,), dtype int, or None
            Index of each file's label in ``target_names``; None if ``labeled=False``.
        target_names : list of str or None
            The label folder names, sorted; None if ``labeled=False``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    NotADirectoryError
        If ``path`` is not a folder.
    ValueError
        If no audio file is found (the message names the folder and the extensions).

    See Also
    --------
    sklearn.datasets.load_files : The same for text documents.
    fetch_gtzan : Download GTZAN and load it with this function.

    Examples
    --------
    >>> import os, tempfile
    >>> import soundfile as sf
    >>> from sklearn_music.datasets import load_audio_folder, make_tracks
    >>> tracks = make_tracks(4, n_genres=2, duration=0.5, random_state=0)
    >>> root = tempfile.mkdtemp()
    >>> for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
    ...     os.makedirs(os.path.join(root, genre), exist_ok=True)
    ...     sf.write(os.path.join(root, genre, f"{i}.wav"), x, tracks.sr)
    >>> collection = load_audio_folder(root)
    >>> collection.target_names
    ['rock', 'techno']
    >>> collection.target
    array([0, 0, 1, 1])
    >>> [os.path.relpath(f, root) for f in collection.filenames]
    ['rock/1.wav', 'rock/3.wav', 'techno/0.wav', 'techno/2.wav']
    >>> import shutil; shutil.rmtree(root)  # clean up
    """
    extensions = _normalise_extensions(extensions)
    folder = os.fspath(path)
    if not os.path.exists(folder):
        raise FileNotFoundError(f"Audio folder {folder!r} does not exist.")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"{folder!r} is not a folder; pass the collection's folder.")

    if not labeled:
        filenames = _audio_files(folder, extensions)
        if not filenames:
            raise ValueError(f"No audio file in {folder!r} or below it (extensions {extensions}).")
        return Bunch(filenames=np.array(filenames), target=None, target_names=None)

    labels = sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    filenames, target, target_names, empty = [], [], [], []
    for label in labels:
        files = _audio_files(os.path.join(folder, label), extensions)
        if not files:
            empty.append(label)
            continue
        filenames.extend(files)
        target.extend([len(target_names)] * len(files))
        target_names.append(label)
    if not filenames:
        raise ValueError(
            f"No audio file in the label folders of {folder!r} (found "
            f"{len(labels)} label folder(s): {labels[:10]}; extensions {extensions}). "
            "For a flat folder without labels, pass labeled=False."
        )
    if empty:
        warnings.warn(
            f"Label folder(s) without audio files in {folder!r} left out: {empty}.",
            UserWarning,
            stacklevel=2,
        )
    return Bunch(
        filenames=np.array(filenames),
        target=np.array(target, dtype=np.intp),
        target_names=target_names,
    )
