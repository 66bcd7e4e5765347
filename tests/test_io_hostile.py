"""load_audio against hostile input: cut files, forged headers, odd sources, fuzzing.

Every audio file here is generated in the test with soundfile; formats that this
libsndfile cannot write (MP3 needs libsndfile >= 1.1) are skipped with the reason.
"""

import io
import os
import re
import resource
import tempfile
import warnings

import numpy as np
import pytest
import soundfile as sf

from sklearn_music import _audio_checks
from sklearn_music import io as sm_io
from sklearn_music.io import AudioLoadError, load_audio

SR = 8000


def _signal(seconds, sr, seed=0):
    """A tone with some noise, so that lossy encoders spend bits on every frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def _encode(y, sr, fmt, subtype=None, **kwargs):
    buf = io.BytesIO()
    try:
        sf.write(buf, y, sr, format=fmt, subtype=subtype, **kwargs)
    except (sf.LibsndfileError, TypeError, ValueError) as exc:
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}: {exc}")
    return buf.getvalue()


def _mp3(y, sr, **kwargs):
    if "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} has no MP3 (needs >= 1.1)")
    return _encode(y, sr, "MP3", bitrate_mode="CONSTANT", compression_level=0.5, **kwargs)


def _without_xing(data):
    """A CBR MP3 without its Xing/Info tag: libsndfile then estimates its length."""
    for tag in (b"Xing", b"Info"):
        k = data.find(tag, 0, 200)
        if k >= 0:
            return data[:k] + b"\0\0\0\0" + data[k + 4 :]
    return data


def _with_tags(data):
    """Add an ID3v2 tag of 4 KiB before and an ID3v1 tag after, as the scummvm files."""
    n = 4096 - 10
    size = bytes([(n >> 21) & 127, (n >> 14) & 127, (n >> 7) & 127, n & 127])
    return b"ID3\x03\x00\x00" + size + b"\0" * n + data + b"TAG" + b"\0" * 125


def _decode_all(data):
    """Frames libsndfile declares and the frames a full decode gives (the reference)."""
    with sf.SoundFile(io.BytesIO(data)) as f:
        return f.frames, f.read(dtype="float32", always_2d=True).mean(axis=1)


def _write(path, data):
    path.write_bytes(data)
    return path


# ------------------------------------------------------------ item 0: valid MP3 files
@pytest.mark.parametrize("tags", [False, True], ids=["bare", "id3_tags"])
def test_mp3_with_inexact_length_estimate_loads(tmp_path, tags):
    data = _without_xing(_mp3(_signal(2.0, 44100), 44100))
    if tags:
        data = _with_tags(data)
    declared, reference = _decode_all(data)
    assert declared != reference.size, "the case needs libsndfile's estimate to be off"
    path = _write(tmp_path / "estimate.mp3", data)
    y = load_audio(path, sr=44100)
    np.testing.assert_array_equal(y, reference)
    with open(path, "rb") as f:  # a file-like object goes through the same checks
        np.testing.assert_array_equal(load_audio(f, sr=44100), reference)


def test_mp3_with_xing_header_loads(tmp_path):
    data = _mp3(_signal(1.0, 22050), 22050)
    _, reference = _decode_all(data)
    np.testing.assert_array_equal(load_audio(_write(tmp_path / "x.mp3", data), sr=22050), reference)


# ------------------------------------------------------------ item 2: cut files
@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9, 0.98])
@pytest.mark.parametrize("xing", [True, False], ids=["xing", "no_xing"])
def test_cut_mp3_is_truncated(tmp_path, fraction, xing):
    data = _mp3(_signal(3.0, 22050), 22050)
    if not xing:
        data = _with_tags(_without_xing(data))
    path = _write(tmp_path / "cut.mp3", data[: int(len(data) * fraction)])
    with pytest.raises(
        AudioLoadError, match=r"cut\.mp3': truncated audio \((its last MPEG frame|it holds)"
    ):
        load_audio(path)
    partial = load_audio(path, sr=22050, allow_truncated=True)
    _, full = _decode_all(data)
    assert 0 < partial.size < full.size


def test_mp3_missing_frames_counted_against_xing(tmp_path):
    data = _mp3(_signal(3.0, 22050), 22050)
    first, kind = _audio_checks._first_frame(data, 0)
    pos = first
    for _ in range(20):  # keep the Xing frame and 19 audio frames, cut between frames
        pos += _audio_checks._frame(data, pos)[1]
    path = _write(tmp_path / "short.mp3", data[:pos])
    with pytest.raises(AudioLoadError, match=r"short\.mp3': .*holds 19 MPEG frames of the"):
        load_audio(path)


def _ogg(subtype, seconds=10.0):
    sr = 48000 if subtype == "OPUS" else SR
    if subtype not in sf.available_subtypes("OGG"):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write OGG/{subtype}")
    return _encode(_signal(seconds, sr), sr, "OGG", subtype), sr


@pytest.fixture(scope="module")
def ten_seconds_of_ogg():
    """10-s Ogg files, encoded once per subtype for the module."""
    encoded = {}

    def get(subtype):
        if subtype not in encoded:
            encoded[subtype] = _ogg(subtype)
        return encoded[subtype]

    return get


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8, 0.9, 0.98])
@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_cut_ogg_is_truncated(tmp_path, ten_seconds_of_ogg, fraction, subtype):
    data, sr = ten_seconds_of_ogg(subtype)
    path = _write(tmp_path / "cut.ogg", data[: int(len(data) * fraction)])
    with pytest.raises(AudioLoadError, match=r"cut\.ogg': truncated audio \(the Ogg stream stops"):
        load_audio(path, sr=sr)
    with pytest.raises(AudioLoadError, match="truncated audio"):  # whatever part is asked
        load_audio(path, sr=sr, duration=0.5)
    partial = load_audio(path, sr=sr, allow_truncated=True)
    full = load_audio(_write(tmp_path / "full.ogg", data), sr=sr)
    assert 0 < partial.size < full.size
    n = partial.size - 4096  # the last decoded packet may differ: compare before it
    np.testing.assert_allclose(partial[:n], full[:n], atol=1e-6)


def test_cut_flac_gives_the_part_before_the_cut(tmp_path):
    y = _signal(10.0, SR)
    data = _encode(y, SR, "FLAC", "PCM_16")
    path = _write(tmp_path / "cut.flac", data[: len(data) // 2])
    with pytest.raises(AudioLoadError, match=r"cut\.flac': malformed or truncated audio"):
        load_audio(path, sr=SR)
    partial = load_audio(path, sr=SR, allow_truncated=True)
    assert y.size // 4 < partial.size < y.size
    np.testing.assert_allclose(partial, y[: partial.size], atol=1 / 2**15)


def _set_ogg_flags(data, page_start, flags):
    page = bytearray(data[page_start:])
    page[5] = flags
    page[22:26] = b"\0\0\0\0"
    page[22:26] = _audio_checks._ogg_crc(page).to_bytes(4, "little")
    return data[:page_start] + bytes(page)


def test_ogg_without_end_of_stream_flag_is_accepted(tmp_path):
    """Complete files from old encoders lack the flag (trackballs/tb_genesis.ogg)."""
    data, sr = _ogg("VORBIS", seconds=2.0)
    last = data.rfind(b"OggS")
    assert data[last + 5] & 0x04
    edited = _set_ogg_flags(data, last, data[last + 5] & ~0x04)
    path = _write(tmp_path / "noeos.ogg", edited)
    with pytest.warns(UserWarning, match=r"noeos\.ogg': its last Ogg page lacks the end-of"):
        y = load_audio(path, sr=sr)
    np.testing.assert_array_equal(y, load_audio(_write(tmp_path / "ok.ogg", data), sr=sr))


def test_ogg_cut_between_pages_warns(tmp_path):
    """A cut exactly between two pages cannot be told from a missing flag: a warning."""
    data, sr = _ogg("VORBIS", seconds=2.0)
    last = data.rfind(b"OggS")
    path = _write(tmp_path / "between.ogg", data[:last])
    with pytest.warns(UserWarning, match=r"between\.ogg': .* may be cut between two pages"):
        y = load_audio(path, sr=sr)
    assert 0 < y.size < 2 * sr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_audio(path, sr=sr, allow_truncated=True).size == y.size


def test_ogg_tail_with_a_bad_crc_is_not_a_page():
    data, _ = _ogg("VORBIS", seconds=2.0)
    last = data.rfind(b"OggS")
    assert _audio_checks._ogg_page_at(data, last) is not None
    broken = bytearray(data)
    broken[-1] ^= 0xFF
    assert _audio_checks._ogg_page_at(bytes(broken), last) is None


@pytest.mark.parametrize("size", [0xFFFFFFFF, 0x7FFFFFFF])
def test_wav_written_to_a_stream_is_not_truncated(size):
    """A writer that cannot seek back (ffmpeg to a pipe) leaves 'unknown' sizes."""
    y = _signal(0.5, SR)
    data = bytearray(_encode(y, SR, "WAV", "PCM_16"))
    data[4:8] = size.to_bytes(4, "little")
    data[40:44] = (size - 36).to_bytes(4, "little")
    np.testing.assert_allclose(load_audio(io.BytesIO(bytes(data)), sr=SR), y, atol=1 / 2**15)
    cut = bytearray(data)
    cut[40:44] = (len(data) - 44 + 1000).to_bytes(4, "little")  # 500 frames missing
    with pytest.raises(AudioLoadError, match="truncated audio"):
        load_audio(io.BytesIO(bytes(cut)), sr=SR)


# ------------------------------------------------------------ item 3: forged sizes
def _wav_with_rate(rate, seconds=0.1, n_bytes=None):
    data = bytearray(_encode(_signal(seconds, SR), SR, "WAV", "PCM_16"))
    if n_bytes is not None:  # pad the data chunk to n_bytes of silence
        extra = n_bytes - len(data)
        data += b"\0" * extra
        data[4:8] = (len(data) - 8).to_bytes(4, "little")
        data[40:44] = (len(data) - 44).to_bytes(4, "little")
    data[24:28] = rate.to_bytes(4, "little")
    data[28:32] = (2 * rate).to_bytes(4, "little")
    return bytes(data)


def test_wav_declaring_1_hz_is_refused_before_allocating(tmp_path):
    path = _write(tmp_path / "one_hz.wav", _wav_with_rate(1, n_bytes=200_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(AudioLoadError, match=r"one_hz\.wav': .*sampling rate of 1 Hz, outside"):
        load_audio(path)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200_000  # 1.6e9 float32 samples would be 6.4 GB


@pytest.mark.parametrize("rate", [999, 1_000_001, 2**31 - 1])
def test_absurd_rates_are_refused(tmp_path, rate):
    path = _write(tmp_path / "rate.wav", _wav_with_rate(rate))
    with pytest.raises(AudioLoadError, match=rf"sampling rate of {rate} Hz"):
        load_audio(path)


def test_resampled_size_is_bounded(tmp_path, monkeypatch):
    path = _write(tmp_path / "slow.wav", _wav_with_rate(1000, seconds=1.0))  # 8000 frames
    match = r"slow\.wav': 8000 frames at 1000 Hz would be 128000 samples at sr=16000 Hz"
    with pytest.raises(AudioLoadError, match=match + r", more than max_samples=100000"):
        load_audio(path, sr=16000, max_samples=100_000)
    assert load_audio(path, sr=16000, max_samples=128_000).size == 128_000
    monkeypatch.setattr(sm_io, "MAX_SAMPLES", 100_000)
    with pytest.raises(AudioLoadError, match="more than max_samples=100000"):
        load_audio(path, sr=16000)


def test_flac_declaring_2_to_the_36_frames_is_refused(tmp_path):
    data = bytearray(_encode(_signal(0.1, SR), SR, "FLAC", "PCM_16"))
    assert data[:4] == b"fLaC"
    data[21] |= 0x0F  # STREAMINFO: the 36 bits of total samples, all ones
    data[22:26] = b"\xff\xff\xff\xff"
    path = _write(tmp_path / "huge.flac", bytes(data))
    with pytest.raises(AudioLoadError, match=rf"huge\.flac': declares {2**36 - 1} frames, more"):
        load_audio(path)


def test_array_resampled_size_is_bounded():
    with pytest.raises(AudioLoadError, match=r"array input: 100000 frames at 1 Hz would be"):
        load_audio(np.zeros(100_000, np.float32), orig_sr=1, sr=16000)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_bad_max_samples(bad):
    with pytest.raises(ValueError, match=r"max_samples=.* must be a positive integer"):
        load_audio(np.zeros(10), sr=SR, max_samples=bad)


# ------------------------------------------------------------ item 4: unclear errors
def _m4a_head():
    """The first bytes of an MP4 audio file: an ftyp box and the start of a moov box."""
    ftyp = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2\x00\x00\x00\x00"
    return ftyp + b"\x00\x01\x00\x00moov\x00\x00\x00\x6cmvhd" + b"\x00" * 60


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("notes.mp3", b"these are not samples\n" * 20, "not a readable audio file"),
        ("tiny.mp3", bytes(range(60)), "not a readable audio file"),
        ("cut.m4a", _m4a_head(), "not a readable audio file"),
        ("notes.wav", b"RIFF" + b"not a wave" * 10, "not a readable audio file|malformed"),
        ("tone.ogg", b"OggS" + b"\x00" * 100, "not a readable audio file|malformed"),
    ],
)
def test_files_that_are_not_audio(tmp_path, name, content, match):
    path = _write(tmp_path / name, content)
    where = re.escape(f"'{tmp_path}/{name}'")
    with pytest.raises(AudioLoadError, match=rf"^{where}: ({match})") as info:
        load_audio(path)
    assert "does not exist" not in str(info.value) and "pipe" not in str(info.value)


def test_truncated_m4a_names_the_decoders_tried(tmp_path):
    path = _write(tmp_path / "cut.m4a", _m4a_head())
    with pytest.raises(AudioLoadError, match=r"cut\.m4a': not a readable audio file") as info:
        load_audio(path)
    assert "NoBackendError" not in str(info.value)
    assert "damaged, truncated or not audio" in str(info.value) or "audioread:" in str(info.value)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "stream.wav"
    os.mkfifo(fifo)  # no writer: opening it would block for ever
    with pytest.raises(AudioLoadError, match=r"stream\.wav': not a regular file \(a pipe"):
        load_audio(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    with pytest.raises(AudioLoadError, match=rf"'{device}': not a regular file"):
        load_audio(device)


def test_non_seekable_pipe_object():
    data = _encode(_signal(0.2, SR), SR, "WAV", "PCM_16")
    r, w = os.pipe()
    os.write(w, data[:4000])
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        with pytest.raises(AudioLoadError, match=r"a stream that cannot seek .*io\.BytesIO"):
            load_audio(pipe)


def test_text_mode_stream(tmp_path):
    path = _write(tmp_path / "t.wav", _encode(_signal(0.2, SR), SR, "WAV", "PCM_16"))
    with open(path, encoding="latin-1") as f:
        with pytest.raises(AudioLoadError, match=r"t\.wav': a text-mode stream; open the file"):
            load_audio(f)
    with pytest.raises(AudioLoadError, match=r"<StringIO object>: a text-mode stream"):
        load_audio(io.StringIO("RIFF"))


def test_closed_file(tmp_path):
    path = _write(tmp_path / "t.wav", _encode(_signal(0.2, SR), SR, "WAV", "PCM_16"))
    f = open(path, "rb")  # noqa: SIM115
    f.close()
    with pytest.raises(AudioLoadError, match=r"t\.wav': a closed file object"):
        load_audio(f)


def test_broken_symlink(tmp_path):
    (tmp_path / "link.wav").symlink_to(tmp_path / "gone.wav")
    with pytest.raises(AudioLoadError, match=r"link\.wav': a broken symbolic link"):
        load_audio(tmp_path / "link.wav")


@pytest.mark.parametrize("make", [np.str_, os.fsencode, str], ids=["np.str_", "bytes", "str"])
def test_messages_print_plain_paths(tmp_path, make):
    source = make(str(tmp_path / "nope.wav"))
    with pytest.raises(AudioLoadError) as info:
        load_audio(source)
    assert str(info.value) == f"'{tmp_path}/nope.wav': file not found"


def test_control_characters_in_names_are_escaped(tmp_path):
    with pytest.raises(AudioLoadError) as info:
        load_audio(tmp_path / "a\nb\t.wav")
    assert "\n" not in str(info.value) and "\t" not in str(info.value)
    assert "a\\nb\\t.wav" in str(info.value)


# ------------------------------------------------------------ item 5: fuzzing
@pytest.fixture(scope="module")
def seeds():
    """Small valid files of each format, as bytes, and their extensions."""
    y = _signal(0.25, SR)
    out = {
        "wav": _encode(y, SR, "WAV", "PCM_16"),
        "flac": _encode(y, SR, "FLAC", "PCM_16"),
        "ogg": _encode(y, SR, "OGG", "VORBIS"),
    }
    if "MP3" in sf.available_formats():
        out["mp3"] = _encode(_signal(0.25, 22050), 22050, "MP3")
    return out


def _mutate(data, edits):
    data = bytearray(data)
    for kind, pos, value in edits:
        if not data:
            break
        if kind == "flip":
            i = pos % len(data)
            data[i] ^= 1 << (value % 8)
        elif kind == "cut":
            del data[pos % (len(data) + 1) :]
        elif kind == "header":  # a little-endian or big-endian field in the header
            i = pos % min(len(data), 64)
            field = (value % 2**32).to_bytes(4, "little" if value >= 0 else "big")
            data[i : i + 4] = field
        else:  # "dup": repeat a slice, as a damaged copy might
            i = pos % len(data)
            data[i:i] = data[i : i + 1 + value % 4096]
    return bytes(data)


def _fuzz_strategy():
    from hypothesis import strategies as st

    values = st.one_of(
        st.integers(-(2**31), 2**32 - 1),
        st.sampled_from([0, 1, 2, 255, 2**16 - 1, 2**31 - 1, 2**32 - 1, -1]),
    )
    edit = st.tuples(
        st.sampled_from(["flip", "flip", "cut", "header", "header", "dup"]),
        st.integers(0, 2**20),
        values,
    )
    return st.lists(edit, min_size=1, max_size=4)


def _warm_up(tmp):
    """Run the lazy imports of the fallback and of resampling outside the deadline."""
    load_audio(np.zeros(100, np.float32), orig_sr=SR, sr=2 * SR)
    with tempfile.NamedTemporaryFile(suffix=".wav", dir=tmp) as f:
        f.write(b"not audio" * 10)
        f.flush()
        with pytest.raises(AudioLoadError):
            load_audio(f.name)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_fuzz_only_audio_load_error_escapes(seeds, fmt):
    hypothesis = pytest.importorskip("hypothesis")
    if fmt not in seeds:
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}")
    _warm_up(tempfile.gettempdir())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @hypothesis.settings(
        max_examples=40,
        deadline=5000,  # ms per input: generous, the machine is shared
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(edits=_fuzz_strategy(), as_file_object=hypothesis.strategies.booleans())
    def check(edits, as_file_object):
        data = _mutate(seeds[fmt], edits)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"fuzz.{fmt}")
            with open(path, "wb") as f:
                f.write(data)
            try:
                if as_file_object:
                    with open(path, "rb") as f:
                        y = load_audio(f, sr=SR)
                else:
                    y = load_audio(path, sr=SR)
            except AudioLoadError as exc:
                assert str(exc).startswith(("'", "<")), str(exc)  # it names the source
                return
        assert y.dtype == np.float32 and y.ndim == 1 and y.size > 0
        assert np.isfinite(y).all()

    check()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 1024, f"the fuzzed inputs raised the peak memory by {grown_mib:.0f} MiB"


# ------------------------------------------------------------ the real collections
def _collections():
    return [d for d in os.environ.get("SKLEARN_MUSIC_DATA", "").split(os.pathsep) if d]


@pytest.mark.slow
@pytest.mark.skipif(not _collections(), reason="SKLEARN_MUSIC_DATA is not set")
def test_real_collections_have_no_false_rejections():
    """Every file of the open collections loads (zero false truncation reports)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "bench_load_collections.py"
    spec = importlib.util.spec_from_file_location("bench_load_collections", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rejected = []
    for root in _collections():
        for path in bench.audio_files(root):
            try:  # the container checks are what rejected valid files; decode a little
                load_audio(path, sr=SR, duration=1.0)
            except AudioLoadError as exc:
                rejected.append(str(exc))
    assert not rejected, "\n".join(rejected)
