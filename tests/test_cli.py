"""The sklearn-music command line, driven through main([...]) on a tiny folder."""

import os
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


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """MUSIC/<genre>/<n>.wav, 8 short synthetic tracks of 2 genres."""
    from sklearn_music.datasets import make_tracks

    root = tmp_path_factory.mktemp("music")
    tracks = make_tracks(8, n_genres=2, duration=1.0, sr=SR, random_state=0)
    for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
        (root / genre).mkdir(exist_ok=True)
        sf.write(root / genre / f"{i}.wav", x, SR)
    return root


@pytest.fixture(scope="module")
def model(music, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.skops"
    assert main(["fit", str(music), "--model", str(path), *TINY]) == 0
    return path


@pytest.fixture(scope="module")
def store(music, model, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "tracks.db"
    assert main(["index", str(music), "--model", str(model), "--store", str(path), "-k", "3"]) == 0
    return path


def test_fit(model, capsys):
    from sklearn.pipeline import Pipeline

    from sklearn_music.persistence import load_model

    fitted = load_model(model)
    assert isinstance(fitted, Pipeline)
    assert list(fitted.named_steps) == ["mel", "embed", "index"]
    assert fitted.named_steps["embed"].embedding_dim == 8


@pytest.mark.parametrize("task", ["track", "contrastive"])
def test_fit_unlabeled(music, tmp_path, capsys, task):
    from sklearn_music.persistence import load_model

    path = tmp_path / "u.skops"
    assert (
        main(["fit", str(music), "--unlabeled", "--task", task, "--model", str(path), *TINY]) == 0
    )
    out = capsys.readouterr().out
    assert f"8 tracks, unlabeled (task {task!r})" in out
    embedder = load_model(path).named_steps["embed"]
    # "contrastive" trains without targets, "track" with one class per track
    assert len(embedder.targets_) == (0 if task == "contrastive" else 1)


def test_fit_errors(tmp_path, capsys):
    (tmp_path / "only").mkdir()
    sf.write(tmp_path / "only" / "a.wav", np.zeros(SR, dtype=np.float32), SR)
    assert main(["fit", str(tmp_path), "--model", str(tmp_path / "m.skops")]) == 1
    err = capsys.readouterr().err
    assert "single label folder 'only'" in err and "Traceback" not in err
    assert main(["fit", str(tmp_path / "nope"), "--model", "m.skops"]) == 1
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "m.skops").exists()


def test_index(store, music, capsys):
    with SimilarityStore(store) as s:
        assert len(s) == 8
        assert sorted(s) == sorted(p.relative_to(music).as_posix() for p in music.rglob("*.wav"))
        assert s.n_neighbors == 3 and s.dim == 8


def test_index_corrupt_file(music, model, tmp_path, capsys):
    folder = tmp_path / "music"
    folder.mkdir()
    for p in music.rglob("*.wav"):
        (folder / p.parent.name).mkdir(exist_ok=True)
        (folder / p.parent.name / p.name).write_bytes(p.read_bytes())
    (folder / "rock" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    db = tmp_path / "tracks.db"
    # without --skip-errors: fails, names the file, writes nothing
    assert main(["index", str(folder), "--model", str(model), "--store", str(db)]) == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err and "--skip-errors" in captured.err
    assert "Traceback" not in captured.err and len(captured.err.splitlines()) == 1
    assert not db.exists()
    # with it: the file is reported by name, skipped and counted
    assert (
        main(
            [
                "index",
                str(folder),
                "--model",
                str(model),
                "--store",
                str(db),
                "--skip-errors",
                "--batch-size",
                "3",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "skipping rock/broken.wav" in captured.err
    assert "indexed 8 tracks" in captured.out and "skipped 1 unreadable" in captured.out
    with SimilarityStore(db) as s:
        assert len(s) == 8 and "rock/broken.wav" not in s


def test_similar(store, capsys):
    with SimilarityStore(store) as s:
        track = next(iter(s))
        expected = s.similar(track, k=2)
    assert main(["similar", track, "--store", str(store), "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in lines] == [t for t, _ in expected]
    np.testing.assert_allclose(
        [float(line.split("\t")[0]) for line in lines], [sc for _, sc in expected], atol=1e-4
    )

    assert main(["similar", "no/such.wav", "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sklearn-music: error: unknown track id 'no/such.wav'")
    assert len(err.splitlines()) == 1
    assert main(["similar", track, "--store", str(store) + ".missing"]) == 1
    assert "no store at" in capsys.readouterr().err


def test_recommend(store, capsys):
    with SimilarityStore(store) as s:
        history = list(s)[:2]
        expected = s.recommend(history, k=3)
    assert main(["recommend", *history, "--store", str(store), "-k", "3"]) == 0
    out = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    assert out == [t for t, _ in expected]
    assert not set(out) & set(history)
    assert main(["recommend", *history, "--store", str(store), "--exhaustive"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6  # every other track


def test_debug_shows_traceback(store):
    with pytest.raises(KeyError, match="nothing"):
        main(["similar", "nothing", "--store", str(store), "--debug"])


def test_demo(capsys):
    assert main(["demo", "--n-tracks", "24", "--duration", "3", "--epochs", "1"]) == 0
    assert "similar" in capsys.readouterr().out.lower()


@pytest.mark.parametrize("command", [[], ["fit"], ["index"], ["similar"], ["recommend"], ["demo"]])
def test_help(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "usage: sklearn-music" in capsys.readouterr().out


def test_usage_errors(capsys):
    assert main([]) == 2
    assert main(["similar", "x"]) == 2  # --store missing
    assert main(["similar", "x", "--store", "s.db", "-k", "0"]) == 2
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_m_help():
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "sklearn_music", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("fit", "index", "similar", "recommend", "demo"):
        assert command in proc.stdout
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sklearn_music",
            "similar",
            "x",
            "--store",
            "/nonexistent/tracks.db",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("sklearn-music: error: no store at")
