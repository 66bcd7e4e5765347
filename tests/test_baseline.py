"""MFCCStatistics against librosa.feature.mfcc and librosa.feature.delta."""

import librosa
import numpy as np
import pytest
import soundfile as sf

from sklearn_music._baseline import MFCCStatistics
from sklearn_music.io import AudioLoadError

SR = 16000


def _music_like(rng, seconds, f0=220.0):
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * f0 * t + 3 * np.sin(2 * np.pi * 5 * t))
    y *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
    return (y + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def _reference(y, n_mfcc=20, **kwargs):
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=n_mfcc, **kwargs)
    delta = librosa.feature.delta(mfcc, width=9, order=1)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), delta.std(axis=1)])


def _assert_close(out, ref):
    # MFCCs are on a dB scale: compare to 1e-5 of the largest magnitude
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_equals_librosa_mfcc_statistics(rng):
    X = np.stack([_music_like(rng, 5.0, f0) for f0 in (110.0, 440.0)])
    out = MFCCStatistics().fit_transform(X)
    assert out.shape == (2, 60) and out.dtype == np.float32
    for row, y in zip(out, X):
        _assert_close(row, _reference(y))


def test_other_parameters_and_ragged_tracks(rng):
    params = {
        "n_mfcc": 13,
        "n_fft": 1024,
        "hop_length": 256,
        "n_mels": 64,
        "fmin": 30.0,
        "fmax": 7000.0,
    }
    tracks = [_music_like(rng, 2.0), _music_like(rng, 3.3)]
    out = MFCCStatistics(**params).fit_transform(tracks)
    assert out.shape == (2, 39)
    for row, y in zip(out, tracks):
        _assert_close(row, _reference(y, **params))


def test_top_db_none(rng):
    y = _music_like(rng, 2.0)
    y[: SR // 2] = 0  # silence: the 80 dB floor matters
    out = MFCCStatistics(top_db=None).fit_transform([y])[0]
    with_floor = MFCCStatistics().fit_transform([y])[0]
    S_db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR), amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=S_db, n_mfcc=20)
    delta = librosa.feature.delta(mfcc)
    _assert_close(out, np.concatenate([mfcc.mean(1), mfcc.std(1), delta.std(1)]))
    assert not np.allclose(out, with_floor)


def test_short_tracks_use_nearest_delta_mode(rng):
    y = _music_like(rng, 0.2)  # 1 + 3200 // 512 = 7 frames
    out = MFCCStatistics().fit_transform([y])[0]
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20)
    assert mfcc.shape[1] == 7
    delta = librosa.feature.delta(mfcc, width=9, mode="nearest")
    _assert_close(out[:40], np.concatenate([mfcc.mean(1), mfcc.std(1)]))
    _assert_close(out[40:], delta.std(axis=1))
    assert out[40:].max() > 0.1
    # a single frame has no slope
    assert not MFCCStatistics().fit_transform([y[:100]])[0, 40:].any()


def test_feature_names_and_pandas_output(rng):
    stats = MFCCStatistics(n_mfcc=2)
    names = stats.get_feature_names_out()
    assert names.tolist() == [
        "mfcc0_mean",
        "mfcc1_mean",
        "mfcc0_std",
        "mfcc1_std",
        "delta_mfcc0_std",
        "delta_mfcc1_std",
    ]
    pd = pytest.importorskip("pandas")
    df = stats.set_output(transform="pandas").fit_transform(np.zeros((3, 4000)))
    assert isinstance(df, pd.DataFrame) and list(df.columns) == names.tolist()


def test_paths_parallel_and_errors(tmp_path, rng):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"t{i}.wav")
        sf.write(paths[-1], _music_like(rng, 1.0 + i / 4), SR, subtype="FLOAT")
    waves = [sf.read(p, dtype="float32")[0] for p in paths]
    expected = MFCCStatistics().fit_transform(waves)
    np.testing.assert_array_equal(MFCCStatistics().fit_transform(paths), expected)
    parallel = MFCCStatistics(n_jobs=2).fit_transform(paths)
    np.testing.assert_array_equal(parallel, expected)
    match = r"track 3: '.*missing\.wav': file not found"
    with pytest.raises(AudioLoadError, match=match):
        MFCCStatistics().fit_transform([*paths, tmp_path / "missing.wav"])


def test_n_mfcc_above_n_mels():
    with pytest.raises(ValueError, match="n_mfcc=40 must not exceed n_mels=32"):
        MFCCStatistics(n_mfcc=40, n_mels=32).fit(np.zeros((2, 100)))
