"""Log-mel spectrograms of audio tracks as a scikit-learn transformer."""

import functools
import numbers
import os
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from .io import AudioLoadError, load_audio

__all__ = ["MelSpectrogramTransformer"]

# frames per FFT block: small enough to stay in cache, large enough to amortise
_BLOCK_FRAMES = 64
# librosa.power_to_db's floor on the power
_AMIN = 1e-10


# --------------------------------------------------------------------------- #
# input handling shared with the MFCC baseline
# --------------------------------------------------------------------------- #
def _is_source(obj):
    """Whether ``obj`` is a single track: a path, a file-like or an array."""
    return isinstance(obj, (str, bytes, os.PathLike)) or hasattr(obj, "read")


def _as_tracks(X):
    """Check ``X`` and return it as a 2-D numeric array or a list of track sources.

    Nothing is read here: paths and file-likes are loaded track by track later.
    """
    if _is_source(X):
        raise ValueError(
            f"X must be a sequence of tracks, got a single {type(X).__name__} "
            f"{X!r}; wrap it in a list"
        )
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(
            "sparse input is not supported: X must be a sequence of paths or "
            "waveforms, or a dense 2-D array of waveforms"
        )
    if isinstance(X, np.ndarray) or (hasattr(X, "__array__") and not isinstance(X, (list, tuple))):
        arr = np.asarray(X)
        if arr.dtype.kind in "OUS" and arr.ndim == 1:
            tracks = list(arr)
        else:
            if arr.dtype.kind in "USV":
                raise ValueError(
                    f"X is an array of dtype {arr.dtype} with shape {arr.shape}; "
                    "pass paths as a 1-D sequence and waveforms as rows of a 2-D "
                    "numeric array"
                )
            if arr.ndim != 2:
                raise ValueError(
                    f"X must be a 2-D array whose rows are waveforms, got an array "
                    f"of shape {arr.shape}. Reshape your data: a single waveform "
                    "goes in a list ([y]); a list also takes tracks of other lengths "
                    "or paths"
                )
            return check_array(
                arr,
                dtype="numeric",
                ensure_min_samples=1,
                ensure_min_features=1,
                input_name="X",
            )
    else:
        try:
            tracks = list(X)
        except TypeError:
            raise ValueError(
                f"X must be a sequence of tracks (paths, file-likes or waveforms), "
                f"got {type(X).__name__}"
            ) from None
    if len(tracks) == 0:
        raise ValueError("X holds no tracks (0 samples); at least 1 is required")
    for i, track in enumerate(tracks):
        if _is_source(track):
            continue
        if isinstance(track, numbers.Number) or np.ndim(track) == 0:
            raise ValueError(
                f"track {i} of X is a scalar ({track!r}), not a waveform or a path; "
                "pass a 2-D array whose rows are waveforms or a list of 1-D arrays"
            )
    return tracks


def _track_name(track):
    if isinstance(track, (str, bytes, os.PathLike)):
        return repr(os.fsdecode(track))
    if hasattr(track, "read"):
        return repr(getattr(track, "name", f"<{type(track).__name__}>"))
    return f"waveform of shape {np.shape(track)}"


def _load_track(index, track, *, sr, offset, duration):
    """load_audio with crop-or-pad to ``duration``; errors name the track."""
    try:
        y = load_audio(track, sr=sr, offset=offset, duration=duration)
    except AudioLoadError as exc:
        raise AudioLoadError(f"track {index}: {exc}") from None
    if duration is not None:
        n = int(round(duration * sr))
        if y.size < n:
            y = np.pad(y, (0, n - y.size))
        else:
            y = y[:n]
    return y


def _one_blas_thread():
    """Context manager limiting BLAS to one thread in this process.

    A float32 matrix product's rounding depends on how BLAS splits it between
    threads; with one thread everywhere, ``n_jobs=1`` (this process, many BLAS
    threads) and ``n_jobs=k`` (joblib workers, fewer threads each) give
    bit-identical spectrograms. The products are small, so little is lost. It is
    entered once per call or per batch of tracks (about 0.2 ms each time).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _map_batch(func, start, batch):
    """``func(index, track)`` for a batch of tracks, with one BLAS thread."""
    with _one_blas_thread():
        return [func(start + j, track) for j, track in enumerate(batch)]


def _map_tracks(func, tracks, *, n_jobs, verbose, desc):
    """Apply ``func(index, track)`` to every track, in parallel with joblib.

    With one worker the tracks are processed in this process, without joblib's
    overhead. With several, each joblib task takes a contiguous batch of tracks
    (about four batches per worker), so that the mel kernel is sent once per batch.
    BLAS runs single-threaded in both cases, so the results do not depend on
    ``n_jobs``.
    """
    n = len(tracks)
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=n, desc=desc, unit="track")
    try:
        n_workers = effective_n_jobs(n_jobs)
        if n_workers == 1 or n == 1:
            results = []
            with _one_blas_thread():
                for i, track in enumerate(tracks):
                    results.append(func(i, track))
                    if progress is not None:
                        progress.update(1)
            return results
        return _map_batches(func, tracks, n_jobs, n_workers, progress)
    finally:
        if progress is not None:
            progress.close()


def _map_batches(func, tracks, n_jobs, n_workers, progress):
    """The parallel branch of :func:`_map_tracks`.

    The BLAS limit is process-wide: this process holds it for the whole call, so
    that with a thread-based backend (``parallel_config(backend="threading")``)
    a batch that ends restores one thread, not the caller's count, while other
    batches still run. Process workers set it per batch (:func:`_map_batch`).
    """
    n = len(tracks)
    with _one_blas_thread():
        bounds = np.linspace(0, n, min(n, 4 * n_workers) + 1).astype(int)
        tasks = (
            delayed(_map_batch)(func, int(a), tracks[a:b]) for a, b in zip(bounds[:-1], bounds[1:])
        )
        results = []
        # max_nbytes=None: send waveforms through the pipe; joblib's automatic
        # memory-mapping of large arguments cost ~8 ms a 30-s clip, more than the
        # spectrogram itself (benchmarks/bench_mel.py)
        parallel = Parallel(n_jobs=n_jobs, max_nbytes=None, return_as="generator")
        for batch in parallel(tasks):
            results.extend(batch)
            if progress is not None:
                progress.update(len(batch))
        return results


def _stack_or_list(arrays):
    """A 3-D array when every 2-D array has the same shape, else the list."""
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return arrays


# --------------------------------------------------------------------------- #
# the numerical kernel
# --------------------------------------------------------------------------- #
class _MelKernel:
    """Mel power spectrogram of one waveform; the mel basis is computed once."""

    def __init__(self, *, sr, n_fft, hop_length, n_mels, fmin, fmax, power):
        import librosa

        self.n_fft = n_fft
        self.hop_length = hop_length
        self.power = power
        # (n_freq, n_mels) float32, contiguous for the matmul
        self.basis_t = np.ascontiguousarray(
            librosa.filters.mel(
                sr=sr,
                n_fft=n_fft,
                n_mels=n_mels,
                fmin=fmin,
                fmax=fmax,
                dtype=np.float32,
            ).T
        )
        # float64 like librosa.stft, whose float32 frames meet a float64 window
        self.window = librosa.filters.get_window("hann", n_fft, fftbins=True)

    def __call__(self, y):
        """float32 mel power spectrogram of shape (n_mels, n_frames)."""
        pad = self.n_fft // 2
        frames = sliding_window_view(np.pad(y, (pad, pad)), self.n_fft)[:: self.hop_length]
        n_frames = frames.shape[0]
        out = np.empty((n_frames, self.basis_t.shape[1]), dtype=np.float32)
        for start in range(0, n_frames, _BLOCK_FRAMES):
            stop = min(start + _BLOCK_FRAMES, n_frames)
            spec = np.fft.rfft(frames[start:stop] * self.window, axis=1)
            if self.power == 2.0:
                mag = spec.real**2 + spec.imag**2
            elif self.power == 1.0:
                mag = np.abs(spec)
            else:
                mag = np.abs(spec) ** self.power
            np.matmul(mag.astype(np.float32), self.basis_t, out=out[start:stop])
        return np.ascontiguousarray(out.T)


def _power_to_db(S, top_db):
    """``10 * log10(max(S, 1e-10))``, floored at ``max - top_db`` when given."""
    S_db = 10.0 * np.log10(np.maximum(S, np.float32(_AMIN)))
    if top_db is not None:
        S_db = np.maximum(S_db, S_db.max() - np.float32(top_db))
    return S_db.astype(np.float32, copy=False)


def _mel_track(index, track, *, kernel, sr, offset, duration, log, top_db, log1p_scale):
    y = _load_track(index, track, sr=sr, offset=offset, duration=duration)
    S = kernel(y)
    if log == "db":
        S = _power_to_db(S, top_db)
    elif log == "log1p":
        S = np.log1p(np.float32(log1p_scale) * S)
    return S.astype(np.float32, copy=False)


def _check_band(estimator):
    """The upper mel frequency: fmax, or sr / 2; checks fmin < fmax <= sr / 2."""
    nyquist = estimator.sr / 2
    fmax = nyquist if estimator.fmax is None else float(estimator.fmax)
    if fmax > nyquist:
        raise ValueError(
            f"fmax={estimator.fmax} is above the Nyquist frequency sr/2={nyquist} "
            f"(sr={estimator.sr})"
        )
    if estimator.fmin >= fmax:
        raise ValueError(f"fmin={estimator.fmin} must be below fmax={fmax} (fmax=None means sr/2)")
    return fmax


_COMMON_CONSTRAINTS = {
    "sr": [Interval(Integral, 1, None, closed="left")],
    "n_fft": [Interval(Integral, 2, None, closed="left")],
    "hop_length": [Interval(Integral, 1, None, closed="left")],
    "n_mels": [Interval(Integral, 1, None, closed="left")],
    "fmin": [Interval(Real, 0, None, closed="left")],
    "fmax": [Interval(Real, 0, None, closed="neither"), None],
    "top_db": [Interval(Real, 0, None, closed="left"), None],
    "offset": [Interval(Real, 0, None, closed="left")],
    "duration": [Interval(Real, 0, None, closed="neither"), None],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
}


class MelSpectrogramTransformer(TransformerMixin, BaseEstimator):
    """Mel spectrograms of audio tracks, on a log scale by default.

    Each track is read with :func:`sklearn_music.load_audio` (mono, resampled to
    ``sr``), optionally cropped or padded to ``duration`` seconds, and turned into a
    mel power spectrogram equal to :func:`librosa.feature.melspectrogram` with the same
    parameters (Hann window, ``center=True``, ``pad_mode="constant"``, Slaney mel
    filters), then put on the scale ``log`` asks for. The transformer is stateless:
    ``fit`` checks the parameters and learns nothing.

    Parameters
    ----------
    sr : int, default=16000
        Sampling rate in Hz. Files are resampled to it; waveforms given as arrays are
        taken to be at this rate.
    n_fft : int, default=1024
        Length of the FFT window in samples.
    hop_length : int, default=512
        Samples between successive frames. A track of ``n`` samples gives
        ``1 + n // hop_length`` frames.
    n_mels : int, default=128
        Number of mel bands.
    fmin : float, default=0.0
        Lowest frequency of the mel filters in Hz.
    fmax : float, default=None
        Highest frequency of the mel filters in Hz; ``None`` means ``sr / 2``.
    power : float, default=2.0
        Exponent of the magnitude: 2 for power, 1 for amplitude.
    log : {"db", "log1p"} or None, default="db"
        Scale of the output ``S`` from the mel spectrogram ``M``:

        - ``"db"``: ``10 * log10(max(M, 1e-10))``, i.e.
          ``librosa.power_to_db(M, ref=1.0, amin=1e-10, top_db=top_db)``;
        - ``"log1p"``: ``log1p(log1p_scale * M)`` (Dieleman & Schrauwen, 2014);
        - ``None``: ``M`` itself.
    top_db : float, default=None
        With ``log="db"``, floor each spectrogram at its maximum minus ``top_db`` dB.
        ``None`` (no floor) keeps the values independent of the loudest frame;
        note that librosa's own default is 80.
    log1p_scale : float, default=10000.0
        The constant ``C`` in ``log1p(C * M)`` with ``log="log1p"``.
    offset : float, default=0.0
        Start each track this many seconds in. An offset at or past a track's end is
        an error.
    duration : float, default=None
        Crop-or-pad policy. ``None`` keeps each track whole (from ``offset``); a
        number of seconds takes that much audio from ``offset`` on and pads a shorter
        track with zeros at the end, so every track gives the same number of frames.
    n_jobs : int, default=None
        Number of tracks processed in parallel with :class:`joblib.Parallel`;
        ``None`` means 1 unless in a :func:`joblib.parallel_config` context
        (``parallel_config(backend="dask")`` runs on a dask cluster). ``-1`` uses all
        processors. Parallelism pays off for files (decoding and resampling
        dominate); for short waveforms already in memory, copying them to the
        workers can cost more than it saves (``benchmarks/bench_mel.py``).
    verbose : int, default=0
        Show a tqdm progress bar over the tracks when non-zero.

    See Also
    --------
    sklearn_music.load_audio : Reads one track.
    sklearn_music.MFCCStatistics : MFCC summary statistics per track.
    librosa.feature.melspectrogram : The reference this transformer equals.

    Notes
    -----
    **Input.** ``X`` is a sequence of tracks (paths, binary file-like objects, 1-D
    waveforms at ``sr``; integer PCM is scaled to [-1, 1], 2-D arrays are channels
    averaged to mono) or a 2-D array whose rows are equal-length waveforms.

    **Output.** A float32 array ``(n_tracks, n_mels, n_frames)`` when every track
    gives the same number of frames (always so with a 2-D array or ``duration``).
    Otherwise the *ragged form*: a python ``list`` of float32 arrays
    ``(n_mels, n_frames_i)``, in the order of ``X``, which
    :class:`~sklearn_music.ConvEmbedder` accepts as it is.

    **No feature names.** The output is 3-D (or ragged), not a table of features, so
    there is no ``get_feature_names_out`` and no ``set_output``; for the same reason
    ``fit`` records no ``n_features_in_``: the length of a waveform is free.

    **Speed.** The mel filter bank is built once per call of ``transform``; frames are
    transformed in cache-sized blocks with a real FFT in double precision (as librosa
    does) and projected on the filter bank with one float32 matrix product per block.
    See ``benchmarks/bench_mel.py`` for timings against librosa.

    **Caching.** The transformer is deterministic and picklable, so a
    ``Pipeline(memory=...)`` computes the spectrograms of a data set once across a
    grid search. The cache key of a path is its name, not the file's content: clear
    the cache when files change. File-like objects are consumed by reading them; use
    paths or arrays in cached pipelines.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music import MelSpectrogramTransformer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((3, 16000)).astype(np.float32)  # 3 tracks of 1 s
    >>> mel = MelSpectrogramTransformer(n_mels=64)
    >>> mel.fit_transform(X).shape
    (3, 64, 32)
    >>> ragged = mel.transform([X[0], X[1, :8000]])
    >>> [S.shape for S in ragged]
    [(64, 32), (64, 16)]
    """

    _parameter_constraints: dict = {
        **_COMMON_CONSTRAINTS,
        "power": [Interval(Real, 0, None, closed="neither")],
        "log": [StrOptions({"db", "log1p"}), None],
        "log1p_scale": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        sr=16000,
        n_fft=1024,
        hop_length=512,
        n_mels=128,
        fmin=0.0,
        fmax=None,
        power=2.0,
        log="db",
        top_db=None,
        log1p_scale=10000.0,
        offset=0.0,
        duration=None,
        n_jobs=None,
        verbose=0,
    ):
        self.sr = sr
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.power = power
        self.log = log
        self.top_db = top_db
        self.log1p_scale = log1p_scale
        self.offset = offset
        self.duration = duration
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters and ``X``; nothing is learned.

        Parameters
        ----------
        X : sequence of tracks or array-like of shape (n_tracks, n_samples)
            Paths, file-like objects or 1-D waveforms, or a 2-D array whose rows are
            waveforms. Files are not read.
        y : None
            Ignored.

        Returns
        -------
        self : MelSpectrogramTransformer
            The transformer.
        """
        _check_band(self)
        _as_tracks(X)
        return self

    def transform(self, X):
        """Compute the (log-)mel spectrogram of every track.

        Parameters
        ----------
        X : sequence of tracks or array-like of shape (n_tracks, n_samples)
            Paths, file-like objects or 1-D waveforms at ``sr``, or a 2-D array whose
            rows are waveforms.

        Returns
        -------
        S : ndarray of shape (n_tracks, n_mels, n_frames) or list of ndarray
            float32 spectrograms; a list of ``(n_mels, n_frames_i)`` arrays when the
            tracks give different numbers of frames (see Notes).

        Raises
        ------
        AudioLoadError
            When a track cannot be read; the message names its index and file.
        """
        self._validate_params()
        fmax = _check_band(self)
        tracks = _as_tracks(X)
        kernel = _MelKernel(
            sr=self.sr,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=fmax,
            power=float(self.power),
        )

        one = functools.partial(
            _mel_track,
            kernel=kernel,
            sr=self.sr,
            offset=self.offset,
            duration=self.duration,
            log=self.log,
            top_db=self.top_db,
            log1p_scale=self.log1p_scale,
        )

        specs = _map_tracks(
            one,
            tracks,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            desc="mel spectrograms",
        )
        return _stack_or_list(specs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
