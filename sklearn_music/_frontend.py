"""Private base of the mel front end, shared by the mel and MFCC transformers.

:class:`_MelFrontend` holds what :class:`~sklearn_music.MelSpectrogramTransformer`
and :class:`~sklearn_music.MFCCStatistics` have in common (as scikit-learn's
``NeighborsBase`` does for its estimators): the shared parameter constraints, the
band check, the tags, and the mel kernel and track mapping that ``transform`` uses.
The module also holds the input handling (tracks as paths, file-likes or waveforms),
the parallel map over tracks and the numerical kernel.
"""

import numbers
import os
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array

from .io import AudioLoadError, load_audio
from .utils._sklearn_compat import Interval, StrOptions, _fit_context

# frames per FFT block: small enough to stay in cache, large enough to amortise
_BLOCK_FRAMES = 64
# librosa.power_to_db's floor on the power
_AMIN = 1e-10


# --------------------------------------------------------------------------- #
# input handling
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
        if arr.ndim == 2 and arr.shape[1] == 1 and arr.size and _is_source(arr[0, 0]):
            arr = arr[:, 0]  # one column of paths: df[["path"]]
        if arr.dtype.kind in "OUS" and arr.ndim == 1:
            tracks = list(arr)
        elif arr.ndim == 2 and arr.size and any(_is_source(v) for v in arr[0]):
            columns = list(getattr(X, "columns", range(arr.shape[1])))
            raise ValueError(
                f"X has {arr.shape[1]} columns ({columns[:5]}) of paths or objects; "
                'pass one column of tracks (df[["path"]] or df["path"]), or a '
                "numeric 2-D array whose rows are waveforms"
            )
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


def _load_track(index, track, *, sr, offset, duration, short_tracks="error", res_type="soxr_hq"):
    """load_audio with crop-or-pad to ``duration``; errors name the track.

    A track that ends at or before ``offset`` follows ``short_tracks``: ``"error"``
    raises, ``"from_start"`` reads it from its start, ``"pad"`` gives ``duration``
    seconds of silence. ``res_type`` is :func:`load_audio`'s resampler.
    """
    start = track.tell() if hasattr(track, "read") and hasattr(track, "tell") else None
    try:
        y = load_audio(track, sr=sr, offset=offset, duration=duration, res_type=res_type)
    except AudioLoadError as exc:
        y = None
        if short_tracks != "error" and offset != 0:
            y = _short_track(track, start, sr, res_type)
        if y is None or y.size > offset * sr:
            # not a short track (or the policy is "error"): the first error stands
            raise AudioLoadError(f"track {index}: {exc}") from None
        if short_tracks == "pad":
            y = np.zeros(0, dtype=np.float32)
    if duration is not None:
        n = int(round(duration * sr))
        if y.size < n:
            y = np.pad(y, (0, n - y.size))
        else:
            y = y[:n]
    return y


def _short_track(track, start, sr, res_type="soxr_hq"):
    """The whole of a track whose read from an offset failed; None if unreadable."""
    if start is not None:
        track.seek(start)
    try:
        return load_audio(track, sr=sr, res_type=res_type)
    except AudioLoadError:
        return None


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
    order = _largest_files_first(tracks)
    if order is not None:
        # files: one task each, largest first (longest-processing-time-first
        # scheduling), so that no worker is left with a long file at the end
        # while the other waits; sending the kernel with every file costs far
        # less than reading one (benchmarks/bench_e2e.py)
        bounds = np.arange(n + 1)
        batches = ([tracks[i]] for i in order)
    else:
        order = np.arange(n)
        bounds = np.linspace(0, n, min(n, 4 * n_workers) + 1).astype(int)
        batches = (tracks[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    with _one_blas_thread():
        tasks = (
            delayed(_map_batch)(func, int(order[a]), batch)
            for a, batch in zip(bounds[:-1], batches)
        )
        results = [None] * n
        # max_nbytes=None: send waveforms through the pipe; joblib's automatic
        # memory-mapping of large arguments cost ~8 ms a 30-s clip, more than the
        # spectrogram itself (benchmarks/bench_mel.py)
        parallel = Parallel(n_jobs=n_jobs, max_nbytes=None, return_as="generator")
        for (a, b), batch in zip(zip(bounds[:-1], bounds[1:]), parallel(tasks)):
            for i, res in zip(order[a:b], batch):
                results[i] = res
            if progress is not None:
                progress.update(len(batch))
        return results


def _largest_files_first(tracks):
    """Indices of ``tracks`` by decreasing file size when all are paths, else None.

    A file that cannot be stat-ed counts as empty (reading it raises the usual
    error, naming it, in its task).
    """
    if not all(isinstance(t, (str, os.PathLike)) for t in tracks):
        return None
    sizes = []
    for t in tracks:
        try:
            sizes.append(os.path.getsize(t))
        except OSError:
            sizes.append(0)
    # stable: equal sizes keep their order
    return np.argsort(-np.asarray(sizes, dtype=np.int64), kind="stable")


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


# --------------------------------------------------------------------------- #
# the base transformer
# --------------------------------------------------------------------------- #


class _MelFrontend(TransformerMixin, BaseEstimator):
    """Base of the stateless transformers that read tracks into mel spectrograms.

    Subclasses set the parameters of ``_parameter_constraints`` in ``__init__``
    (``sr``, ``n_fft``, ``hop_length``, ``n_mels``, ``fmin``, ``fmax``, ``top_db``,
    ``offset``, ``duration``, ``short_tracks``, ``n_jobs``, ``verbose``) and add their
    own constraints.
    """

    _parameter_constraints: dict = {
        "sr": [Interval(Integral, 1, None, closed="left")],
        "n_fft": [Interval(Integral, 2, None, closed="left")],
        "hop_length": [Interval(Integral, 1, None, closed="left")],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "fmin": [Interval(Real, 0, None, closed="left")],
        "fmax": [Interval(Real, 0, None, closed="neither"), None],
        "top_db": [Interval(Real, 0, None, closed="left"), None],
        "offset": [Interval(Real, 0, None, closed="left")],
        "duration": [Interval(Real, 0, None, closed="neither"), None],
        "short_tracks": [StrOptions({"error", "from_start", "pad"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def _check_band(self):
        """The upper mel frequency: fmax, or sr / 2; checks fmin < fmax <= sr / 2."""
        nyquist = self.sr / 2
        fmax = nyquist if self.fmax is None else float(self.fmax)
        if fmax > nyquist:
            raise ValueError(
                f"fmax={self.fmax} is above the Nyquist frequency sr/2={nyquist} (sr={self.sr})"
            )
        if self.fmin >= fmax:
            raise ValueError(f"fmin={self.fmin} must be below fmax={fmax} (fmax=None means sr/2)")
        return fmax

    def _check_params(self):
        """Checks between parameters; returns the upper mel frequency."""
        if self.short_tracks == "pad" and self.duration is None:
            raise ValueError(
                'short_tracks="pad" needs a duration: the silence that stands for a '
                "track shorter than offset is duration seconds long; set duration or "
                'use short_tracks="from_start"'
            )
        return self._check_band()

    # parameters added after 0.1, with the value that keeps an older model's behaviour
    _ADDED_PARAMS = {"short_tracks": "error"}

    def __setstate__(self, state):
        # a model pickled (or saved with skops) by an older release lacks them
        state = {**self._ADDED_PARAMS, **state}
        super().__setstate__(state)

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
        self : object
            The transformer.
        """
        self._check_params()
        _as_tracks(X)
        return self

    def _kernel_and_tracks(self, X, *, power):
        """Validate the parameters and ``X``; the mel kernel and the list of tracks."""
        self._validate_params()
        fmax = self._check_params()
        tracks = _as_tracks(X)
        kernel = _MelKernel(
            sr=self.sr,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=fmax,
            power=power,
        )
        return kernel, tracks

    def _map(self, func, tracks, desc):
        """``func(index, track)`` for every track, with ``n_jobs`` and ``verbose``."""
        return _map_tracks(func, tracks, n_jobs=self.n_jobs, verbose=self.verbose, desc=desc)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
