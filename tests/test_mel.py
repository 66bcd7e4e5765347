"""MelSpectrogramTransformer against librosa, input forms, parallelism and caching."""

import io
import pickle

import joblib
import librosa
import numpy as np
import pytest
import soundfile as sf
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_music import _mel
from sklearn_music._mel import MelSpectrogramTransformer
from sklearn_music.io import AudioLoadError
from sklearn_music.utils._sklearn_compat import InvalidParameterError

SR = 16000
# a relative error of 1e-5 on the power is 10 * log10(1 + 1e-5) dB on the dB scale
DB_ATOL = 10 * np.log10(1 + 1e-5)


def _music_like(rng, seconds, sr=SR):
    """A tone with vibrato and tremolo over noise, starting with 0.5 s of silence."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t + 3 * np.sin(2 * np.pi * 5 * t))
    y *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
    y += 0.02 * rng.standard_normal(t.size)
    y[: sr // 2] = 0.0
    return y.astype(np.float32)


def _librosa_mel(y, **kwargs):
    params = {"sr": SR, "n_fft": 1024, "hop_length": 512, "n_mels": 128, **kwargs}
    return librosa.feature.melspectrogram(y=y, center=True, pad_mode="constant", **params)


def _max_rel_err(S, ref):
    """Largest elementwise relative error; exact zeros must agree exactly."""
    np.testing.assert_array_equal(S == 0, ref == 0)
    nz = ref != 0
    return float(np.max(np.abs(S[nz] - ref[nz]) / np.abs(ref[nz])))


@pytest.fixture(scope="module")
def clip30():
    return _music_like(np.random.default_rng(0), 30.0)


# ----------------------------------------------------------- against librosa
def test_equals_librosa_on_30s(clip30):
    S = MelSpectrogramTransformer(log=None).fit_transform([clip30])
    ref = _librosa_mel(clip30)
    assert S.shape == (1, 128, 938) and S.dtype == np.float32
    assert _max_rel_err(S[0], ref) <= 1e-5


@pytest.mark.parametrize(
    "params",
    [
        {"n_fft": 512, "hop_length": 256, "n_mels": 64, "fmin": 50.0, "fmax": 6000.0},
        {"n_fft": 2048, "hop_length": 300, "n_mels": 96, "power": 1.0},
        {"n_fft": 511, "hop_length": 128, "n_mels": 40, "power": 1.5},
    ],
)
def test_equals_librosa_other_parameters(rng, params):
    y = _music_like(rng, 3.0)
    S = MelSpectrogramTransformer(log=None, **params).fit_transform([y])[0]
    assert _max_rel_err(S, _librosa_mel(y, **params)) <= 1e-5


def test_db_equals_power_to_db(clip30):
    ref = _librosa_mel(clip30)
    S = MelSpectrogramTransformer(log="db").fit_transform([clip30])[0]
    expected = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(S, expected, rtol=0, atol=DB_ATOL)
    assert S.min() == pytest.approx(-100.0)  # the silent start hits the 1e-10 floor

    S80 = MelSpectrogramTransformer(log="db", top_db=80.0).fit_transform([clip30])[0]
    expected80 = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=80.0)
    np.testing.assert_allclose(S80, expected80, rtol=0, atol=DB_ATOL)
    assert S80.min() == pytest.approx(S80.max() - 80.0)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_log1p_equals_reference(rng, scale):
    y = _music_like(rng, 4.0)
    S = MelSpectrogramTransformer(log="log1p", log1p_scale=scale).fit_transform([y])[0]
    expected = np.log1p(scale * _librosa_mel(y).astype(np.float64))
    assert _max_rel_err(S, expected) <= 1e-5


def test_ragged_batch(rng):
    tracks = [_music_like(rng, s) for s in (2.0, 3.5, 1.0)]
    out = MelSpectrogramTransformer(log=None, n_mels=64).fit_transform(tracks)
    assert isinstance(out, list) and len(out) == 3
    for S, y in zip(out, tracks):
        assert S.dtype == np.float32
        assert S.shape == (64, 1 + y.size // 512)
        assert _max_rel_err(S, _librosa_mel(y, n_mels=64)) <= 1e-5


def test_equal_lengths_give_3d_array(rng):
    X = np.stack([_music_like(rng, 1.0) for _ in range(3)])
    S = MelSpectrogramTransformer(log=None).fit_transform(X)
    assert isinstance(S, np.ndarray) and S.shape == (3, 128, 32)
    for s, y in zip(S, X):
        assert _max_rel_err(s, _librosa_mel(y)) <= 1e-5
    # a list of equal-length waveforms gives the same array
    as_list = MelSpectrogramTransformer(log=None).transform(list(X))
    np.testing.assert_array_equal(as_list, S)


def test_silence_is_the_db_floor():
    S = MelSpectrogramTransformer().fit_transform(np.zeros((2, 8000)))
    floor = librosa.power_to_db(np.zeros(1, np.float32), amin=1e-10, top_db=None)[0]
    np.testing.assert_array_equal(S, floor)  # -100 dB, as float32 gives it
    assert floor == pytest.approx(-100.0)


def test_int16_rows_are_pcm(rng):
    y = _music_like(rng, 1.0)
    pcm = np.round(y * 32767).astype(np.int16)
    S = MelSpectrogramTransformer(log=None).fit_transform(pcm[None, :])[0]
    assert _max_rel_err(S, _librosa_mel(pcm.astype(np.float32) / 32768)) <= 1e-5


# ----------------------------------------------------------- crop / pad
def test_duration_crops_from_offset_and_pads_with_zeros(rng):
    long, short = _music_like(rng, 3.0), _music_like(rng, 1.0)
    mel = MelSpectrogramTransformer(log=None, offset=0.5, duration=2.0)
    S = mel.fit_transform([long, short])
    assert isinstance(S, np.ndarray) and S.shape == (2, 128, 63)
    padded = np.zeros(32000, np.float32)
    padded[:8000] = short[8000:]
    assert _max_rel_err(S[0], _librosa_mel(long[8000:40000])) <= 1e-5
    assert _max_rel_err(S[1], _librosa_mel(padded)) <= 1e-5


def test_offset_past_a_track_names_it(rng):
    mel = MelSpectrogramTransformer(offset=2.0)
    with pytest.raises(AudioLoadError, match=r"track 1: array input: offset=2\.0 s"):
        mel.fit_transform([_music_like(rng, 3.0), _music_like(rng, 1.0)])


# ----------------------------------------------------------- short tracks
def test_short_tracks_from_start_reads_the_short_track_from_its_start(rng):
    long, short = _music_like(rng, 3.0), _music_like(rng, 1.0)
    mel = MelSpectrogramTransformer(log=None, offset=2.0, duration=1.5, short_tracks="from_start")
    S = mel.fit_transform([long, short])
    assert S.shape == (2, 128, 47)
    # the long track is read from the offset (and padded), as with the default
    default = MelSpectrogramTransformer(log=None, offset=2.0, duration=1.5)
    np.testing.assert_array_equal(S[0], default.fit_transform([long])[0])
    padded = np.zeros(24000, np.float32)
    padded[:16000] = short
    assert _max_rel_err(S[1], _librosa_mel(padded)) <= 1e-5


def test_short_tracks_pad_stands_silence_in(rng):
    long, short = _music_like(rng, 3.0), _music_like(rng, 1.0)
    mel = MelSpectrogramTransformer(log=None, offset=2.0, duration=1.5, short_tracks="pad")
    S = mel.fit_transform([long, short])
    assert S.shape == (2, 128, 47)
    assert np.all(S[1] == 0) and np.any(S[0] > 0)


def test_short_tracks_from_start_without_duration_gives_the_whole_track(rng):
    short = _music_like(rng, 1.0)
    mel = MelSpectrogramTransformer(log=None, offset=30.0, short_tracks="from_start")
    S = mel.fit_transform([short, _music_like(rng, 31.0)])
    assert [s.shape for s in S] == [(128, 32), (128, 32)]
    assert _max_rel_err(S[0], _librosa_mel(short)) <= 1e-5


@pytest.mark.parametrize("policy", ["from_start", "pad"])
def test_short_tracks_policy_applies_to_files(tmp_path, rng, policy):
    paths = []
    for i, seconds in enumerate((3.0, 1.0)):
        paths.append(tmp_path / f"t{i}.wav")
        sf.write(paths[-1], _music_like(rng, seconds), SR, subtype="FLOAT")
    mel = MelSpectrogramTransformer(offset=2.0, duration=1.0, short_tracks=policy)
    with_files = mel.fit_transform([paths[0], io.BytesIO(paths[1].read_bytes())])
    waves = [sf.read(p, dtype="float32")[0] for p in paths]
    np.testing.assert_array_equal(with_files, mel.transform(waves))
    with pytest.raises(AudioLoadError, match=r"track 1: .*t1\.wav.* at or past the end"):
        MelSpectrogramTransformer(offset=2.0, duration=1.0).fit_transform(paths)


def test_short_tracks_policy_does_not_hide_other_errors(tmp_path, rng):
    missing = tmp_path / "gone.wav"
    bad = _music_like(rng, 3.0)
    bad[40000] = np.nan  # after the offset
    mel = MelSpectrogramTransformer(offset=2.0, duration=1.0, short_tracks="from_start")
    with pytest.raises(AudioLoadError, match=r"track 0: '.*gone\.wav': file not found"):
        mel.fit_transform([missing])
    with pytest.raises(AudioLoadError, match=r"track 1: array input: 1 samples are NaN"):
        mel.fit_transform([_music_like(rng, 3.0), bad])


def test_short_tracks_pad_needs_a_duration():
    with pytest.raises(ValueError, match='short_tracks="pad" needs a duration'):
        MelSpectrogramTransformer(offset=1.0, short_tracks="pad").fit(np.zeros((1, 100)))


# ----------------------------------------------------------- files
@pytest.fixture
def wav_files(tmp_path, rng):
    paths = []
    for i, seconds in enumerate((1.0, 1.5)):
        path = tmp_path / f"track{i}.wav"
        sf.write(path, _music_like(rng, seconds), SR, subtype="FLOAT")
        paths.append(path)
    return paths


def test_paths_and_file_likes_as_input(wav_files):
    waves = [sf.read(p, dtype="float32")[0] for p in wav_files]
    mel = MelSpectrogramTransformer(n_mels=32)
    expected = mel.transform(waves)
    for X in (
        [str(p) for p in wav_files],
        wav_files,
        np.array([str(p) for p in wav_files], dtype=object),
        [io.BytesIO(p.read_bytes()) for p in wav_files],
    ):
        out = mel.fit_transform(X)
        assert isinstance(out, list)
        for a, b in zip(out, expected):
            np.testing.assert_array_equal(a, b)


def test_files_resampled_to_sr(tmp_path, rng):
    y = _music_like(rng, 1.0, sr=22050)
    sf.write(tmp_path / "x.flac", y, 22050)
    S = MelSpectrogramTransformer(sr=SR).fit_transform([tmp_path / "x.flac"])
    assert S.shape == (1, 128, 32)


def test_bad_track_error_names_index_and_file(wav_files, tmp_path):
    missing = tmp_path / "gone.wav"
    (tmp_path / "empty.ogg").touch()
    mel = MelSpectrogramTransformer()
    with pytest.raises(AudioLoadError, match=r"track 2: '.*gone\.wav': file not found"):
        mel.fit_transform([*wav_files, missing])
    with pytest.raises(AudioLoadError, match=r"track 0: '.*empty\.ogg': empty file"):
        mel.fit_transform([tmp_path / "empty.ogg", *wav_files])
    bad = np.ones((2, 100))
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mel.fit_transform(bad)
    with pytest.raises(AudioLoadError, match="track 1: array input: 1 samples are NaN"):
        mel.fit_transform([np.ones(100), bad[1]])


# ----------------------------------------------------------- parallelism
def test_n_jobs_2_equals_n_jobs_1(rng, wav_files):
    X = [_music_like(rng, s) for s in (1.0, 0.5, 1.0, 0.7)] + wav_files
    one = MelSpectrogramTransformer(n_mels=32, n_jobs=1).fit_transform(X)
    two = MelSpectrogramTransformer(n_mels=32, n_jobs=2).fit_transform(X)
    assert len(one) == len(two) == 6
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threads = MelSpectrogramTransformer(n_mels=32).fit_transform(X)
    for a, b in zip(one, threads):
        np.testing.assert_array_equal(a, b)


def test_files_run_largest_first_and_come_back_in_order(tmp_path, rng):
    # files in parallel are dispatched one per task, largest first, so that no
    # worker is left with a long file at the end; results keep the input order
    from sklearn_music._frontend import _largest_files_first

    paths = []
    for i, seconds in enumerate((0.4, 1.6, 0.8, 1.2, 0.2)):
        path = tmp_path / f"t{i}.wav"
        sf.write(path, _music_like(rng, seconds), SR, subtype="FLOAT")
        paths.append(path)
    missing = tmp_path / "missing.wav"
    assert _largest_files_first(paths + [missing]).tolist() == [1, 3, 2, 0, 4, 5]
    assert _largest_files_first([*paths[:2], np.zeros(10)]) is None  # not all files
    one = MelSpectrogramTransformer(n_mels=16, n_jobs=1).fit_transform(paths)
    two = MelSpectrogramTransformer(n_mels=16, n_jobs=2).fit_transform(paths)
    assert [s.shape for s in two] == [s.shape for s in one]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    # the error names the track's place in X, not its place in the dispatch order
    with pytest.raises(AudioLoadError, match=r"track 2: '.*missing\.wav'"):
        MelSpectrogramTransformer(n_jobs=2).fit_transform([*paths[:2], missing, *paths[2:]])


def test_error_crosses_process_boundary(tmp_path, rng):
    X = [_music_like(rng, 0.5), tmp_path / "missing.wav"]
    with pytest.raises(AudioLoadError, match=r"track 1: '.*missing\.wav'"):
        MelSpectrogramTransformer(n_jobs=2).fit_transform(X)


def test_verbose_shows_a_progress_bar(rng, capsys):
    MelSpectrogramTransformer(verbose=1).fit_transform(np.zeros((3, 1000)))
    err = capsys.readouterr().err
    assert "mel spectrograms" in err and "3/3" in err


# ----------------------------------------------------------- caching
def test_pipeline_memory_computes_spectrograms_once(tmp_path, rng, monkeypatch):
    calls = []
    original = _mel._mel_track

    def counting(index, track, **kwargs):
        calls.append(index)
        return original(index, track, **kwargs)

    monkeypatch.setattr(_mel, "_mel_track", counting)
    X = np.stack([_music_like(rng, 0.5) for _ in range(4)])
    flatten = FunctionTransformer(lambda S: S.reshape(len(S), -1))

    def pipe():
        return Pipeline(
            [("mel", MelSpectrogramTransformer(n_mels=16)), ("flat", flatten)],
            memory=str(tmp_path / "cache"),
        )

    first = pipe().fit_transform(X)
    assert calls == [0, 1, 2, 3]
    second = pipe().fit_transform(X)
    assert calls == [0, 1, 2, 3]  # the second fit read the cache
    np.testing.assert_array_equal(first, second)
    assert any((tmp_path / "cache").rglob("output.pkl"))
    pipe().set_params(mel__n_mels=8).fit_transform(X)  # new parameters: recomputed
    assert len(calls) == 8


def test_pickle_round_trip_is_deterministic(rng):
    X = np.stack([_music_like(rng, 0.5) for _ in range(2)])
    mel = MelSpectrogramTransformer(n_mels=16, log="log1p").fit(X)
    clone = pickle.loads(pickle.dumps(mel))
    np.testing.assert_array_equal(clone.transform(X), mel.transform(X))
    assert joblib.hash(clone) == joblib.hash(mel)


# ----------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X, err, match",
    [
        ("song.wav", ValueError, "got a single str 'song.wav'; wrap it in a list"),
        ([], ValueError, r"X holds no tracks \(0 samples\)"),
        (np.zeros(5), ValueError, r"got an array of shape \(5,\). Reshape your data"),
        (np.zeros((2, 3, 4)), ValueError, r"got an array of shape \(2, 3, 4\)"),
        ([np.zeros(10), 3.0], ValueError, r"track 1 of X is a scalar \(3.0\)"),
        (42, ValueError, "X must be a sequence of tracks .* got int"),
    ],
)
def test_bad_x(X, err, match):
    with pytest.raises(err, match=match):
        MelSpectrogramTransformer().fit(X)


@pytest.mark.parametrize(
    "params, err, match",
    [
        ({"fmax": 9000.0}, ValueError, r"fmax=9000.0 is above the Nyquist frequency sr/2=8000.0"),
        ({"fmin": 500.0, "fmax": 400.0}, ValueError, r"fmin=500.0 must be below fmax=400.0"),
        ({"log": "ln"}, InvalidParameterError, "'log' parameter"),
        ({"hop_length": 0}, InvalidParameterError, "'hop_length' parameter"),
        ({"duration": -1.0}, InvalidParameterError, "'duration' parameter"),
        ({"short_tracks": "skip"}, InvalidParameterError, "'short_tracks' parameter"),
    ],
)
def test_bad_parameters(params, err, match):
    X = np.zeros((1, 100))
    with pytest.raises(err, match=match):
        MelSpectrogramTransformer(**params).fit(X)
    with pytest.raises(err, match=match):
        MelSpectrogramTransformer(**params).transform(X)
