"""Tests for sklearn_music.datasets: make_tracks, load_audio_folder, fetch_gtzan."""

import functools
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sklearn_music.datasets import (
    clear_data_home,
    fetch_gtzan,
    get_data_home,
    load_audio_folder,
    make_tracks,
)
from sklearn_music.datasets._genres import _GENRES, _genre_spec
from sklearn_music.utils._sklearn_compat import InvalidParameterError

# --------------------------------------------------------------------------- make_tracks


@pytest.fixture(scope="module")
def small_tracks():
    return make_tracks(12, n_genres=3, n_artists_per_genre=2, duration=1.0, random_state=0)


def test_make_tracks_shapes_and_dtypes(small_tracks):
    b = small_tracks
    assert b.data.shape == (12, 16000)
    assert b.data.dtype == np.float32
    assert np.isfinite(b.data).all()
    assert np.abs(b.data).max() <= 1.0
    # every clip is audible, and no two clips are the same
    assert (np.sqrt((b.data**2).mean(axis=1)) > 1e-3).all()
    assert len({row.tobytes() for row in b.data}) == 12
    assert b.genre.shape == b.artist.shape == b.tempo.shape == (12,)
    assert b.genre.dtype.kind == b.artist.dtype.kind == "U"
    assert b.genre_names == ["rock", "techno", "jazz"]
    assert b.artist_names == [f"{g}_artist{k}" for g in b.genre_names for k in range(2)]
    assert b.sr == 16000
    for genre, artist, tempo in zip(b.genre, b.artist, b.tempo):
        assert artist.startswith(genre + "_artist")
        assert 30 < tempo < 260
    assert "Synthesized music genres" in b.DESCR


def test_make_tracks_descr_states_calibration():
    descr = make_tracks(1, duration=0.1, random_state=0).DESCR
    assert "about 0.0" not in descr
    assert "Genre accuracy: 0." in descr and "Artist accuracy: 0." in descr


def test_make_tracks_other_rate_and_duration():
    b = make_tracks(3, n_genres=3, duration=0.75, sr=8000, random_state=1)
    assert b.data.shape == (3, 6000) and b.sr == 8000
    assert np.isfinite(b.data).all()


def test_make_tracks_deterministic():
    kwargs = dict(n_tracks=6, duration=0.5)
    a = make_tracks(random_state=3, **kwargs)
    b = make_tracks(random_state=3, **kwargs)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.genre, b.genre)
    np.testing.assert_array_equal(a.artist, b.artist)
    np.testing.assert_array_equal(a.tempo, b.tempo)
    c = make_tracks(random_state=4, **kwargs)
    assert not np.array_equal(a.data, c.data)
    # A seeded RandomState instance gives the same as its seed.
    d = make_tracks(random_state=np.random.RandomState(3), **kwargs)
    np.testing.assert_array_equal(a.data, d.data)


@pytest.mark.parametrize("n_tracks, n_genres, n_artists", [(10, 3, 2), (13, 4, 3), (7, 7, 1)])
def test_make_tracks_label_balance(n_tracks, n_genres, n_artists):
    b = make_tracks(
        n_tracks, n_genres=n_genres, n_artists_per_genre=n_artists, duration=0.1, random_state=0
    )
    _, genre_counts = np.unique(b.genre, return_counts=True)
    assert len(genre_counts) == min(n_tracks, n_genres)
    assert genre_counts.max() - genre_counts.min() <= 1
    for genre in b.genre_names:
        artists = b.artist[b.genre == genre]
        _, counts = np.unique(artists, return_counts=True)
        assert counts.max() - counts.min() <= 1
    # shuffled: the genres do not come in a fixed cycle
    if n_tracks > n_genres > 1:
        assert not all(b.genre[i] == b.genre_names[i % n_genres] for i in range(n_tracks))


def test_make_tracks_generated_genres():
    b = make_tracks(10, n_genres=10, duration=0.2, random_state=0)
    assert b.genre_names[:8] == list(_GENRES)
    assert b.genre_names[8:] == ["genre_08", "genre_09"]
    assert set(b.genre) == set(b.genre_names)
    # a generated genre does not depend on the random_state
    assert _genre_spec(9) == _genre_spec(9)


def test_make_tracks_genres_differ_in_tempo():
    # Artists lean towards other genres, but the genre's own tempo range dominates.
    b = make_tracks(96, n_genres=8, n_artists_per_genre=3, duration=0.1, random_state=0)
    mean = {g: b.tempo[b.genre == g].mean() for g in b.genre_names}
    assert min(mean["rock"], mean["techno"], mean["metal"]) > max(mean["ambient"], mean["reggae"])
    assert mean["metal"] > mean["folk"] > mean["ambient"]


def test_make_tracks_return_X_y():
    X, y = make_tracks(5, duration=0.2, random_state=0, return_X_y=True)
    b = make_tracks(5, duration=0.2, random_state=0)
    np.testing.assert_array_equal(X, b.data)
    np.testing.assert_array_equal(y, b.genre)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_tracks=0),
        dict(n_genres=0),
        dict(duration=0.0),
        dict(sr=100),
        dict(n_artists_per_genre=0),
        dict(return_X_y="yes"),
    ],
)
def test_make_tracks_invalid_params(kwargs):
    with pytest.raises(InvalidParameterError):
        make_tracks(**kwargs)


def test_make_tracks_too_short():
    with pytest.raises(ValueError, match=r"duration=1e-05 at sr=16000 gives no sample"):
        make_tracks(1, duration=1e-5)


@pytest.mark.parametrize("vibrato", [0.0, 0.3])
def test_render_voice_matches_direct_synthesis(vibrato):
    # The vectorised voice (closed-form phase, Chebyshev harmonics, per-note aliasing
    # guard) equals a direct sample-by-sample phase accumulation of the same notes.
    from sklearn_music.datasets._render import _render_voice

    sr, n = 8000, 12000
    onsets = np.array([0, 3000, 7000, 11000])
    midi = np.array([60.0, 67.0, 100.0, 55.0])  # 2637 Hz: harmonics >= 2 would alias
    amp = np.array([1.0, 0.5, 0.8, 1.0])
    gate = np.array([2000.0, 4000.0, 4000.0, 4000.0])
    harmonics = np.array([1.0, 0.5, 0.25])
    attack, decay = 0.01, 0.5
    out = _render_voice(
        onsets,
        midi,
        amp,
        gate,
        n,
        sr,
        harmonics=harmonics,
        attack=attack,
        decay=decay,
        vibrato=vibrato,
    )

    seg = np.searchsorted(onsets, np.arange(n), side="right") - 1
    f0 = 440.0 * 2 ** ((midi[seg] - 69) / 12)
    t_mid = (np.arange(n) + 0.5) / sr  # midpoint rule over each sample's interval
    freq = f0 * (1 + vibrato / 12 * np.log(2) * np.sin(2 * np.pi * 5.5 * t_mid))
    cycles = np.concatenate([[0.0], np.cumsum(freq)[:-1]]) / sr  # phase at each sample
    wave = sum(
        a * (h * f0 < sr / 2) * np.sin(2 * np.pi * h * cycles)
        for h, a in enumerate(harmonics, start=1)
    )
    since = (np.arange(n) - onsets[seg]) / sr
    release = np.maximum(since - gate[seg] / sr, 0)
    env = amp[seg] * (1 - np.exp(-since / attack)) * np.exp(-since / decay - release / 0.03)
    np.testing.assert_allclose(out, env * wave, atol=1e-3)
    assert out.dtype == np.float32


def test_make_tracks_same_output_whatever_the_block_size(monkeypatch):
    from sklearn_music.datasets import _render

    whole = make_tracks(3, duration=0.5, random_state=0).data
    monkeypatch.setattr(_render, "_BLOCK", 1000)  # 8 blocks per clip, the last one short
    np.testing.assert_array_equal(make_tracks(3, duration=0.5, random_state=0).data, whole)


def _mfcc_stats(data, sr):
    """Mean and std of 20 MFCCs, and std of their deltas, per clip (librosa)."""
    import librosa

    feats = []
    for x in data:
        mfcc = librosa.feature.mfcc(y=x, sr=sr, n_mfcc=20)
        delta = librosa.feature.delta(mfcc)
        feats.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), delta.std(axis=1)]))
    return np.array(feats)


def _mfcc_baseline(random_state):
    """1-NN accuracies (genre, artist) on MFCC statistics, 5-fold stratified CV."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    b = make_tracks(random_state=random_state)  # the default settings the DESCR describes
    X = _mfcc_stats(b.data, b.sr)
    clf = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    genre_acc = cross_val_score(clf, X, b.genre, cv=cv).mean()
    artist_acc = cross_val_score(clf, X, b.artist, cv=cv).mean()
    return genre_acc, artist_acc, len(b.genre_names), len(b.artist_names)


@pytest.mark.slow  # synthesises 200 ten-second clips and their MFCCs: about 25 s
def test_make_tracks_mfcc_baseline_is_informative_but_not_perfect():
    genre_acc, artist_acc, n_genres, n_artists = _mfcc_baseline(0)
    assert 1.5 / n_genres < genre_acc < 0.97, genre_acc
    assert 1.5 / n_artists < artist_acc < genre_acc, (artist_acc, genre_acc)


# --------------------------------------------------------------------- load_audio_folder


def _write_wav(path, n=160, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(n, dtype=np.float32), sr)


@pytest.fixture
def collection(tmp_path):
    root = tmp_path / "music"
    _write_wav(root / "rock" / "b.wav")
    _write_wav(root / "rock" / "a.WAV")  # extension case is ignored
    _write_wav(root / "rock" / "live" / "c.flac")  # files in sub-folders count
    (root / "rock" / "notes.txt").write_text("not audio")
    _write_wav(root / "rock" / ".hidden.wav")  # hidden: ignored
    _write_wav(root / "jazz" / "z.ogg")
    _write_wav(root / ".cache" / "x.wav")  # hidden folder: not a label
    _write_wav(root / "top.wav")  # files directly in root: not labelled, ignored
    (root / "empty").mkdir()
    (root / "empty" / "readme.md").write_text("nothing")
    return root


def test_load_audio_folder_labels_and_order(collection):
    with pytest.warns(UserWarning, match=r"without audio files.*\['empty'\]"):
        b = load_audio_folder(collection)
    assert b.target_names == ["jazz", "rock"]
    rel = [os.path.relpath(f, collection) for f in b.filenames]
    assert rel == ["jazz/z.ogg", "rock/a.WAV", "rock/b.wav", "rock/live/c.flac"]
    np.testing.assert_array_equal(b.target, [0, 1, 1, 1])
    assert b.target.dtype.kind == "i"
    assert all(os.path.isfile(f) for f in b.filenames)
    # str and PathLike give the same
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        b2 = load_audio_folder(str(collection))
    np.testing.assert_array_equal(b.filenames, b2.filenames)


def test_load_audio_folder_unlabeled(collection):
    b = load_audio_folder(collection, labeled=False)
    rel = [os.path.relpath(f, collection) for f in b.filenames]
    assert rel == ["jazz/z.ogg", "rock/a.WAV", "rock/b.wav", "rock/live/c.flac", "top.wav"]
    assert b.target is None and b.target_names is None


def test_load_audio_folder_extensions(collection):
    b = load_audio_folder(collection, extensions=("OGG", ".flac"), labeled=False)
    rel = [os.path.relpath(f, collection) for f in b.filenames]
    assert rel == ["jazz/z.ogg", "rock/live/c.flac"]
    b = load_audio_folder(collection, extensions=".txt", labeled=False)
    assert [os.path.basename(f) for f in b.filenames] == ["notes.txt"]


def test_load_audio_folder_follows_symlinks(tmp_path):
    store = tmp_path / "store"
    _write_wav(store / "song.ogg")
    _write_wav(store / "album" / "t1.ogg")
    root = tmp_path / "links"
    (root / "pop").mkdir(parents=True)
    (root / "pop" / "song.ogg").symlink_to(store / "song.ogg")
    (root / "pop" / "broken.ogg").symlink_to(store / "missing.ogg")  # broken: ignored
    (root / "folk").symlink_to(store / "album", target_is_directory=True)
    (root / "pop" / "loop").symlink_to(root / "pop", target_is_directory=True)  # a cycle
    b = load_audio_folder(root)
    assert b.target_names == ["folk", "pop"]
    rel = [os.path.relpath(f, root) for f in b.filenames]
    assert rel == ["folk/t1.ogg", "pop/song.ogg"]


def test_load_audio_folder_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope.*does not exist"):
        load_audio_folder(missing)
    a_file = tmp_path / "file.wav"
    _write_wav(a_file)
    with pytest.raises(NotADirectoryError, match="file.wav.*is not a folder"):
        load_audio_folder(a_file)
    empty = tmp_path / "empty"
    (empty / "label").mkdir(parents=True)
    (empty / "label" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"No audio file in the label folders of .*empty"):
        load_audio_folder(empty)
    with pytest.raises(ValueError, match=r"No audio file in .*empty.* or below"):
        load_audio_folder(empty, labeled=False)
    flat = tmp_path / "flat"
    _write_wav(flat / "x.wav")
    with pytest.raises(ValueError, match="labeled=False"):
        load_audio_folder(flat)
    with pytest.raises(ValueError, match="extensions is empty"):
        load_audio_folder(flat, extensions=())
    with pytest.raises(ValueError, match="non-empty strings"):
        load_audio_folder(flat, extensions=("",))
    with pytest.raises(InvalidParameterError):
        load_audio_folder(3)


# --------------------------------------------------------------------------- fetch_gtzan

GENRES = {"blues": 2, "classical": 1, "rock": 3}


def _wav_bytes(value):
    buf = io.BytesIO()
    sf.write(buf, np.full(80, value, dtype=np.float32), 8000, format="WAV")
    return buf.getvalue()


def _make_archive(path, members=None):
    """Write a .tar.gz and return its sha256.

    By default a tiny GTZAN-like archive: genres/<genre>/<genre>.0000k.wav plus a
    non-audio genres/input.mf, as in the real one. ``members`` is a list of
    ``(name, bytes)`` pairs or ``(ignored, TarInfo)`` for special members.
    """
    if members is None:
        members = [
            (f"genres/{genre}/{genre}.{k:05d}.wav", _wav_bytes(0.1 * (k + 1)))
            for genre, n in GENRES.items()
            for k in range(n)
        ]
        members.append(("genres/input.mf", b"not audio\n"))
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members:
            if isinstance(payload, tarfile.TarInfo):
                tar.addfile(payload)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/srv; yields (base_url, stop)."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = type("Handler", (_QuietHandler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            thread.join()
            stopped.append(True)

    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield root, base, handler.requests, stop
    stop()


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).rglob("*")) if Path(folder).exists() else []


def test_fetch_gtzan_downloads_verifies_and_caches(tmp_path, server):
    root, base, requests, stop = server
    sha = _make_archive(root / "genres.tar.gz")
    home = tmp_path / "home"
    b = fetch_gtzan(data_home=home, url=f"{base}/genres.tar.gz", checksum=sha)
    assert requests == ["/genres.tar.gz"]
    assert b.target_names == sorted(GENRES)
    np.testing.assert_array_equal(np.bincount(b.target), [GENRES[g] for g in sorted(GENRES)])
    assert [os.path.basename(f) for f in b.filenames] == [
        "blues.00000.wav",
        "blues.00001.wav",
        "classical.00000.wav",
        "rock.00000.wav",
        "rock.00001.wav",
        "rock.00002.wav",
    ]
    for f in b.filenames:
        assert Path(f).is_relative_to(home / "gtzan")
        x, sr = sf.read(f)
        assert sr == 8000 and x.shape == (80,)
    assert "GTZAN" in b.DESCR
    # the archive is deleted once unpacked; no temporary file is left
    gtzan = home / "gtzan"
    assert sorted(p.name for p in gtzan.iterdir()) == ["unpacked"]
    assert not [n for n in _leftovers(gtzan) if n.startswith(".") or n.endswith(".part")]

    # Second call: from the cache, with the server gone.
    stop()
    again = fetch_gtzan(data_home=home, url=f"{base}/genres.tar.gz", checksum=sha)
    np.testing.assert_array_equal(again.filenames, b.filenames)
    np.testing.assert_array_equal(again.target, b.target)
    cached = fetch_gtzan(data_home=home, download_if_missing=False)
    np.testing.assert_array_equal(cached.filenames, b.filenames)
    assert requests == ["/genres.tar.gz"]


def test_fetch_gtzan_md5_and_subset_and_return_X_y(tmp_path, server):
    root, base, _, _ = server
    _make_archive(root / "genres.tar.gz")
    md5 = hashlib.md5((root / "genres.tar.gz").read_bytes()).hexdigest()
    home = tmp_path / "home"
    X, y = fetch_gtzan(
        data_home=home,
        url=f"{base}/genres.tar.gz",
        checksum=("md5", md5),
        subset=["rock", "blues"],
        return_X_y=True,
    )
    assert [os.path.basename(f) for f in X] == [
        "blues.00000.wav",
        "blues.00001.wav",
        "rock.00000.wav",
        "rock.00001.wav",
        "rock.00002.wav",
    ]
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1])
    b = fetch_gtzan(data_home=home, subset="classical", download_if_missing=False)
    assert b.target_names == ["classical"]
    np.testing.assert_array_equal(b.target, [0])
    with pytest.raises(ValueError, match=r"unknown genre\(s\) \['polka'\]"):
        fetch_gtzan(data_home=home, subset=["rock", "polka"], download_if_missing=False)


def test_fetch_gtzan_checksum_mismatch_leaves_nothing(tmp_path, server):
    root, base, _, _ = server
    _make_archive(root / "genres.tar.gz")
    home = tmp_path / "home"
    with pytest.raises(OSError, match="checksum .* expected 0000"):
        fetch_gtzan(data_home=home, url=f"{base}/genres.tar.gz", checksum="0" * 64)
    assert _leftovers(home / "gtzan") == []
    # and nothing is cached: the next offline call still fails
    with pytest.raises(OSError, match="not in the cache"):
        fetch_gtzan(data_home=home, download_if_missing=False)


def test_fetch_gtzan_http_error_leaves_nothing(tmp_path, server):
    _, base, _, _ = server
    home = tmp_path / "home"
    with pytest.raises(OSError, match="404"):
        fetch_gtzan(data_home=home, url=f"{base}/missing.tar.gz", checksum=None)
    assert _leftovers(home / "gtzan") == []


def test_fetch_gtzan_missing_without_download(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(OSError, match="not in the cache .*download_if_missing is False"):
        fetch_gtzan(data_home=home, download_if_missing=False)
    assert _leftovers(home / "gtzan") == []


@pytest.mark.parametrize(
    "member",
    [
        ("../evil.wav", b"x"),
        ("/tmp/evil-absolute.wav", b"x"),
        ("genres/rock/../../../evil.wav", b"x"),
    ],
)
def test_fetch_gtzan_rejects_path_traversal(tmp_path, server, member):
    root, base, _, _ = server
    sha = _make_archive(root / "genres.tar.gz", members=[("genres/rock/a.wav", b"RIFF"), member])
    home = tmp_path / "home"
    with pytest.raises(OSError, match="points outside the extraction folder"):
        fetch_gtzan(data_home=home, url=f"{base}/genres.tar.gz", checksum=sha)
    assert _leftovers(home / "gtzan") == []
    assert not (home / "evil.wav").exists() and not (tmp_path / "evil.wav").exists()


def test_fetch_gtzan_rejects_links(tmp_path, server):
    root, base, _, _ = server
    link = tarfile.TarInfo("genres/rock/passwd.wav")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    sha = _make_archive(
        root / "genres.tar.gz", members=[("genres/rock/a.wav", b"RIFF"), ("", link)]
    )
    home = tmp_path / "home"
    with pytest.raises(OSError, match="is a link or a special file"):
        fetch_gtzan(data_home=home, url=f"{base}/genres.tar.gz", checksum=sha)
    assert _leftovers(home / "gtzan") == []


class _LyingHandler(http.server.BaseHTTPRequestHandler):
    """Announces the whole archive, sends its first half, then closes the connection."""

    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def lying_server(tmp_path):
    """127.0.0.1 server whose every answer is cut to half its Content-Length."""
    sha = _make_archive(tmp_path / "full.tar.gz")
    handler = type("Handler", (_LyingHandler,), {"body": (tmp_path / "full.tar.gz").read_bytes()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/genres.tar.gz", sha
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("checksum", [None, "sha"])
def test_fetch_gtzan_short_body_with_lying_content_length(tmp_path, lying_server, checksum):
    url, sha = lying_server
    home = tmp_path / "home"
    with pytest.raises(OSError) as info:
        fetch_gtzan(data_home=home, url=url, checksum=sha if checksum else None)
    message = str(info.value)
    assert url in message
    assert "stopped after" in message and "bytes the server announced" in message
    assert _leftovers(home / "gtzan") == []


def _truncated_archive(root):
    _make_archive(root / "full.tar.gz")
    data = (root / "full.tar.gz").read_bytes()
    (root / "genres.tar.gz").write_bytes(data[: len(data) // 2])


def _html_page(root):
    (root / "genres.tar.gz").write_bytes(
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>...</body></html>\n"
    )


def _not_a_tar(root):
    (root / "genres.tar.gz").write_bytes(bytes(range(256)) * 40)


def _gzip_of_text(root):
    import gzip

    (root / "genres.tar.gz").write_bytes(gzip.compress(b"plain text, not a tar" * 100))


@pytest.mark.parametrize(
    "make, cause",
    [
        (_truncated_archive, "truncated or not a tar archive"),
        (_html_page, "HTML or XML page"),
        (_not_a_tar, "truncated or not a tar archive"),
        (_gzip_of_text, "truncated or not a tar archive"),
    ],
    ids=["truncated", "html", "random-bytes", "gzip-of-text"],
)
def test_fetch_gtzan_unreadable_archive_names_file_url_and_cause(tmp_path, server, make, cause):
    root, base, _, _ = server
    make(root)
    home = tmp_path / "home"
    url = f"{base}/genres.tar.gz"
    with pytest.raises(OSError) as info:
        fetch_gtzan(data_home=home, url=url, checksum=None)  # served whole: no short read
    message = str(info.value)
    assert cause in message and url in message and "genres.tar.gz" in message
    assert "file://" in message  # what to do
    assert _leftovers(home / "gtzan") == []


def test_fetch_gtzan_unreachable_host_names_host_cache_and_mirror(tmp_path):
    import socket

    with socket.socket() as sock:  # a port on 127.0.0.1 where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = tmp_path / "home"
    url = f"http://127.0.0.1:{port}/genres.tar.gz"
    with pytest.raises(OSError) as info:
        fetch_gtzan(data_home=home, url=url, checksum=None, timeout=5)
    message = str(info.value)
    assert f"Could not download {url} from '127.0.0.1'" in message
    assert "refused" in message.lower()
    assert str(home / "gtzan") in message and "file:///path/to/genres.tar.gz" in message
    assert "mirror" in message
    assert _leftovers(home / "gtzan") == []


def test_fetch_gtzan_missing_local_copy(tmp_path):
    home = tmp_path / "home"
    url = (tmp_path / "nowhere" / "genres.tar.gz").as_uri()
    with pytest.raises(OSError, match="Could not download .*nowhere"):
        fetch_gtzan(data_home=home, url=url, checksum=None)
    assert _leftovers(home / "gtzan") == []


def test_fetch_gtzan_bad_checksum_spec(tmp_path):
    with pytest.raises(ValueError, match="algorithm 'crc' is not supported"):
        fetch_gtzan(data_home=tmp_path, url="http://127.0.0.1:9/x", checksum=("crc", "0"))
    with pytest.raises(ValueError, match="pair"):
        fetch_gtzan(data_home=tmp_path, url="http://127.0.0.1:9/x", checksum=("md5",))


def test_get_and_clear_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKLEARN_MUSIC_DATA", str(tmp_path / "from_env"))
    home = get_data_home()
    assert home == str(tmp_path / "from_env") and os.path.isdir(home)
    explicit = get_data_home(tmp_path / "explicit")
    assert explicit == str(tmp_path / "explicit") and os.path.isdir(explicit)
    monkeypatch.delenv("SKLEARN_MUSIC_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert get_data_home() == str(tmp_path / "user" / "sklearn_music_data")
    (Path(explicit) / "gtzan").mkdir()
    clear_data_home(explicit)
    assert not os.path.exists(explicit)


def test_import_touches_no_network():
    # In a fresh interpreter whose sockets refuse to open, importing works.
    code = (
        "import socket\n"
        "def forbidden(*a, **k):\n"
        "    raise AssertionError('network access at import time')\n"
        "socket.socket.connect = forbidden\n"
        "socket.create_connection = forbidden\n"
        "socket.getaddrinfo = forbidden\n"
        "import sklearn_music.datasets\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    # The calibration numbers stated in make_tracks' DESCR.
    scores = np.array([_mfcc_baseline(seed)[:2] for seed in range(5)])
    for name, col in zip(("genre", "artist"), scores.T):
        print(f"{name} accuracy: mean {col.mean():.3f}, range {col.min():.3f} to {col.max():.3f}")


def test_make_tracks_lyrics_leave_the_rest_unchanged():
    plain = make_tracks(16, duration=0.25, sr=8000, random_state=3)
    side = make_tracks(16, duration=0.25, sr=8000, random_state=3, lyrics=True)
    for key in ("data", "genre", "artist", "tempo"):
        np.testing.assert_array_equal(side[key], plain[key])
    assert "lyrics" not in plain and "year" not in plain
    again = make_tracks(16, duration=0.25, sr=8000, random_state=3, lyrics=True)
    assert list(again.lyrics) == list(side.lyrics)
    np.testing.assert_array_equal(again.year, side.year)


def test_make_tracks_lyrics_depend_on_genre_and_artist():
    from sklearn_music._side import tokenize

    b = make_tracks(240, duration=0.05, sr=8000, random_state=0, lyrics=True)
    instrumental = np.array([lyric is None for lyric in b.lyrics])
    assert 0.1 < instrumental.mean() < 0.3
    words = [set(tokenize(lyric)) for lyric in b.lyrics]
    # words shared by two tracks: far more often by two tracks of one artist
    same, other = [], []
    for i in range(len(words)):
        for j in range(i + 1, len(words)):
            if instrumental[i] or instrumental[j]:
                continue
            overlap = len(words[i] & words[j]) / len(words[i] | words[j])
            (same if b.artist[i] == b.artist[j] else other).append(overlap)
    assert np.mean(same) > 2 * np.mean(other)
    # release years cluster by artist
    spread = np.mean([b.year[b.artist == a].std() for a in b.artist_names])
    assert spread < 0.5 * b.year.std()
