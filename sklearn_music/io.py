"""Reading audio: one function, :func:`load_audio`, and its one exception type.

Every other part of :mod:`sklearn_music` reads audio through :func:`load_audio`, so a
file that cannot be used fails the same way everywhere: with an
:class:`AudioLoadError` that names the file and the cause.
"""

import io
import math
import numbers
import os
import re
import stat
import warnings

import numpy as np

from . import _audio_checks

__all__ = ["MAX_SAMPLES", "AudioLoadError", "load_audio"]


class AudioLoadError(ValueError):
    """Audio that cannot be read or used; the message names the source and the cause.

    Raised by :func:`load_audio` (and by the transformers that read audio through it)
    for a missing or empty file, a pipe, device, text-mode or non-seekable stream,
    data that is not audio, a truncated or malformed stream, a header that declares
    an absurd sampling rate or more samples than the ``max_samples`` bound, audio
    without samples, NaN or infinite samples and an ``offset`` past the end. It
    subclasses :class:`ValueError`, so ``except ValueError`` catches it too. The
    user guide's "Failure modes" page lists each cause and what to do.

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


MAX_SAMPLES = 2**28
"""Default bound of :func:`~sklearn_music.load_audio` on the samples it decodes or returns (1 GiB).

2**28 samples are 4.6 hours at 16 kHz, or 1.7 hours of frames at 44.1 kHz. A file
whose header declares more, or whose resampled result would be longer, is refused
before anything that size is allocated. Pass ``max_samples=`` to
:func:`~sklearn_music.load_audio`, or set this constant, to change it.
"""

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_000_000
RES_TYPES = ("soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq", "polyphase")
# frames decoded per block into the reused buffer, mixed down from there: 32k, 128k
# and 512k frames read the 24 Vorbis files of benchmarks/bench_e2e.py within 1 % of
# each other, 3 % faster than fresh 4 MiB blocks mixed by temporaries and concatenated
_BLOCK_FRAMES = 1 << 17


def _describe(source):
    """A short name of ``source`` for error messages: a quoted plain path."""
    if isinstance(source, (str, bytes, os.PathLike)):
        return repr(str(os.fsdecode(source)))
    name = getattr(source, "name", None)
    if isinstance(name, (str, bytes, os.PathLike)):
        return repr(str(os.fsdecode(name)))
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


def _check_max_samples(value):
    if value is None:
        return int(MAX_SAMPLES)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"max_samples={value!r} must be a positive integer or None")
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


def _check_size(what, frames, rate, sr, max_samples):
    """Refuse, before decoding, audio whose size or resampled size passes the bound."""
    if frames > max_samples:
        raise AudioLoadError(
            f"{what}: declares {frames} frames, more than max_samples={max_samples}; "
            "pass a larger max_samples to read it"
        )
    out = math.ceil(frames * sr / rate)
    if out > max_samples:
        raise AudioLoadError(
            f"{what}: {frames} frames at {rate} Hz would be {out} samples at "
            f"sr={sr} Hz, more than max_samples={max_samples}; pass a larger "
            "max_samples to read it"
        )


def _check_header(what, f, sr, max_samples):
    """Checks of what a libsndfile header declares, before any sample is read."""
    rate, frames = f.samplerate, f.frames
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioLoadError(
            f"{what}: its header declares a sampling rate of {rate} Hz, outside "
            f"[{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz (a damaged or forged header)"
        )
    if f.channels < 1:
        raise AudioLoadError(f"{what}: its header declares {f.channels} channels")
    if frames <= 0:
        raise AudioLoadError(f"{what}: contains no audio samples")
    _check_size(what, frames, rate, sr, max_samples)


def _read_blocks(f, n, what, max_samples, allow_truncated):
    """Decode up to ``n`` frames (to the end if None) as mono; (samples, count).

    The frames are decoded a block at a time into one reused buffer small enough to
    stay in the processor's cache and mixed down from there into the output, which is
    allocated once from the length the header declares (grown if the file decodes to
    more, as an MP3 whose length libsndfile estimated can). A mono file is decoded
    straight into the output, in one call when its length is right (MP3 samples
    depend on where the reads split the stream, by about 1e-7). Stereo is mixed by one
    add and a halving, the same bits as ``numpy.mean(axis=1)`` without its slow strided
    reduction.
    """
    import soundfile as sf

    channels = f.channels
    # small blocks when the caller wants the part before any damage: a block that
    # meets a decoding error is lost whole
    block = max(1, 4096 // channels) if allow_truncated else _BLOCK_FRAMES
    cap = f.frames if n is None else min(n, f.frames)
    # read to the end: one block of slack, so that a file of the declared length ends
    # with a short read instead of a growth of the output
    slack = block if n is None else 0
    out = np.empty(max(1, min(cap, max_samples) + slack), dtype=np.float32)
    buf = None if channels == 1 else np.empty((block, channels), dtype=np.float32)
    got = 0
    while n is None or got < n:
        if got == len(out):  # the file holds more than its header declared
            out = np.concatenate([out, np.empty(len(out), dtype=np.float32)])
        room = len(out) - got
        # mono goes straight into the output, as much as it holds
        want = room if buf is None and not allow_truncated else min(block, room)
        if n is not None:
            want = min(want, n - got)
        dst = out[got : got + want]
        try:
            k = len(f.read(want, dtype="float32", out=dst if buf is None else buf[:want]))
        except sf.LibsndfileError:
            if allow_truncated and got:
                break  # the caller asked for the part before the damage
            raise
        if buf is not None:
            _mix_down(buf[:k], dst[:k])
        got += k
        if got > max_samples:
            raise AudioLoadError(
                f"{what}: decodes to more than max_samples={max_samples} frames; "
                "pass a larger max_samples to read it"
            )
        if k < want:
            break
    return out[:got], got


def _mix_down(frames, out):
    """Mean over the channels of ``frames`` (n, channels) into ``out`` (n,), float32."""
    if frames.shape[1] == 2:
        np.add(frames[:, 0], frames[:, 1], out=out)
        np.multiply(out, np.float32(0.5), out=out)
    else:
        np.mean(frames, axis=1, dtype=np.float32, out=out)


def _read_soundfile(source, what, *, offset, duration, sr, allow_truncated, max_samples):
    """Read [offset, offset + duration) of a file with libsndfile; (y, rate, format)."""
    import soundfile as sf

    try:
        with sf.SoundFile(source) as f:
            _check_header(what, f, sr, max_samples)
            rate, frames, fmt = f.samplerate, f.frames, f.format
            if _declares_more(f.extra_info) and not allow_truncated:
                raise _truncated(what, "the header declares more data than the file holds")
            start = int(round(offset * rate))
            if start >= frames:
                raise _past_end(what, offset, frames / rate)
            n = None if duration is None else max(1, int(round(duration * rate)))
            if start:
                f.seek(start)
            y, got = _read_blocks(f, n, what, max_samples, allow_truncated)
    except AudioLoadError:
        raise
    except sf.LibsndfileError as exc:
        raise _libsndfile_error(exc, what) from None
    except (RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioLoadError(f"{what}: cannot be read as audio ({exc})") from None
    if not got:
        raise _past_end(what, offset, frames / rate) if start else _empty(what)
    # libsndfile's MP3 length is an estimate from the first frame, its Ogg length the
    # last granule position (more than a valid file decodes to, at times): the
    # container checks judge those two, the declared length all others
    expected = frames - start if n is None else min(n, frames - start)
    if fmt not in ("MP3", "OGG") and got < expected and not allow_truncated:
        raise _truncated(what, f"read {start + got} of the {frames} frames its header declares")
    return y, rate, fmt


_SHOULD_BE = re.compile(r":\s*(\d+)\s*\(should be\s*\d+\)")
_UNKNOWN_LENGTH = 0x7FFFF000  # and above: the sizes that stream writers put in a header


def _declares_more(extra_info):
    """Whether libsndfile found a chunk size larger than the file holds.

    Sizes of 0x7FFFF000 and above (0xFFFFFFFF from ffmpeg writing to a pipe) mark a
    length unknown when the header was written, not a cut file.
    """
    sizes = [int(m.group(1)) for m in _SHOULD_BE.finditer(extra_info)]
    return any(size < _UNKNOWN_LENGTH for size in sizes)


def _truncated(what, reason):
    return AudioLoadError(
        f"{what}: truncated audio ({reason}); pass allow_truncated=True to load the "
        "part that is there"
    )


def _past_end(what, offset, seconds):
    return AudioLoadError(
        f"{what}: offset={offset} s is at or past the end of the audio ({seconds:.3f} s)"
    )


def _empty(what):
    return AudioLoadError(f"{what}: contains no audio samples")


def _libsndfile_error(exc, what):
    msg = str(exc.error_string) if getattr(exc, "error_string", None) else str(exc)
    low = msg.lower()
    if "not recognised" in low or "unknown format" in low:
        return _NotRecognised(msg)
    if "not a regular file" in low or "does not exist" in low:
        # libsndfile's words when its MP3 decoder finds no stream in a regular file
        return AudioLoadError(
            f"{what}: not a readable audio file (libsndfile found no audio stream in it: "
            "it is not audio, or damaged beyond its header)"
        )
    return AudioLoadError(f"{what}: malformed or truncated audio (libsndfile: {msg})")


def _check_complete(source, what, fmt, is_path):
    """Why an Ogg or MP3 file is cut short (see :mod:`._audio_checks`), or None."""
    if fmt not in ("OGG", "MP3"):
        return None
    fh = open(source, "rb") if is_path else source  # noqa: SIM115 (closed below)
    try:
        size = _audio_checks.file_size(fh)
        if fmt == "OGG":
            return _audio_checks.ogg_end_missing(fh, size)
        if is_path:
            return _audio_checks.mp3_truncation(fh, size)
        return _audio_checks.mp3_truncation_bytes(fh.read())
    except OSError as exc:
        raise AudioLoadError(f"{what}: cannot be read ({exc})") from None
    finally:
        if is_path:
            fh.close()


class _NotRecognised(Exception):
    """libsndfile does not know the format (librosa would try audioread)."""


def _read_audioread(path, what, offset, duration, reason):
    """librosa's fallback for formats that libsndfile does not read."""
    import audioread
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
    except audioread.NoBackendError:
        tried = ", ".join(b.__name__ for b in audioread.available_backends()) or "none"
        raise AudioLoadError(
            f"{what}: not a readable audio file: libsndfile does not know its format "
            f"({reason.rstrip('.')}) and no audioread backend could decode it (tried: "
            f"{tried}); it is damaged, truncated or not audio, or it needs a decoder "
            "such as ffmpeg"
        ) from None
    except Exception as exc:  # audioread raises many unrelated types
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise AudioLoadError(
            f"{what}: not a readable audio file (libsndfile: {reason} audioread: {detail})"
        ) from None
    if data.size == 0:
        raise AudioLoadError(f"{what}: contains no audio samples at offset={offset} s")
    return data, rate


def _check_path(path, what):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise AudioLoadError(f"{what}: a broken symbolic link") from None
        raise AudioLoadError(f"{what}: file not found") from None
    except OSError as exc:
        raise AudioLoadError(f"{what}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioLoadError(f"{what}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioLoadError(
            f"{what}: not a regular file (a pipe, device or socket); libsndfile needs a "
            "file it can seek in: pass io.BytesIO(stream.read()) for a stream"
        )
    if st.st_size == 0:
        raise AudioLoadError(f"{what}: empty file (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise AudioLoadError(f"{what}: cannot be read ({exc.strerror})") from None


def _check_filelike(fileobj, what):
    if not hasattr(fileobj, "read"):
        raise AudioLoadError(
            f"{what}: not an audio source; pass a path, a file-like object or an array of samples"
        )
    if getattr(fileobj, "closed", False) is True:
        raise AudioLoadError(f"{what}: a closed file object; pass an open one")
    try:
        probe = fileobj.read(0)
    except (OSError, ValueError) as exc:
        raise AudioLoadError(f"{what}: cannot be read ({exc})") from None
    if isinstance(probe, str) or isinstance(fileobj, io.TextIOBase):
        raise AudioLoadError(
            f"{what}: a text-mode stream; open the file in binary mode, open(path, 'rb')"
        )
    try:
        seekable = fileobj.seekable() and hasattr(fileobj, "tell")
        if seekable:
            pos = fileobj.tell()
            end = fileobj.seek(0, os.SEEK_END)
            fileobj.seek(pos)
    except (AttributeError, OSError, ValueError):
        seekable = False
    if not seekable:
        raise AudioLoadError(
            f"{what}: a stream that cannot seek (a pipe or socket?); libsndfile needs to "
            "seek: pass io.BytesIO(stream.read()) instead"
        )
    if end - pos <= 0:
        raise AudioLoadError(f"{what}: empty file-like object (0 bytes left to read)")


def load_audio(
    source,
    *,
    sr=16000,
    orig_sr=None,
    offset=0.0,
    duration=None,
    allow_truncated=False,
    max_samples=None,
    res_type="soxr_hq",
):
    """Read audio as mono float32 samples at a given sampling rate.

    Parameters
    ----------
    source : str, path-like, file-like object or array-like
        What to read:

        - a path (``str`` or :class:`os.PathLike`) to a regular file, or a binary,
          seekable file-like object: any format libsndfile reads (WAV, FLAC,
          OGG/Vorbis, Opus, MP3, AIFF, ...). A path in a format libsndfile does not
          recognise is passed on to :func:`librosa.load`, which falls back to
          audioread (that needs a decoder such as ffmpeg on the machine). Pipes,
          devices, sockets and text-mode streams are refused: read a stream into
          :class:`io.BytesIO` first;
        - an array of samples at ``orig_sr``: 1-D (mono) or 2-D (channels). In a
          2-D array the **smaller axis is the channel axis** (a square array is read
          as channels first). Float samples are used as they are; integer PCM is
          scaled to [-1, 1) (``int16`` divided by 32768, ``uint8`` centred on 128).

        Several channels are averaged to mono.
    sr : int, default=16000
        Sampling rate of the result in Hz. Audio at another rate is resampled with
        :func:`librosa.resample` (see ``res_type``).
    orig_sr : int, default=None
        Sampling rate of an array ``source``; ``None`` means ``sr``. Must be ``None``
        for files, whose rate is read from the file.
    offset : float, default=0.0
        Start reading this many seconds into the audio. An offset at or past the end
        of the audio is an error.
    duration : float, default=None
        Read at most this many seconds; ``None`` reads to the end. Audio shorter than
        ``offset + duration`` is returned as it is (not padded).
    allow_truncated : bool, default=False
        Whether to return the part of a truncated file that is there, or the audio
        decoded before a decoding error (a FLAC file cut inside a frame), instead of
        raising :class:`AudioLoadError`. See Notes for what counts as truncated.
    max_samples : int, default=None
        The most frames this function decodes from a file, and the most samples it
        returns after resampling; ``None`` means :data:`MAX_SAMPLES` (2**28, 1 GiB
        of float32). Audio over the bound is refused before it is decoded or
        resampled, so that a forged header cannot exhaust memory.
    res_type : str, default="soxr_hq"
        Resampler, :func:`librosa.resample`'s ``res_type``: ``"soxr_vhq"``,
        ``"soxr_hq"``, ``"soxr_mq"``, ``"soxr_lq"``, ``"soxr_qq"`` or
        ``"polyphase"``. ``"soxr_mq"`` resampled 44.1 kHz music to 16 kHz about 7
        times faster than ``"soxr_hq"`` (``benchmarks/bench_e2e.py``).

    Returns
    -------
    y : ndarray of shape (n_samples,), dtype float32
        Mono samples at ``sr``. Silence is valid audio and is returned as zeros.

    Raises
    ------
    AudioLoadError
        The message names the source and the cause: file not found, a directory, a
        pipe or device, empty file (0 bytes), a text-mode or non-seekable stream, not
        a readable audio file, truncated (unless ``allow_truncated``) or malformed
        audio, a sampling rate outside [1000, 1000000] Hz, more than ``max_samples``,
        no audio samples, NaN or infinite samples, an ``offset`` past the end.
    ValueError
        For bad ``sr``, ``orig_sr``, ``offset``, ``duration``, ``max_samples`` or
        ``res_type`` values.

    See Also
    --------
    sklearn_music.MelSpectrogramTransformer : Reads audio with this function.
    librosa.load : The loader of librosa, on which the fallback relies.

    Notes
    -----
    A file is truncated when its container says so:

    - a WAV/AIFF header that declares more data than the file holds, or a FLAC,
      WAV or other stream that ends before the number of frames its header declares;
    - an Ogg file (Vorbis, Opus, FLAC) whose last bytes start a page that does not
      end. A complete last page without the end-of-stream flag only gives a
      :class:`UserWarning`: complete files in the wild end that way, and so does a
      file cut exactly between two pages;
    - an MP3 file whose last MPEG frame runs past the end of the file, or that holds
      fewer frames than its Xing/Info/VBRI header declares. libsndfile's MP3 length
      is an estimate from the first frame (often off by a few frames for files
      without a Xing header), so it is never compared with the decoded length; a
      CBR file without a Xing header cut exactly between two frames goes unseen.

    The end of an Ogg or MP3 file is checked whatever ``offset`` and ``duration``
    are; other damage is found only in the part that is decoded. Formats read
    through the audioread fallback are not checked for truncation.

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
    max_samples = _check_max_samples(max_samples)
    if res_type not in RES_TYPES:
        raise ValueError(f"res_type={res_type!r} must be one of {RES_TYPES}")
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

    if is_path or is_file:
        y, rate = _load_file(
            source,
            what,
            is_path=is_path,
            offset=offset,
            duration=duration,
            sr=sr,
            allow_truncated=bool(allow_truncated),
            max_samples=max_samples,
        )
    else:
        rate = sr if orig_sr is None else orig_sr
        y = _load_array(source, what, rate, offset, duration)

    if not np.isfinite(y).all():
        bad = int(np.size(y) - np.isfinite(y).sum())
        raise AudioLoadError(f"{what}: {bad} samples are NaN or infinity")
    if rate != sr:
        import librosa

        _check_size(what, y.size, rate, sr, max_samples)
        y = librosa.resample(y, orig_sr=rate, target_sr=sr, res_type=res_type)
        if y.size == 0:
            raise AudioLoadError(
                f"{what}: too short to resample from {rate} Hz to {sr} Hz (no samples left)"
            )
    return np.ascontiguousarray(y, dtype=np.float32)


def _load_file(source, what, *, is_path, offset, duration, sr, allow_truncated, max_samples):
    """Decode a path or a file-like object; (mono samples, rate)."""
    kwargs = dict(offset=offset, duration=duration, sr=sr, max_samples=max_samples)
    if is_path:
        source = os.fsdecode(source)
        _check_path(source, what)
    else:
        _check_filelike(source, what)
    start = None if is_path else source.tell()
    try:
        y, rate, fmt = _read_soundfile(source, what, allow_truncated=allow_truncated, **kwargs)
    except _NotRecognised as exc:
        if not is_path:
            raise AudioLoadError(f"{what}: not a readable audio file ({exc})") from None
        y, rate = _read_audioread(source, what, offset, duration, str(exc))
        return y, rate
    if not allow_truncated:
        if start is not None:
            source.seek(start)
        reason = _check_complete(source, what, fmt, is_path)
        if isinstance(reason, _audio_checks.Suspect):
            warnings.warn(
                f"{what}: {reason}: it may be cut between two pages (some encoders "
                "omit the flag on complete files); loaded as it is",
                UserWarning,
                stacklevel=3,
            )
        elif reason is not None:
            raise _truncated(what, reason)
    return y, rate


def _load_array(source, what, rate, offset, duration):
    """Mono samples of an array source, cut to [offset, offset + duration)."""
    if isinstance(source, (numbers.Number, dict, set)) or source is None:
        raise AudioLoadError(
            f"{type(source).__name__} {source!r} is not an audio source; pass a "
            "path, a file-like object or an array of samples"
        )
    y = _array_to_mono(source, what)
    if y.size == 0:
        raise AudioLoadError(f"{what}: contains no audio samples")
    start = int(round(offset * rate))
    if start >= y.size:
        raise _past_end(what, offset, y.size / rate)
    stop = y.size
    if duration is not None:
        stop = start + max(1, int(round(duration * rate)))
    return y[start:stop]
