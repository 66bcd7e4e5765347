"""Front-end variants of ``bench_e2e.py`` and their retrieval score on the dev set.

A *variant* turns one file (or one clip of it) into the default log-mel grid
(16 kHz, n_fft 1024, hop 512, 128 Slaney mel bands up to 8 kHz, dB): through
:func:`sklearn_music.load_audio` with a resampler (``soxr_hq``, the package default,
``soxr_mq``, ``soxr_lq``), or at the file's native rate (``native``): no resampling;
the STFT is taken at the file's rate with the window scaled to the same duration
(``round(1024 * sr0 / 16000)`` samples, zero-padded to a fast FFT length), frame
starts at the same times (the hop, ``512 * sr0 / 16000`` samples, rounded per
frame), the mel filter bank built for that rate and FFT length (up to 8 kHz), and the
power scaled so that a stationary signal gives the same mel energies.
"""

import math
import time
from pathlib import Path

import numpy as np

SR, N_FFT, HOP, N_MELS = 16000, 1024, 512, 128
RESAMPLERS = ("soxr_hq", "soxr_mq", "soxr_lq")
VARIANTS = RESAMPLERS + ("native",)
_BLOCK = 64


class NativeMel:
    """Log-mel of a waveform at its native rate ``sr0`` on the 16 kHz frame grid."""

    def __init__(self, sr0):
        import librosa
        import scipy.fft

        ratio = sr0 / SR
        self.win = int(round(N_FFT * ratio))
        self.nfft = scipy.fft.next_fast_len(self.win, real=True)
        self.hop = HOP * ratio
        self.window = librosa.filters.get_window("hann", self.win, fftbins=True)
        basis = librosa.filters.mel(
            sr=sr0, n_fft=self.nfft, n_mels=N_MELS, fmin=0.0, fmax=SR / 2, dtype=np.float32
        )
        self.keep = int(np.flatnonzero(basis.any(axis=0))[-1]) + 1  # bins up to 8 kHz
        ref = librosa.filters.get_window("hann", N_FFT, fftbins=True)
        # energy of a stationary signal in a Slaney filter ~ n_fft * sum(window**2)
        gain = (N_FFT * np.sum(ref**2)) / (self.nfft * np.sum(self.window**2))
        self.basis_t = np.ascontiguousarray((basis[:, : self.keep] * gain).T, dtype=np.float32)

    def __call__(self, y, n_out):
        """dB mel spectrogram (128, 1 + n_out // 512) of ``y``; ``n_out`` is the
        length the resampled signal would have."""
        from numpy.lib.stride_tricks import sliding_window_view

        n_frames = 1 + n_out // HOP
        pad = self.win // 2
        view = sliding_window_view(np.pad(y, (pad, pad)), self.win)
        starts = np.minimum(np.round(np.arange(n_frames) * self.hop).astype(int), len(view) - 1)
        out = np.empty((n_frames, N_MELS), dtype=np.float32)
        for a in range(0, n_frames, _BLOCK):
            b = min(a + _BLOCK, n_frames)
            spec = np.fft.rfft(view[starts[a:b]] * self.window, n=self.nfft, axis=1)
            spec = spec[:, : self.keep]
            mag = (spec.real**2 + spec.imag**2).astype(np.float32)
            np.matmul(mag, self.basis_t, out=out[a:b])
        return (10.0 * np.log10(np.maximum(out.T, np.float32(1e-10)))).astype(np.float32)


_KERNELS = {}


def _native_kernel(sr0):
    if sr0 not in _KERNELS:
        _KERNELS[sr0] = NativeMel(sr0)
    return _KERNELS[sr0]


def variant_mel(path, variant, *, offset=0.0, duration=None):
    """The log-mel of one file (or of ``duration`` s from ``offset``) by ``variant``."""
    import soundfile as sf

    from sklearn_music import MelSpectrogramTransformer, load_audio

    if variant != "native":
        y = load_audio(path, sr=SR, offset=offset, duration=duration, res_type=variant)
        if duration is not None:
            y = y[: int(duration * SR)]
        return MelSpectrogramTransformer().transform([y])[0]
    sr0 = sf.info(path).samplerate
    y = load_audio(path, sr=sr0, offset=offset, duration=duration)
    n_out = math.ceil(y.size * SR / sr0)
    if duration is not None:
        n_out = min(n_out, int(duration * SR))
    return _native_kernel(sr0)(y, n_out)


def _track_mels(folder, plan, t, variant):
    """The mels of the clips of track ``t`` (one BLAS thread)."""
    from threadpoolctl import threadpool_limits

    rows = np.flatnonzero(plan["track"] == t)
    path = str(Path(folder) / plan["track_files"][t])
    with threadpool_limits(1, user_api="blas"):
        mels = [
            variant_mel(path, variant, offset=float(plan["offset"][r]), duration=30.0) for r in rows
        ]
    return rows, mels


def dev_mels(folder, plan, variant, n_jobs=2):
    """Log-mels (n_clips, 128, 938) of every dev clip by ``variant``, and seconds."""
    from joblib import Parallel, delayed

    t0 = time.perf_counter()
    out = np.empty((len(plan["files"]), N_MELS, 938), dtype=np.float32)
    jobs = (delayed(_track_mels)(folder, plan, t, variant) for t in np.unique(plan["track"]))
    for rows, mels in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        out[rows] = np.stack(mels)
    return out, time.perf_counter() - t0


def feature_difference(mel, ref):
    """Max and mean absolute dB difference and correlation of two mel sets."""
    diff = np.abs(mel.astype(np.float64) - ref)
    corr = np.corrcoef(mel.ravel(), ref.ravel())[0, 1]
    return {"max_db": float(diff.max()), "mean_db": float(diff.mean()), "corr": float(corr)}


def retrieval(embedder, mel, plan):
    """P@1, P@10 and mAP (album labels, own track excluded) of the embedded clips."""
    from _real_data import retrieval_scores, summary

    emb = embedder.transform(mel)
    return summary(retrieval_scores(emb, plan["album"], plan["track"]))
