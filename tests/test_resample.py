"""The resampler choice of load_audio and MelSpectrogramTransformer (``res_type``)."""

import pickle

import librosa
import numpy as np
import pytest
import soundfile as sf

from sklearn_music import MelSpectrogramTransformer, load_audio
from sklearn_music.io import RES_TYPES
from sklearn_music.utils._sklearn_compat import InvalidParameterError


@pytest.fixture(scope="module")
def wav44(tmp_path_factory):
    """A 2-s stereo 44.1 kHz WAV file of a chirp and noise, and its mono samples."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * 44100) / 44100
    mono = 0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * rng.standard_normal(t.size)
    stereo = np.stack([mono, mono], axis=1).astype(np.float32)
    path = tmp_path_factory.mktemp("audio") / "chirp.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    return path, stereo.mean(axis=1)


@pytest.mark.parametrize("res_type", RES_TYPES)
def test_load_audio_resamples_with_librosa(wav44, res_type):
    path, mono = wav44
    expected = librosa.resample(mono, orig_sr=44100, target_sr=16000, res_type=res_type)
    np.testing.assert_allclose(load_audio(path, res_type=res_type), expected, atol=1e-6)
    np.testing.assert_allclose(
        load_audio(mono, orig_sr=44100, res_type=res_type), expected, atol=1e-6
    )


def test_default_is_soxr_hq(wav44):
    path, _ = wav44
    assert np.array_equal(load_audio(path), load_audio(path, res_type="soxr_hq"))
    assert MelSpectrogramTransformer().res_type == "soxr_hq"


def test_bad_res_type_is_refused(wav44):
    with pytest.raises(ValueError, match="res_type='kaiser_best' must be one of"):
        load_audio(wav44[0], res_type="kaiser_best")
    with pytest.raises(InvalidParameterError, match="res_type"):
        MelSpectrogramTransformer(res_type="fast").fit([wav44[0]])


def test_mel_transformer_uses_the_resampler(wav44):
    path, mono = wav44
    mq = MelSpectrogramTransformer(res_type="soxr_mq").fit_transform([path])
    y = librosa.resample(mono, orig_sr=44100, target_sr=16000, res_type="soxr_mq")
    np.testing.assert_allclose(mq, MelSpectrogramTransformer().transform([y]), atol=1e-3)
    hq = MelSpectrogramTransformer().transform([path])
    assert not np.array_equal(mq, hq)  # another resampler, other samples
    assert np.abs(mq - hq).mean() < 0.5  # but close spectrograms (dB)


def test_model_saved_without_res_type_loads_with_soxr_hq():
    old = MelSpectrogramTransformer(n_mels=40)
    state = old.__getstate__()
    del state["res_type"]  # as pickled before the parameter existed
    new = MelSpectrogramTransformer.__new__(MelSpectrogramTransformer)
    new.__setstate__(state)
    assert new.res_type == "soxr_hq"
    assert new.get_params()["n_mels"] == 40
    assert pickle.loads(pickle.dumps(new)).res_type == "soxr_hq"


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_channels_mixed_to_the_exact_mean(tmp_path, channels):
    # stereo takes a faster path than numpy's mean(axis=1): the same bits
    rng = np.random.default_rng(channels)
    data = rng.uniform(-1, 1, size=(3 * 44100 + 17, channels)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, data, 44100, subtype="FLOAT")
    expected = data.mean(axis=1, dtype=np.float32)
    assert np.array_equal(load_audio(path, sr=44100), expected)
