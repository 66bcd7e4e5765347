"""load_audio: formats, file-likes, arrays, resampling, offset/duration, bad input."""

import io
import pathlib

import numpy as np
import pytest
import soundfile as sf

from sklearn_music.io import AudioLoadError, load_audio

SR = 8000


@pytest.fixture
def tone():
    """1.5 s of a 440 Hz tone at 8 kHz, float32 in [-0.5, 0.5]."""
    t = np.arange(int(1.5 * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _write(path, y, sr=SR, **kwargs):
    sf.write(path, y, sr, **kwargs)
    return path


# ----------------------------------------------------------------- formats
@pytest.mark.parametrize(
    "ext, subtype, atol",
    [
        ("wav", "FLOAT", 0),
        ("wav", "PCM_16", 1 / 2**15),
        ("flac", "PCM_16", 1 / 2**15),
        ("ogg", "VORBIS", None),
    ],
)
def test_formats_round_trip(tmp_path, tone, ext, subtype, atol):
    path = _write(tmp_path / f"tone.{ext}", tone, subtype=subtype)
    y = load_audio(path, sr=SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.shape == tone.shape
    if atol is None:  # lossy: compare the energy and the spectrum peak
        assert abs(np.sqrt(np.mean(y**2)) - np.sqrt(np.mean(tone**2))) < 0.02
        freqs = np.fft.rfftfreq(y.size, 1 / SR)
        assert abs(freqs[np.argmax(np.abs(np.fft.rfft(y)))] - 440) < 2
    else:
        np.testing.assert_allclose(y, tone, atol=atol)


def test_str_path_and_pathlike_agree(tmp_path, tone):
    path = _write(tmp_path / "tone.wav", tone, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(str(path), sr=SR), load_audio(path, sr=SR))
    assert isinstance(path, pathlib.Path)


def test_file_like(tmp_path, tone):
    buf = io.BytesIO()
    sf.write(buf, tone, SR, format="FLAC")
    buf.seek(0)
    np.testing.assert_allclose(load_audio(buf, sr=SR), tone, atol=1 / 2**15)
    with open(_write(tmp_path / "t.wav", tone, subtype="FLOAT"), "rb") as f:
        np.testing.assert_array_equal(load_audio(f, sr=SR), tone)


def test_stereo_file_is_averaged(tmp_path, tone):
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1)
    path = _write(tmp_path / "stereo.wav", stereo, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, sr=SR), tone / 2, atol=1e-7)


def test_resampling_file_matches_librosa(tmp_path, tone):
    import librosa

    path = _write(tmp_path / "tone.wav", tone, subtype="FLOAT")
    y = load_audio(path, sr=16000)
    expected = librosa.resample(tone, orig_sr=SR, target_sr=16000, res_type="soxr_hq")
    assert y.shape == (2 * tone.size,)
    np.testing.assert_allclose(y, expected, atol=1e-6)


# ----------------------------------------------------------------- arrays
def test_int16_pcm_is_scaled():
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_array_equal(
        load_audio(pcm, sr=SR), np.array([0, 0.5, -1, 32767 / 32768], np.float32)
    )


def test_other_integer_pcm():
    np.testing.assert_array_equal(
        load_audio(np.array([128, 0, 192], dtype=np.uint8), sr=SR), [0, -1, 0.5]
    )
    np.testing.assert_allclose(load_audio(np.array([2**30], dtype=np.int32), sr=SR), [0.5])


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_stereo_array_either_layout(tone, layout):
    stereo = np.stack([tone, -0.5 * tone])  # (2, n)
    if layout == "channels_last":
        stereo = stereo.T
    np.testing.assert_allclose(load_audio(stereo, sr=SR), 0.25 * tone, atol=1e-7)


def test_stereo_int16_array(tone):
    pcm = (np.stack([tone, tone]) * 32768).astype(np.int16)
    np.testing.assert_allclose(load_audio(pcm, sr=SR), tone, atol=1 / 2**15)


def test_array_resampled_from_orig_sr(tone):
    import librosa

    y = load_audio(tone, sr=4000, orig_sr=SR)
    np.testing.assert_allclose(
        y,
        librosa.resample(tone, orig_sr=SR, target_sr=4000, res_type="soxr_hq"),
        atol=1e-6,
    )
    assert y.shape == (tone.size // 2,)


def test_silence_is_valid():
    y = load_audio(np.zeros(100, dtype=np.float64), sr=SR)
    assert y.dtype == np.float32 and not y.any()


def test_list_input_and_float64():
    y = load_audio([0.0, 0.25, -0.25], sr=SR)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 0.25, -0.25])


# ----------------------------------------------------------- offset / duration
def test_offset_duration_file_and_array_agree(tmp_path, tone):
    path = _write(tmp_path / "tone.wav", tone, subtype="FLOAT")
    from_file = load_audio(path, sr=SR, offset=0.25, duration=0.5)
    from_array = load_audio(tone, sr=SR, offset=0.25, duration=0.5)
    np.testing.assert_array_equal(from_file, tone[2000:6000])
    np.testing.assert_array_equal(from_array, tone[2000:6000])


def test_duration_past_the_end_is_not_padded(tone):
    assert load_audio(tone, sr=SR, offset=1.0, duration=5.0).shape == (4000,)


def test_offset_past_the_end(tmp_path, tone):
    path = _write(tmp_path / "tone.wav", tone)
    match = r"tone\.wav'.*offset=1\.5 s is at or past the end.*1\.500 s"
    with pytest.raises(AudioLoadError, match=match):
        load_audio(path, sr=SR, offset=1.5)
    with pytest.raises(AudioLoadError, match=r"array input: offset=2\.0 s is at"):
        load_audio(tone, sr=SR, offset=2.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"offset": -1.0}, r"offset=-1\.0 must be finite and >= 0"),
        ({"offset": float("nan")}, r"offset=nan must be finite"),
        ({"duration": 0.0}, r"duration=0\.0 must be finite and > 0"),
        ({"duration": "1s"}, r"duration='1s' must be a real number"),
        ({"sr": 0}, r"sr=0 must be a positive integer"),
        ({"sr": 16000.5}, r"sr=16000\.5 must be a positive integer"),
        ({"orig_sr": -3}, r"orig_sr=-3 must be a positive integer"),
    ],
)
def test_bad_parameters(tone, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_audio(tone, **{"sr": SR, **kwargs})


def test_orig_sr_with_a_file_is_an_error(tmp_path, tone):
    path = _write(tmp_path / "tone.wav", tone)
    with pytest.raises(ValueError, match="orig_sr=44100 applies to arrays only"):
        load_audio(path, orig_sr=44100)


# ----------------------------------------------------------------- bad input
def _truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def test_missing_file(tmp_path):
    with pytest.raises(AudioLoadError, match=r"'.*nope\.wav': file not found"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioLoadError, match="is a directory"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").touch()
    with pytest.raises(AudioLoadError, match=r"empty\.wav': empty file \(0 bytes\)"):
        load_audio(tmp_path / "empty.wav")


def test_empty_file_like():
    with pytest.raises(AudioLoadError, match=r"<BytesIO object>: empty file-like"):
        load_audio(io.BytesIO(b""))


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n" * 20)
    with pytest.raises(AudioLoadError, match=r"notes\.wav': not a readable audio file"):
        load_audio(path)
    with pytest.raises(AudioLoadError, match=r"<BytesIO object>: not a readable audio"):
        load_audio(io.BytesIO(b"not audio" * 50))


def test_truncated_wav(tmp_path, tone):
    path = _truncate(_write(tmp_path / "cut.wav", tone))
    with pytest.raises(AudioLoadError, match=r"cut\.wav': truncated audio \(the header"):
        load_audio(path)
    partial = load_audio(path, sr=SR, allow_truncated=True)
    assert 0 < partial.size < tone.size
    np.testing.assert_allclose(partial, tone[: partial.size], atol=1 / 2**15)


@pytest.mark.parametrize("ext", ["ogg", "flac"])
def test_truncated_compressed(tmp_path, tone, ext):
    path = _truncate(_write(tmp_path / f"cut.{ext}", tone))
    with pytest.raises(AudioLoadError, match=rf"cut\.{ext}': (malformed or )?truncated"):
        load_audio(path)


def test_zero_samples_file(tmp_path):
    path = _write(tmp_path / "nothing.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioLoadError, match=r"nothing\.wav': contains no audio"):
        load_audio(path)


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 2)])
def test_zero_samples_array(shape):
    with pytest.raises(AudioLoadError, match="array input: contains no audio samples"):
        load_audio(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_array(tone, bad):
    tone[[3, 7]] = bad
    with pytest.raises(AudioLoadError, match="array input: 2 samples are NaN or inf"):
        load_audio(tone, sr=SR)


def test_nan_in_file(tmp_path, tone):
    tone[10] = np.nan
    path = _write(tmp_path / "nan.wav", tone, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match=r"nan\.wav': 1 samples are NaN or inf"):
        load_audio(path, sr=SR)


@pytest.mark.parametrize(
    "source, match",
    [
        (np.zeros((2, 3, 4)), r"must be 1-D \(mono\) or 2-D \(channels\), got shape \(2, 3, 4\)"),
        (np.ones(4, dtype=complex), "Complex data not supported"),
        (np.array(["a", "b"]), "samples of dtype <U1 are not audio"),
        (np.array([{}, 1.0], dtype=object), "object array whose items are not numbers"),
        (3.0, "float 3.0 is not an audio source"),
        (None, "NoneType None is not an audio source"),
    ],
)
def test_not_audio_arrays(source, match):
    with pytest.raises(AudioLoadError, match=match):
        load_audio(source)


def test_error_is_a_value_error():
    assert issubclass(AudioLoadError, ValueError)


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_block_reads_equal_one_read(tmp_path, ext, channels, monkeypatch):
    # load_audio decodes a file a block at a time into one reused buffer and mixes
    # each block down into the output: the samples must be those of one read of the
    # whole file averaged over the channels (numpy's mean), across block boundaries,
    # with an offset that does not fall on one, and when the header's length is
    # wrong (the output grows)
    import sklearn_music.io as smio

    rng = np.random.default_rng(0)
    data = (0.3 * rng.standard_normal((44100 * 2 + 123, channels))).astype(np.float32)
    path = tmp_path / f"noise.{ext}"
    sf.write(path, data, 44100)
    full, _ = sf.read(path, dtype="float32", always_2d=True)
    expected = full.mean(axis=1, dtype=np.float32)
    if channels == 2:  # load_audio's stereo mix: one add and a halving
        expected = (full[:, 0] + full[:, 1]) * np.float32(0.5)
    monkeypatch.setattr(smio, "_BLOCK_FRAMES", 1000)  # ~89 blocks
    np.testing.assert_array_equal(load_audio(path, sr=44100), expected)
    np.testing.assert_array_equal(
        load_audio(path, sr=44100, offset=0.5, duration=1.0), expected[22050:66150]
    )
    with monkeypatch.context() as m:  # a header that declares too few frames
        m.setattr(sf.SoundFile, "frames", property(lambda self: 5000))
        with sf.SoundFile(path) as f:
            got = smio._read_blocks(f, None, "x", 1 << 28, False)
    np.testing.assert_array_equal(got[0], expected)
    assert got[1] == len(expected)
