"""The report's media: excerpts as small OGG/Vorbis files, and PNG pictures.

Mel-spectrogram thumbnails and patch-similarity heat maps are written with
:func:`matplotlib.image.imsave` (one pixel per cell, no figure), which is fast
enough for a few hundred pictures; the page scales them up.
"""

import numpy as np

from ..io import load_audio

__all__ = ["read_excerpt", "track_duration", "write_heatmap", "write_ogg", "write_thumbnail"]

_THUMB_MEL = {"n_fft": 1024, "n_mels": 48}


def _imsave():
    try:
        from matplotlib.image import imsave
    except ImportError:  # pragma: no cover - matplotlib is in the report extra
        raise ImportError(
            "the listening report draws its pictures with matplotlib: "
            "pip install 'sklearn-music[report]'"
        ) from None
    return imsave


def track_duration(path):
    """Length of an audio file in seconds (from its header when libsndfile reads it)."""
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except (sf.LibsndfileError, RuntimeError):
        y = load_audio(path, sr=8000)
        return len(y) / 8000


def read_excerpt(path, *, offset, duration, sr):
    """``duration`` seconds of a file from ``offset``, mono float32 at ``sr``."""
    return load_audio(path, sr=sr, offset=float(offset), duration=float(duration))


def write_ogg(path, y, sr, *, quality=0.3):
    """Write mono samples as OGG/Vorbis (``quality`` 0..1, libsndfile's scale)."""
    import soundfile as sf

    y = np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0)
    if len(y) == 0:
        y = np.zeros(sr // 10, dtype=np.float32)  # a silent tenth of a second
    # libsndfile's compression level: 0 = best quality, 1 = smallest file
    sf.write(str(path), y, sr, format="OGG", subtype="VORBIS", compression_level=1 - quality)


def write_thumbnail(path, y, sr):
    """A small log-mel picture of ``y`` (48 bands, about 30 frames a second)."""
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if len(y) < _THUMB_MEL["n_fft"]:
        y = np.pad(y, (0, _THUMB_MEL["n_fft"] - len(y)))
    power = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=max(1, sr // 32), **_THUMB_MEL)
    spec = librosa.power_to_db(power)
    top = float(spec.max())
    _imsave()(str(path), spec, cmap="magma", origin="lower", vmin=top - 80, vmax=top)


def _block_mean(m, max_size):
    """Average blocks of rows and columns so that neither side exceeds ``max_size``."""
    for axis in (0, 1):
        n = m.shape[axis]
        if n > max_size:
            edges = np.linspace(0, n, max_size + 1).astype(int)
            m = np.add.reduceat(m, edges[:-1], axis=axis) / np.diff(edges).reshape(
                (-1, 1) if axis == 0 else (1, -1)
            )
    return m


def write_heatmap(path, similarity, *, max_size=48):
    """The patch-similarity matrix as a picture: rows = query, columns = neighbour."""
    m = _block_mean(np.asarray(similarity, dtype=float), max_size)
    _imsave()(str(path), m, cmap="viridis", vmin=float(m.min()), vmax=float(m.max()))
