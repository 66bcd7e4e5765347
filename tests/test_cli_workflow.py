"""The practitioner's command line (issue 14): audio queries, held-out scores, formats,
export, --aggregate, progress, and the paper cuts; ids that try to forge output (issue 10).
"""

import csv
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from sklearn_music.cli import main
from sklearn_music.store import SimilarityStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SR = 8000
TINY = ["--epochs", "1", "--embedding-dim", "8", "--patch-frames", "16", "--sr", str(SR)]
HOSTILE = [
    "a\nb.wav",
    "0.9999\tfake.wav",
    "q\"u,o'te.wav",
    "back\\slash.wav",
    "é ü.wav",
    "x\x1b[2J",
]


def _write_tracks(root, n, *, seed=0):
    from sklearn_music.datasets import make_tracks

    tracks = make_tracks(n, n_genres=2, duration=1.0, sr=SR, random_state=seed)
    for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
        (root / genre).mkdir(parents=True, exist_ok=True)
        sf.write(root / genre / f"{i}.wav", x, SR)
    return root


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    return _write_tracks(tmp_path_factory.mktemp("music"), 8)


@pytest.fixture(scope="module")
def model(music, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.skops"
    assert main(["fit", str(music), "--model", str(path), "--no-eval", *TINY]) == 0
    return path


@pytest.fixture(scope="module")
def store(music, model, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "tracks.db"
    assert main(["index", str(music), "--model", str(model), "--store", str(path), "-k", "3"]) == 0
    return path


@pytest.fixture
def hostile_store(tmp_path, rng):
    path = tmp_path / "hostile.db"
    ids = HOSTILE + [f"plain{i}.wav" for i in range(4)]
    SimilarityStore.build(path, rng.normal(size=(len(ids), 5)), ids, n_neighbors=4)
    return path, ids


def _run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def _embed(model, path):
    from sklearn_music.persistence import load_model

    return load_model(model)[:-1].transform([str(path)])[0]


# --------------------------------------------------------------------------- #
# 1. audio files as queries
# --------------------------------------------------------------------------- #
def test_similar_audio_file(store, model, music, tmp_path, capsys):
    from sklearn_music import query_audio

    # a new file (not in the store): embedded and compared with every stored vector
    from sklearn_music.datasets import make_tracks

    new = tmp_path / "new song.wav"
    sf.write(new, make_tracks(1, duration=1.0, sr=SR, random_state=7).data[0], SR)
    argv = ["similar", str(new), "--store", str(store), "--model", str(model), "-k", "5"]
    status, out, err = _run([*argv, "--format", "json"], capsys)
    assert status == 0, err
    got = json.loads(out)
    assert got["query"] == str(new)
    with SimilarityStore(store) as s:
        ids, X = s.to_arrays()
    q = _embed(model, new)
    ref = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    order = np.argsort(-ref)[:5]
    assert [r["track"] for r in got["results"]] == ids[order].tolist()
    np.testing.assert_allclose([r["score"] for r in got["results"]], ref[order], atol=1e-5)
    assert [r["rank"] for r in got["results"]] == [1, 2, 3, 4, 5]
    # the Python helper gives the same
    py = query_audio(new, model=model, store=store, k=5)
    assert [t for t, _ in py] == ids[order].tolist()


def test_similar_audio_file_of_a_stored_track(store, model, music, capsys):
    """The file of a stored track is that track: left out, as a stored id is."""
    path = sorted(music.rglob("*.wav"))[0]
    track = path.relative_to(music).as_posix()
    status, out, err = _run(
        ["similar", str(path), "--store", str(store), "--model", str(model), "-k", "4"], capsys
    )
    assert status == 0, err
    listed = [line.split("\t")[1] for line in out.splitlines()]
    assert len(listed) == 4 and track not in listed
    with SimilarityStore(store) as s:
        exact = s.similar_to_vector(s.vector(track), k=5)
    assert listed == [t for t, _ in exact if t != track]


def test_query_resolution(store, model, music, monkeypatch, capsys):
    # a stored id that is also a file in the current folder: the stored id wins
    monkeypatch.chdir(music)
    track = sorted(p.relative_to(music).as_posix() for p in music.rglob("*.wav"))[0]
    assert os.path.isfile(track)
    status, out, _ = _run(["similar", track, "--store", str(store), "-k", "2"], capsys)
    with SimilarityStore(store) as s:
        assert [line.split("\t")[1] for line in out.splitlines()] == [
            t for t, _ in s.similar(track, k=2)
        ]
    # a file without --model: says what to pass
    path = str(music / track)
    status, _, err = _run(["similar", path, "--store", str(store)], capsys)
    assert status == 1 and "pass --model MODEL" in err
    # neither an id nor a file
    status, _, err = _run(["recommend", "nope.wav", "--store", str(store)], capsys)
    assert status == 1 and "not a track id" in err and "nor an audio file" in err


def test_recommend_with_audio_files(store, model, music, capsys):
    files = sorted(music.rglob("*.wav"))
    history_id = files[0].relative_to(music).as_posix()
    argv = ["recommend", history_id, str(files[-1]), "--store", str(store), "--model", str(model)]
    status, out, err = _run([*argv, "-k", "3", "--format", "json"], capsys)
    assert status == 0, err
    got = json.loads(out)
    assert got["history"] == [history_id, str(files[-1])]
    listed = [r["track"] for r in got["results"]]
    own = files[-1].relative_to(music).as_posix()
    assert len(listed) == 3 and history_id not in listed and own not in listed
    # reference: the mean of the two unit vectors, every stored track scored
    with SimilarityStore(store) as s:
        ids, X = s.to_arrays()
        h = np.vstack([s.vector(history_id), _embed(model, files[-1])]).astype(np.float64)
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    q = h.mean(axis=0)
    ref = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    ranked = [t for t in ids[np.argsort(-ref)].tolist() if t not in (history_id, own)]
    assert listed == ranked[:3]


# --------------------------------------------------------------------------- #
# 3. formats: ids escaped in text, JSON and CSV parsed back
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("query", HOSTILE)
def test_formats_with_hostile_ids(hostile_store, query, capsys):
    path, ids = hostile_store
    with SimilarityStore(path) as s:
        expected = s.similar(query, k=4)
    argv = ["similar", query, "--store", str(path), "-k", "4"]
    # text: one line per result, whatever the ids hold; the escapes read back
    status, out, err = _run(argv, capsys)
    assert status == 0, err
    lines = out.split("\n")[:-1]
    assert len(lines) == 4 and all(line.count("\t") == 1 for line in lines)
    assert "\x1b" not in out and "\r" not in out
    for line, (track, score) in zip(lines, expected):
        text_score, text_id = line.split("\t")
        assert float(text_score) == pytest.approx(score, abs=1e-4)
        assert _unescape(text_id) == track
    # json
    status, out, _ = _run([*argv, "--format", "json"], capsys)
    doc = json.loads(out)
    assert doc["query"] == query and len(out.splitlines()) == 1
    assert [(r["track"], r["score"]) for r in doc["results"]] == [
        (t, pytest.approx(sc)) for t, sc in expected
    ]
    # csv
    status, out, _ = _run([*argv, "--format", "csv"], capsys)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["rank", "track", "score"]
    assert [(int(r[0]), r[1], float(r[2])) for r in rows[1:]] == [
        (i, t, pytest.approx(sc)) for i, (t, sc) in enumerate(expected, 1)
    ]


def _unescape(text):
    """Inverse of the text format's escaping (a Python string literal's body)."""
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


def test_escape_id():
    from sklearn_music._cli_output import escape_id

    assert escape_id("rock/a b é.wav") == "rock/a b é.wav"
    assert escape_id("a\nb\tc\rd\\e") == "a\\nb\\tc\\rd\\\\e"
    assert escape_id("x\x1b[2J\x7f") == "x\\x1b[2J\\x7f"
    assert escape_id("bad\udcff") == "bad\\udcff"
    assert escape_id("\u2028") == "\\u2028" and escape_id(7) == "7"


# --------------------------------------------------------------------------- #
# 3. export
# --------------------------------------------------------------------------- #
def _read_export(out):
    if out.suffix == ".npy":
        sidecar = out.with_name(out.stem + ".ids.jsonl")
        with open(sidecar, encoding="ascii") as f:
            ids = [json.loads(line) for line in f]
        return ids, np.load(out)
    if out.suffix == ".csv":
        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert rows[0][0] == "track" and rows[0][1] == "v0"
        return [r[0] for r in rows[1:]], np.array([r[1:] for r in rows[1:]], dtype=np.float32)
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    return table.column("track").to_pylist(), np.array(table.column("vector").to_pylist())


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
@pytest.mark.parametrize("which", ["audio", "hostile"])
def test_export_round_trip(suffix, which, store, hostile_store, tmp_path, capsys):
    path = store if which == "audio" else hostile_store[0]
    out = tmp_path / f"vectors{suffix}"
    argv = ["export", "--store", str(path), "--out", str(out), "--batch-size", "3"]
    status, stdout, err = _run(argv, capsys)
    assert status == 0, err
    ids, vectors = _read_export(out)
    with SimilarityStore(path) as s:
        assert ids == list(s) and f"exported {len(s)} tracks" in stdout
        assert vectors.shape == (len(s), s.dim)
        for tid, v in zip(ids, vectors):
            np.testing.assert_array_equal(v.astype(np.float32), s.vector(tid))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_errors(store, tmp_path, monkeypatch, capsys):
    status, _, err = _run(
        ["export", "--store", str(store), "--out", str(tmp_path / "v.txt")], capsys
    )
    assert status == 1 and ".npy, .parquet, .csv" in err
    missing = tmp_path / "no" / "v.npy"
    status, _, err = _run(["export", "--store", str(store), "--out", str(missing)], capsys)
    assert status == 1 and "is missing" in err
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    out = tmp_path / "v.parquet"
    status, _, err = _run(["export", "--store", str(store), "--out", str(out)], capsys)
    assert status == 1 and "needs pyarrow" in err and not out.exists()


# --------------------------------------------------------------------------- #
# 4. --aggregate, and 5. -k above the stored lists
# --------------------------------------------------------------------------- #
def test_recommend_aggregate(tmp_path, capsys):
    from sklearn_music import ImplicitFactors
    from sklearn_music.datasets import make_listening

    albums = np.repeat([f"album{i}" for i in range(6)], 8)
    plays = make_listening(albums, n_users=1000, n_plays=80, popularity_skew=0.0, random_state=0)
    X = ImplicitFactors(n_factors=16, random_state=0).fit(plays.plays).item_factors_
    path = tmp_path / "albums.db"
    ids = [f"{a}/{i}" for i, a in enumerate(albums)]
    SimilarityStore.build(path, X, ids, n_neighbors=10, algorithm="brute")
    history = [f"album{a}/{a * 8 + j}" for a in (0, 1, 3) for j in range(3)]
    argv = ["recommend", *history, "--store", str(path), "-k", "6", "--format", "json"]
    status, out, err = _run([*argv, "--aggregate", "clusters"], capsys)
    assert status == 0, err
    got = [r["track"] for r in json.loads(out)["results"]]
    with SimilarityStore(path) as s:
        assert got == [t for t, _ in s.recommend(history, k=6, aggregate="clusters")]
    assert {t.split("/")[0] for t in got} == {"album0", "album1", "album3"}
    status, out, _ = _run([*argv, "--aggregate", "mean"], capsys)
    with SimilarityStore(path) as s:
        assert [r["track"] for r in json.loads(out)["results"]] == [
            t for t, _ in s.recommend(history, k=6)
        ]


def test_k_above_stored_lists(store, capsys):
    with SimilarityStore(store) as s:
        track = next(iter(s))
        exact = s.similar_to_vector(s.vector(track), k=8)
        assert s.n_neighbors == 3
    status, out, err = _run(["similar", track, "--store", str(store), "-k", "5"], capsys)
    assert status == 0 and err == ""
    listed = [line.split("\t")[1] for line in out.splitlines()]
    assert listed == [t for t, _ in exact if t != track][:5]  # exact scan, not 3
    status, out, err = _run(["similar", track, "--store", str(store), "-k", "50"], capsys)
    assert len(out.splitlines()) == 7 and "holds 7 other tracks; printing 7" in err


def test_recommend_says_when_short(tmp_path, monkeypatch, capsys):
    """Two groups of 4 tracks, 3 neighbours stored: the default search stays in one."""
    from sklearn_music.store import _queries

    monkeypatch.setattr(_queries, "SCAN_BELOW", 0)  # the graph search, not a small-store scan
    store = tmp_path / "tracks.db"
    X = np.array([[1, 0.1 * i] for i in range(4)] + [[-1, 0.1 * i] for i in range(4)])
    SimilarityStore.build(store, X, [f"t{i}" for i in range(8)], n_neighbors=3)
    status, out, err = _run(["recommend", "t0", "--store", str(store), "-k", "7"], capsys)
    assert status == 0 and len(out.splitlines()) == 3
    assert "3 of the 7 asked" in err and "--exhaustive" in err
    status, out, err = _run(
        ["recommend", "t0", "--store", str(store), "-k", "7", "--exhaustive"], capsys
    )
    assert len(out.splitlines()) == 7 and err == ""
    monkeypatch.undo()  # a store this small is scanned: every track comes back
    status, out, err = _run(["recommend", "t0", "--store", str(store), "-k", "7"], capsys)
    assert len(out.splitlines()) == 7 and err == ""


# --------------------------------------------------------------------------- #
# 2. held-out scores; 5. paper cuts of fit
# --------------------------------------------------------------------------- #
def test_held_out_scores_reference(rng):
    """fit's P@k / mAP@k of test tracks against training tracks, by hand with sklearn."""
    from sklearn.neighbors import NearestNeighbors

    from sklearn_music._cli_fit import _scores

    train_X, test_X = rng.normal(size=(20, 4)), rng.normal(size=(6, 4))
    train_y, test_y = rng.choice(["a", "b", "c"], 20), rng.choice(["a", "b", "c"], 6)
    p, ap = _scores(train_X, train_y, test_X, test_y, 5)
    ind = NearestNeighbors(n_neighbors=5, metric="cosine").fit(train_X).kneighbors(test_X)[1]
    rel = train_y[ind] == test_y[:, None]
    assert p == pytest.approx(rel.mean())
    n_rel = np.array([min(5, (train_y == t).sum()) for t in test_y])
    prec = np.cumsum(rel, axis=1) / np.arange(1, 6)
    assert ap == pytest.approx(np.mean((prec * rel).sum(1) / n_rel))


@pytest.mark.slow
def test_fit_reports_held_out_score(music, tmp_path, capsys):
    path = tmp_path / "m.skops"
    status, out, err = _run(["fit", str(music), "--model", str(path), "-v", *TINY], capsys)
    assert status == 0, err
    assert out.index("held-out retrieval") < out.index("trained on 8 tracks")
    assert "3-fold cross-validation over tracks" in out
    number = r"(\d\.\d{3}) ± (\d\.\d\d)"
    rows = {
        name.strip(): [float(v) for v in vals]
        for name, *vals in re.findall(rf"^  (.+?)\s+{number}\s+{number}$", out, re.M)
    }
    assert set(rows) == {"ConvEmbedder", "MFCC statistics (reference)"}
    assert all(0 <= v <= 1 for vals in rows.values() for v in vals)
    assert re.search(r"P@(\d+)\s+mAP@\1", out)
    # the saved model is quiet (fit -v) and on the CPU
    from sklearn_music.persistence import load_model

    model = load_model(path)
    for _, step in model.steps:
        assert step.get_params().get("verbose", 0) in (0, False)
    assert model.named_steps["embed"].device == "cpu"
    assert model.named_steps["embed"].callbacks is None


def test_fit_paper_cuts(tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    sf.write(flat / "a.wav", np.zeros(SR, dtype=np.float32), SR)
    status, _, err = _run(["fit", str(flat), "--model", str(tmp_path / "m.skops")], capsys)
    assert status == 1 and "pass --unlabeled" in err and "labeled=False" not in err
    status, _, err = _run(
        ["fit", str(flat), "--unlabeled", "--model", str(tmp_path / "m.skops"), "--device", "cuda"],
        capsys,
    )
    import torch

    if not torch.cuda.is_available():
        assert status == 1 and "no CUDA device" in err
    assert not (tmp_path / "m.skops").exists() or torch.cuda.is_available()


# --------------------------------------------------------------------------- #
# 5. progress: on a terminal, one named bar per stage; nothing in a file
# --------------------------------------------------------------------------- #
def _index_argv(music, model, db):
    return [sys.executable, "-m", "sklearn_music", "index", str(music), "--model", str(model)] + [
        "--store",
        str(db),
        "--batch-size",
        "3",
    ]


def test_no_progress_when_not_a_tty(music, model, tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.run(
            _index_argv(music, model, tmp_path / "t.db"),
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            timeout=300,
        )
    assert proc.returncode == 0
    assert (tmp_path / "log.txt").read_text() == ""  # no bar, no escape code
    assert proc.stdout.decode().startswith("indexed 8 tracks")


def test_progress_on_a_tty(music, model, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        _index_argv(music, model, tmp_path / "t.db"),
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=300) == 0
    err = b"".join(chunks).decode()
    assert re.search(r"embedding: 100%.*8/8", err)
    assert "sklearn-music: finding the 10 most similar tracks of each track, writing" in err
    assert "\x1b[A" not in err  # tqdm moves the cursor up only for nested bars
    assert "mel" not in err.lower()  # the estimators' own bars stay off


def test_index_with_a_model_without_index(music, model, store, tmp_path, capsys):
    """A saved mel -> embedder Pipeline (as pretrained.load gives) indexes the same vectors."""
    from sklearn_music.persistence import load_model, save_model

    embedder = tmp_path / "embedder.skops"
    save_model(load_model(model)[:-1], embedder)
    path = tmp_path / "tracks.db"
    argv = ["index", str(music), "--model", str(embedder), "--store", str(path), "-k", "3"]
    assert _run(argv, capsys)[0] == 0
    with SimilarityStore(path) as got, SimilarityStore(store) as ref:
        assert list(got) == list(ref)
        for tid in ref:
            np.testing.assert_allclose(got.vector(tid), ref.vector(tid), rtol=1e-6)
