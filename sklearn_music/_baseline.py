"""MFCC summary statistics per track: the baseline the CNN embedding is compared to."""

import functools
from numbers import Integral

import numpy as np

from ._frontend import _load_track, _MelFrontend, _power_to_db
from .utils._docstring import Substitution, _shared_docs
from .utils._sklearn_compat import Interval

__all__ = ["MFCCStatistics"]

# librosa.feature.delta's default window
_DELTA_WIDTH = 9


def _delta(mfcc):
    """First-order deltas along time, as ``librosa.feature.delta(width=9)``.

    librosa's default ``mode="interp"`` needs at least 9 frames; a shorter track is
    extended by repeating its edge frames (``mode="nearest"``).
    """
    import librosa

    mode = "interp" if mfcc.shape[1] >= _DELTA_WIDTH else "nearest"
    return librosa.feature.delta(mfcc, width=_DELTA_WIDTH, order=1, axis=-1, mode=mode)


def _mfcc_stats_track(index, track, *, kernel, sr, offset, duration, short_tracks, top_db, n_mfcc):
    import scipy.fft

    y = _load_track(
        index, track, sr=sr, offset=offset, duration=duration, short_tracks=short_tracks
    )
    S_db = _power_to_db(kernel(y), top_db)
    mfcc = scipy.fft.dct(S_db, axis=0, type=2, norm="ortho")[:n_mfcc]
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), _delta(mfcc).std(axis=1)]).astype(
        np.float32
    )


@Substitution(**{k: v for k, v in _shared_docs.items() if k.startswith("frontend_")})
class MFCCStatistics(_MelFrontend):
    """Mean and spread of MFCCs per track: the MFCC-statistics baseline.

    Every track becomes a fixed-length vector of ``3 * n_mfcc`` features: the mean and
    standard deviation over time of its ``n_mfcc`` mel-frequency cepstral
    coefficients, then the standard deviation of their first-order deltas. These
    vectors with a nearest-neighbour search are the classic content-based baseline
    that the CNN embedding of :class:`~sklearn_music.ConvEmbedder` is measured
    against. The transformer is stateless.

    The MFCCs equal :func:`librosa.feature.mfcc` with the same parameters (mel power
    spectrogram as :class:`~sklearn_music.MelSpectrogramTransformer`, then
    ``power_to_db(ref=1.0, amin=1e-10, top_db=top_db)`` and an orthonormal DCT-II);
    the deltas equal :func:`librosa.feature.delta` with ``width=9``.

    Parameters
    ----------
    {frontend_sr}
    n_mfcc : int, default=20
        Number of MFCCs; at most ``n_mels``.
    n_fft : int, default=2048
        FFT window length in samples (librosa's default for MFCCs).
    hop_length : int, default=512
        Samples between successive frames.
    n_mels : int, default=128
        Number of mel bands fed to the DCT.
    {frontend_band}
    top_db : float, default=80.0
        Floor of the dB spectrogram below its maximum, as in
        :func:`librosa.feature.mfcc`; ``None`` for no floor.
    {frontend_crop}
    {frontend_jobs}

    See Also
    --------
    sklearn_music.MelSpectrogramTransformer : The spectrograms the CNN learns from.
    librosa.feature.mfcc : The reference for the coefficients.

    Notes
    -----
    ``X`` takes the same forms as in
    :class:`~sklearn_music.MelSpectrogramTransformer`: paths, file-like objects, 1-D
    waveforms, or a 2-D array whose rows are waveforms. The deltas of a track shorter
    than 9 frames (librosa's ``mode="interp"`` needs 9) are computed with
    ``mode="nearest"``, which repeats the edge frames.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music import MFCCStatistics
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((4, 16000)).astype(np.float32)  # 4 tracks of 1 s
    >>> stats = MFCCStatistics(n_mfcc=13)
    >>> stats.fit_transform(X).shape
    (4, 39)
    >>> stats.get_feature_names_out()[[0, 13, 26]].tolist()
    ['mfcc0_mean', 'mfcc0_std', 'delta_mfcc0_std']
    """

    _parameter_constraints: dict = {
        **_MelFrontend._parameter_constraints,
        "n_mfcc": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        sr=16000,
        n_mfcc=20,
        n_fft=2048,
        hop_length=512,
        n_mels=128,
        fmin=0.0,
        fmax=None,
        top_db=80.0,
        offset=0.0,
        duration=None,
        short_tracks="error",
        n_jobs=None,
        verbose=0,
    ):
        self.sr = sr
        self.n_mfcc = n_mfcc
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.top_db = top_db
        self.offset = offset
        self.duration = duration
        self.short_tracks = short_tracks
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check_params(self):
        fmax = self._check_band()
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc={self.n_mfcc} must not exceed n_mels={self.n_mels}")
        return fmax

    def transform(self, X):
        """Summarise the MFCCs of every track.

        Parameters
        ----------
        X : sequence of tracks or array-like of shape (n_tracks, n_samples)
            Paths, file-like objects or 1-D waveforms at ``sr``, or a 2-D array whose
            rows are waveforms.

        Returns
        -------
        X_new : ndarray of shape (n_tracks, 3 * n_mfcc), dtype float32
            Per track: MFCC means, MFCC standard deviations, standard deviations of
            the MFCC deltas (see :meth:`get_feature_names_out`).

        Raises
        ------
        AudioLoadError
            When a track cannot be read; the message names its index and file.
        """
        kernel, tracks = self._kernel_and_tracks(X, power=2.0)
        one = functools.partial(
            _mfcc_stats_track,
            kernel=kernel,
            sr=self.sr,
            offset=self.offset,
            duration=self.duration,
            short_tracks=self.short_tracks,
            top_db=self.top_db,
            n_mfcc=self.n_mfcc,
        )
        rows = self._map(one, tracks, "MFCC statistics")
        return np.vstack(rows)

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output features.

        Parameters
        ----------
        input_features : None
            Ignored; the input has samples, not named features.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``mfcc{i}_mean`` for every coefficient, then ``mfcc{i}_std``, then
            ``delta_mfcc{i}_std``.
        """
        k = range(self.n_mfcc)
        return np.asarray(
            [f"mfcc{i}_mean" for i in k]
            + [f"mfcc{i}_std" for i in k]
            + [f"delta_mfcc{i}_std" for i in k],
            dtype=object,
        )
