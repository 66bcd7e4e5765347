"""Reading audio: one function, :func:`load_audio`, and its one exception type.

Every other part of :mod:`sklearn_music` reads audio through :func:`load_audio`, so a
file that cannot be used fails the same way everywhere: with an
:class:`AudioLoadError` that names the file and the cause.
"""

import numbers
import os
import warnings

import numpy as np

__all__ = ["AudioLoadError", "load_audio"]


class AudioLoadError(ValueError):
    """Audio that cannot be read or used; the message names the source and the cause.

    Raised by :func:`load_audio` (and by the transformers that read audio through it)
    for a missing or empty file, data that is not audio, a truncated or malformed
    stream, audio without samples, NaN or infinite samples and an ``offset`` past the
    end. It subclasses :class:`ValueError`, so ``except ValueError`` catches it too.

    See Also
    --------
    load_audio : Reads audio and raises this error.

    Examples
    --------
    >>> from sklearn_music.io import AudioLoadError, load_audio
    >>> try:
    ...     load_audio("no/such/file.wav")
    ... except AudioLoadError as exc:
    ...     print(exc)
    'no/such/file.wav': file not found
    """


def _describe(source):
    """A short name of ``source`` for error messages."""
    if isinstance(source, (str, bytes, os.PathLike)):
        return repr(os.fsdecode(source))
    name = getattr(source, "name", None)
    if isinstance(name, (str, bytes, os.PathLike)):
        return repr(os.fsdecode(name))
    return f"<{type(source).__name__} object>"


def _check_time(value, name, *, allow_none, positive):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a real number of seconds")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}={value!r} must be finite and {bound} (seconds)")
    return value


def _check_rate(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer (Hz)")
    return int(value)


def _pcm_to_float(data, what):
    """Scale an array of samples to float (integer PCM to [-1, 1])."""
    kind = data.dtype.kind
    if kind == "f":
        return data.astype(np.float32, copy=False)
    if kind == "i":
        return (data.astype(np.float64) / 2.0 ** (8 * data.dtype.itemsize - 1)).astype(np.float32)
    if kind == "u":
        half = 2.0 ** (8 * data.dtype.itemsize - 1)
        return ((data.astype(np.float64) - half) / half).astype(np.float32)
    if kind == "c":
        raise AudioLoadError(f"{what}: Complex data not supported as audio samples")
    raise AudioLoadError(
        f"{what}: samples of dtype {data.dtype} are not audio; pass float samples or integer PCM"
    )


def _array_to_mono(source, what):
    """Convert an array source to (float32 mono samples)."""
    try:
        data = np.asarray(source)
    except (TypeError, ValueError) as exc:
        raise AudioLoadError(f"{what}: cannot be read as an array of samples ({exc})") from exc
    if data.dtype == object:
        try:
            data = data.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise AudioLoadError(
                f"{what}: an object array whose items are not numbers ({exc})"
            ) from None
    if data.ndim not in (1, 2):
        raise AudioLoadError(
            f"{what}: an array of audio must be 1-D (mono) or 2-D (channels), "
            f"got shape {data.shape}"
        )
    data = _pcm_to_float(data, what)
    if data.ndim == 2:
        # the channels are on the smaller axis; a square array is channels first
        axis = 0 if data.shape[0] <= data.shape[1] else 1
        if data.shape[axis] == 0:
            raise AudioLoadError(f"{what}: contains no audio samples (shape {data.shape})")
        data = data.mean(axis=axis, dtype=np.float32)
    return data


def _read_soundfile(source, what, offset, duration):
    """Read [offset, offset + duration) of a file with libsndfile; (samples, rate)."""
    import soundfile as sf

    try:
        with sf.SoundFile(source) as f:
            rate, frames, info = f.samplerate, f.frames, f.extra_info
            if "(should be" in info:
                raise AudioLoadError(
                    f"{what}: truncated file (the header declares more data than the file holds)"
                )
            if frames <= 0:
                raise AudioLoadError(f"{what}: contains no audio samples")
            start = int(round(offset * rate))
            if start >= frames:
                raise AudioLoadError(
                    f"{what}: offset={offset} s is at or past the end of the audio "
                    f"({frames / rate:.3f} s)"
                )
            n = frames - start
            if duration is not None:
                n = min(n, max(1, int(round(duration * rate))))
            if start:
                f.seek(start)
            data = f.read(n, dtype="float32", always_2d=True)
    except AudioLoadError:
        raise
    except sf.LibsndfileError as exc:
        msg = str(exc.error_string) if getattr(exc, "error_string", None) else str(exc)
        if "not recognised" in msg.lower() or "unknown format" in msg.lower():
            raise _NotRecognised(msg) from None
        raise AudioLoadError(f"{what}: malformed or truncated audio (libsndfile: {msg})") from None
    except (RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioLoadError(f"{what}: cannot be read as audio ({exc})") from None
    if data.shape[0] < n:
        raise AudioLoadError(
            f"{what}: truncated audio (read {start + data.shape[0]} of the "
            f"{frames} frames its header declares)"
        )
    return data.mean(axis=1, dtype=np.float32), rate


class _NotRecognised(Exception):
    """libsndfile does not know the format (librosa would try audioread)."""


def _read_audioread(path, what, offset, duration, reason):
    """librosa's fallback for formats that libsndfile does not read."""
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, rate = librosa.load(
                path,
                sr=None,
                mono=True,
                offset=offset,
                duration=duration,
                dtype=np.float32,
            )
    except Exception as exc:  # audioread raises many unrelated types
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise AudioLoadError(
            f"{what}: not a readable audio file (libsndfile: {reason} audioread: {detail})"
        ) from None
    if data.size == 0:
        raise AudioLoadError(f"{what}: contains no audio samples at offset={offset} s")
    return data, rate


def _check_path(path, what):
    if not os.path.exists(path):
        raise AudioLoadError(f"{what}: file not found")
    if os.path.isdir(path):
        raise AudioLoadError(f"{what}: is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioLoadError(f"{what}: empty file (0 bytes)")


def _check_filelike(fileobj, what):
    if not hasattr(fileobj, "read"):
        raise AudioLoadError(
            f"{what}: not an audio source; pass a path, a file-like object or an array of samples"
        )
    seekable = getattr(fileobj, "seekable", None)
    if callable(seekable) and seekable():
        pos = fileobj.tell()
        end = fileobj.seek(0, os.SEEK_END)
        fileobj.seek(pos)
        if end - pos <= 0:
            raise AudioLoadError(f"{what}: empty file-like object (0 bytes left to read)")


def load_audio(source, *, sr=16000, orig_sr=None, offset=0.0, duration=None):
    """Read audio as mono float32 samples at a given sampling rate.

    Parameters
    ----------
    source : str, path-like, file-like object or array-like
        What to read:

        - a path (``str`` or :class:`os.PathLike`) or a binary file-like object:
          any format libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...).
          A path in a format libsndfile does not recognise is passed on to
          :func:`librosa.load`, which falls back to audioread (that needs a decoder
          such as ffmpeg on the machine);
        - an array of samples at ``orig_sr``: 1-D (mono) or 2-D (channels). In a
          2-D array the **smaller axis is the channel axis** (a square array is read
          as channels first). Float samples are used as they are; integer PCM is
          scaled to [-1, 1) (``int16`` divided by 32768, ``uint8`` centred on 128).

        Several channels are averaged to mono.
    sr : int, default=16000
        Sampling rate of the result in Hz. Audio at another rate is resampled with
        :func:`librosa.resample` (``res_type="soxr_hq"``).
    orig_sr : int, default=None
        Sampling rate of an array ``source``; ``None`` means ``sr``. Must be ``None``
        for files, whose rate is read from the file.
    offset : float, default=0.0
        Start reading this many seconds into the audio. An offset at or past the end
        of the audio is an error.
    duration : float, default=None
        Read at most this many seconds; ``None`` reads to the end. Audio shorter than
        ``offset + duration`` is returned as it is (not padded).

    Returns
    -------
    y : ndarray of shape (n_samples,), dtype float32
        Mono samples at ``sr``. Silence is valid audio and is returned as zeros.

    Raises
    ------
    AudioLoadError
        The message names the source and the cause: file not found, a directory,
        empty file (0 bytes), not a readable audio file, malformed or truncated
        audio, no audio samples, NaN or infinite samples, an ``offset`` past the end.
    ValueError
        For bad ``sr``, ``orig_sr``, ``offset`` or ``duration`` values.

    See Also
    --------
    sklearn_music.MelSpectrogramTransformer : Reads audio with this function.
    librosa.load : The loader of librosa, on which the fallback relies.

    Notes
    -----
    Truncation is detected where the file tells: a WAV/AIFF header that declares
    more data than the file holds, a stream that ends before the number of frames its
    header declares, or a decoder that loses sync (FLAC) or finds the stream
    malformed (OGG). With ``offset``/``duration`` only the requested part is decoded,
    so damage outside it may go unnoticed.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.io import load_audio
    >>> stereo = np.zeros((2, 44100), dtype=np.int16)  # 1 s of stereo silence
    >>> y = load_audio(stereo, orig_sr=44100, sr=16000)
    >>> y.shape, y.dtype
    ((16000,), dtype('float32'))
    >>> load_audio(np.ones(8000), sr=8000, offset=0.5).shape
    (4000,)
    """
    sr = _check_rate(sr, "sr")
    offset = _check_time(offset, "offset", allow_none=False, positive=False)
    duration = _check_time(duration, "duration", allow_none=True, positive=True)
    is_path = isinstance(source, (str, bytes, os.PathLike))
    is_file = not is_path and hasattr(source, "read")
    if orig_sr is not None:
        orig_sr = _check_rate(orig_sr, "orig_sr")
        if is_path or is_file:
            raise ValueError(
                f"orig_sr={orig_sr} applies to arrays only; a file's sampling rate is "
                "read from the file"
            )
    what = _describe(source) if (is_path or is_file) else "array input"

    if is_path:
        path = os.fsdecode(source)
        _check_path(path, what)
        try:
            y, rate = _read_soundfile(path, what, offset, duration)
        except _NotRecognised as exc:
            y, rate = _read_audioread(path, what, offset, duration, str(exc))
    elif is_file:
        _check_filelike(source, what)
        try:
            y, rate = _read_soundfile(source, what, offset, duration)
        except _NotRecognised as exc:
            raise AudioLoadError(f"{what}: not a readable audio file ({exc})") from None
    else:
        if isinstance(source, (numbers.Number, dict, set)) or source is None:
            raise AudioLoadError(
                f"{type(source).__name__} {source!r} is not an audio source; pass a "
                "path, a file-like object or an array of samples"
            )
        rate = sr if orig_sr is None else orig_sr
        y = _array_to_mono(source, what)
        if y.size == 0:
            raise AudioLoadError(f"{what}: contains no audio samples")
        start = int(round(offset * rate))
        if start >= y.size:
            raise AudioLoadError(
                f"{what}: offset={offset} s is at or past the end of the audio "
                f"({y.size / rate:.3f} s)"
            )
        stop = y.size
        if duration is not None:
            stop = start + max(1, int(round(duration * rate)))
        y = y[start:stop]

    if not np.isfinite(y).all():
        bad = int(np.size(y) - np.isfinite(y).sum())
        raise AudioLoadError(f"{what}: {bad} samples are NaN or infinity")
    if rate != sr:
        import librosa

        y = librosa.resample(y, orig_sr=rate, target_sr=sr, res_type="soxr_hq")
        if y.size == 0:
            raise AudioLoadError(
                f"{what}: too short to resample from {rate} Hz to {sr} Hz (no samples left)"
            )
    return np.ascontiguousarray(y, dtype=np.float32)
