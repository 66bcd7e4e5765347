"""The sklearn-music command line, driven through main([...]) on a tiny folder."""

import ast
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
    assert main(["fit", str(music), "--model", str(path), "--no-eval", *TINY]) == 0
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


@pytest.mark.parametrize(
    "args, sr, init, init_",
    [
        ([], 16000, "auto", "soundtracks-v1"),  # the pretrained model's settings
        ([], SR, None, None),  # its 128 bands at another rate: random weights
        (["--init", "none"], 16000, None, None),
        (["--embedding-dim", "8"], 16000, "auto", None),  # not its architecture
    ],
)
def test_fit_starts_from_the_pretrained_model_by_default(tmp_path, music, args, sr, init, init_):
    from sklearn_music.persistence import load_model

    path = tmp_path / "m.skops"
    common = ["--epochs", "1", "--no-eval", "--sr", str(sr), "--patch-frames", "16"]
    assert main(["fit", str(music), "--model", str(path), *common, *args]) == 0
    embed = load_model(path).named_steps["embed"]
    assert (embed.init, embed.init_) == (init, init_)


def test_fit_init_with_a_model_name_checks_the_settings(tmp_path, music, capsys):
    path = tmp_path / "m.skops"
    args = ["--epochs", "1", "--no-eval", "--patch-frames", "16", "--embedding-dim", "8"]
    assert main(["fit", str(music), "--model", str(path), "--init", "soundtracks-v1", *args]) == 1
    assert "embedding_dim=128 (got 8)" in capsys.readouterr().err
    assert not path.exists()


@pytest.mark.parametrize("task", ["track", "contrastive"])
def test_fit_unlabeled(music, tmp_path, capsys, task):
    from sklearn_music.persistence import load_model

    path = tmp_path / "u.skops"
    assert (
        main(["fit", str(music), "--unlabeled", "--task", task, "--model", str(path), *TINY]) == 0
    )
    out = capsys.readouterr().out
    assert f"8 tracks, unlabeled (task {task!r})" in out
    assert "held-out score skipped" in out  # same-label neighbours need labels
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
    assert "np.str_" not in captured.err  # plain paths
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
    assert err.startswith("sklearn-music: error: unknown track 'no/such.wav'")
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
    from sklearn_music.cli import CommandError

    with pytest.raises(CommandError, match="nothing"):
        main(["similar", "nothing", "--store", str(store), "--debug"])


def _demo_sections(out):
    """The demo's output split at its "== N. title ===" headers: {N: text}."""
    parts = re.split(r"^== (\d+)\. .*$", out, flags=re.M)
    return {int(n): text for n, text in zip(parts[1::2], parts[2::2])}


@pytest.mark.slow
def test_demo(capsys):
    assert main(["demo", "--n-tracks", "24", "--duration", "3", "--epochs", "1"]) == 0
    sections = _demo_sections(capsys.readouterr().out)
    assert sorted(sections) == list(range(1, 10))
    number = r"(-?\d+\.\d+)"

    # 2: one spectrogram per clip (two clips a track)
    assert re.search(r"^\(48, 64, \d+\) float32", sections[2], flags=re.M)

    # 4: a cross-validated score per grid point, and the best of them is the one named
    grid = re.findall(
        rf"n_mels=(\d+)\s+embedding_dim=(\d+)\s+cross-validated precision@10 {number}",
        sections[4],
    )
    scores = {(int(m), int(d)): float(sc) for m, d, sc in grid}
    assert sorted(scores) == [(48, 16), (48, 32), (64, 16), (64, 32)]
    assert all(0 <= sc <= 1 for sc in scores.values())
    best = ast.literal_eval(re.search(r"^best (\{.*?\}) in ", sections[4], flags=re.M)[1])
    assert scores[best["mel__n_mels"], best["embed__embedding_dim"]] == max(scores.values())

    # 5 and 6: accuracy and retrieval metrics of both methods are proportions
    assert 0 <= float(re.search(rf"genre accuracy {number}", sections[5])[1]) <= 1
    for method in ("MFCC statistics", "ConvEmbedder"):
        row = re.search(rf"^{method}\s+{number}\s+{number}\s+{number}\s*$", sections[6], re.M)
        assert all(0 <= float(v) <= 1 for v in row.groups()), row

    # 7: five neighbours from other tracks; five recommendations outside the history
    query = re.search(r"clips like (track\d+[ab]) ", sections[7])[1]
    neighbours = dict(
        re.findall(rf"^  (track\d+[ab])\s.*cosine distance {number}$", sections[7], re.M)
    )
    assert len(neighbours) == 5 and not any(t[:-1] == query[:-1] for t in neighbours)
    history = ast.literal_eval(re.search(r"listener of (\[.*?\])", sections[7])[1])
    recommended = re.findall(rf"^  (track\d+[ab])\s.*score {number}$", sections[7], re.M)
    assert len(recommended) == 5 and not {t for t, _ in recommended} & set(history)

    # 8: four methods, mAP and AUC are proportions, the upper bound beats random
    cold = {
        name.strip(): (float(m), float(a))
        for name, m, a in re.findall(rf"^(.+?)\s+{number}\s+{number}\s*$", sections[8], re.M)
    }
    assert len(cold) == 4 and all(0 <= v <= 1 for pair in cold.values() for v in pair)
    assert cold["true factors (upper bound)"][1] > cold["random"][1]

    # 9: the store returns k=3 tracks for the same clip, agreeing with section 7
    lookup = re.search(r"store\.similar\('(track\d+[ab])', k=3\) -> (.*)$", sections[9], re.M)
    assert lookup[1] == query
    similar = re.findall(rf"(track\d+[ab]) \({number}\)", lookup[2])
    assert len(similar) == 3 and len({t for t, _ in similar}) == 3
    assert query not in dict(similar)
    sims = [float(sc) for _, sc in similar]
    assert sims == sorted(sims, reverse=True) and all(-1 <= sc <= 1 for sc in sims)
    for track, sim in similar:
        if track[:-1] != query[:-1]:  # the query's other clip is not in section 7's list
            assert float(sim) == pytest.approx(1 - float(neighbours[track]), abs=2e-3)


@pytest.mark.parametrize(
    "command", [[], ["fit"], ["index"], ["similar"], ["recommend"], ["export"], ["demo"]]
)
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
    for command in ("fit", "index", "similar", "recommend", "export", "demo"):
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
