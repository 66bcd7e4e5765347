"""The listening report (without a browser), "why similar", and the report command."""

import json

import numpy as np
import pytest
import soundfile as sf

from sklearn_music.cli import main
from sklearn_music.report import patch_embeddings, representative_offset, why_similar, write_report
from sklearn_music.store import SimilarityStore
from sklearn_music.utils._test_common import tiny_pipeline

SR = 8000


@pytest.fixture(scope="module")
def fitted():
    pipe, tracks = tiny_pipeline(8)
    pipe.fit(list(tracks.data), tracks.genre)
    return pipe, tracks


@pytest.fixture(scope="module")
def collection(tmp_path_factory, fitted):
    """A music folder (genre/track.wav), two stores of it and the model."""
    pipe, tracks = fitted
    root = tmp_path_factory.mktemp("listen")
    ids = []
    for i, (y, genre) in enumerate(zip(tracks.data, tracks.genre)):
        (root / "music" / genre).mkdir(parents=True, exist_ok=True)
        sf.write(root / "music" / genre / f"t{i}.wav", y, SR)
        ids.append(f"{genre}/t{i}.wav")
    vectors = pipe[:-1].transform(list(tracks.data))
    SimilarityStore.build(root / "a.db", vectors, ids, n_neighbors=4)
    rng = np.random.default_rng(0)
    SimilarityStore.build(root / "b.db", rng.normal(size=vectors.shape), ids, n_neighbors=4)
    return root, ids


def test_patch_embeddings_average_to_transform(fitted):
    pipe, tracks = fitted
    raw, offsets, seconds = patch_embeddings(pipe, list(tracks.data[:3]), normalize=False)
    expected = pipe[:-1].transform(list(tracks.data[:3]))
    np.testing.assert_allclose([e.mean(axis=0) for e in raw], expected, rtol=1e-4, atol=1e-5)
    embedder = pipe.named_steps["embed"]
    assert seconds == embedder.patch_frames * 128 / SR
    assert offsets[0][1] == embedder._hop() * 128 / SR
    unit, _, _ = patch_embeddings(pipe, list(tracks.data[:1]))
    np.testing.assert_allclose(np.linalg.norm(unit[0], axis=1), 1.0)


def test_why_similar_finds_the_shared_half(fitted):
    pipe, tracks = fitted
    half = 8192  # 64 frames of hop 128: the second half starts on the patch grid
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(half)).astype(np.float32)
    music = tracks.data[3][:half]
    why = why_similar(pipe, np.concatenate([noise, music]), music)
    n_a, n_b = why.similarity.shape
    assert (len(why.offsets_a), len(why.offsets_b)) == (n_a, n_b)
    assert why.best_offsets[0] >= half / SR - why.patch_seconds / 2  # in the second half
    i, j = why.best
    assert why.best_offsets == (why.offsets_a[i], why.offsets_b[j])
    assert why.similarity[i, j] == pytest.approx(why.similarity.max())
    assert why.similarity[i, j] > 0.99
    # the music half matches the music far better than the noise half does
    first = why.offsets_a < half / SR - why.patch_seconds
    assert why.similarity[first].max() < why.similarity[i, j] - 0.01


def test_representative_offset_and_model_errors(fitted):
    emb = np.eye(3)[[0, 0, 0, 1]]
    assert representative_offset(emb, np.array([0.0, 1.0, 2.0, 3.0])) == 0.0
    pipe, tracks = fitted
    with pytest.raises(ValueError, match="no ConvEmbedder step"):
        why_similar(pipe[:1], tracks.data[0], tracks.data[1])
    with pytest.raises(TypeError, match="must be a fitted Pipeline"):
        why_similar(object(), tracks.data[0], tracks.data[1])


def test_report_single_store(collection, tmp_path):
    root, ids = collection
    res = write_report(
        root / "a.db", music_dir=root / "music", out=tmp_path / "r", queries=3, k=3, random_state=0
    )
    assert (res.n_queries, res.n_items, res.key) == (3, 9, None)
    page = res.index.read_text()
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    assert data["mode"] == "single" and len(data["queries"]) == 3
    store = SimilarityStore(root / "a.db")
    for q in data["queries"]:
        assert q["label"] == q["track"].split("/")[0]
        got = [(it["track"], it["score"]) for it in q["items"]]
        assert got == [(t, pytest.approx(s)) for t, s in store.similar(q["track"], k=3)]
        for it in q["items"]:
            info = sf.info(tmp_path / "r" / it["audio"])
            assert (info.format, info.subtype, info.channels) == ("OGG", "VORBIS", 1)
            assert info.samplerate == 16000 and info.duration > 0.9  # the whole 1-s track
            assert (tmp_path / "r" / it["thumb"]).read_bytes()[:4] == b"\x89PNG"
            assert "why" not in it
    assert page.count("<audio") == 3 + 9
    # rewriting the same folder replaces the report
    again = write_report(
        root / "a.db", music_dir=root / "music", out=tmp_path / "r", tracks=[ids[0]], k=3
    )
    assert again.n_queries == 1 and len(list((tmp_path / "r" / "audio").iterdir())) == 4


def test_report_with_model_has_why(collection, fitted, tmp_path):
    root, ids = collection
    res = write_report(
        root / "a.db",
        music_dir=root / "music",
        out=tmp_path / "r",
        tracks=ids[:2],
        k=2,
        model=fitted[0],
        excerpt_seconds=0.5,
    )
    data = json.loads(
        res.index.read_text().split('type="application/json">')[1].split("</script>")[0]
    )
    for q in data["queries"]:
        assert 0 <= q["offset"] <= 0.5
        for it in q["items"]:
            why = it["why"]
            assert (tmp_path / "r" / why["heat"]).is_file()
            for name in ("query", "neighbour"):  # the whole 1-s track, not cut short
                assert sf.info(tmp_path / "r" / why[name]).duration > 0.95


def test_ab_report_hides_the_origin(collection, tmp_path):
    root, _ = collection
    res = write_report(
        root / "a.db",
        store_b=root / "b.db",
        music_dir=root / "music",
        out=tmp_path / "ab",
        queries=4,
        k=3,
        random_state=1,
    )
    key = json.loads(res.key.read_text())
    assert res.key.parent == tmp_path and not list((tmp_path / "ab").glob("*.json"))
    page = res.index.read_text()
    assert "score" not in page.split("<main>")[1].split("<script")[0]
    assert "store_a" not in page and '"a":' not in page and '"rank"' not in page
    a, b = SimilarityStore(root / "a.db"), SimilarityStore(root / "b.db")
    for item, entry in key["items"].items():
        assert f'data-item="{item}"' in page
        for origin, store in (("a", a), ("b", b)):
            ranks = [t for t, _ in store.similar(entry["query"], k=3)]
            expected = ranks.index(entry["track"]) + 1 if entry["track"] in ranks else None
            assert entry[origin] == expected


def test_missing_file_and_folder_errors(collection, tmp_path):
    root, ids = collection
    with pytest.raises(FileNotFoundError, match=rf"track '{ids[0]}': no audio file"):
        write_report(root / "a.db", music_dir=tmp_path, out=tmp_path / "r", tracks=ids[:1])
    assert not (tmp_path / "r").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="other than a report"):
        write_report(root / "a.db", music_dir=root / "music", out=tmp_path / "busy")
    with pytest.raises(KeyError, match="'nope' is not in the store"):
        write_report(root / "a.db", music_dir=root / "music", out=tmp_path / "r", tracks=["nope"])


def test_report_command(collection, tmp_path, capsys):
    root, ids = collection
    out = tmp_path / "cli"
    argv = ["report", "--store", str(root / "a.db"), "--music-dir", str(root / "music")]
    assert main([*argv, "--out", str(out), "--queries", "2", "-k", "2"]) == 0
    assert "2 queries, 4 pairs" in capsys.readouterr().out
    ab = ["report", "--store-a", str(root / "a.db"), "--store-b", str(root / "b.db")]
    ab += ["--music-dir", str(root / "music"), "--out", str(tmp_path / "ab")]
    assert main([*ab, "--tracks", ids[0], ids[1]]) == 0
    assert "keep it from the assessors" in capsys.readouterr().out
    assert (tmp_path / "ab.key.json").is_file()
    assert main([*argv[:1], "--store-a", str(root / "a.db"), *argv[3:], "--out", "x"]) == 1
    assert "--store-a needs --store-b" in capsys.readouterr().err
    assert main([*argv, "--out", str(out), "--tracks", "missing.wav"]) == 1
    assert "'missing.wav' is not in the store" in capsys.readouterr().err


def test_window_excerpts_match_the_file(tmp_path, fitted):
    from sklearn_music.report._media import read_excerpt
    from sklearn_music.report._write import _Window

    y = (0.5 * np.sin(2 * np.pi * 220 * np.arange(3 * 16000) / 16000)).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, y, 16000)
    window = _Window(path, 3.0, y[8000:40000], 16000, begin=0.5)
    inside = window.excerpt(1.0, 0.5, 16000)
    np.testing.assert_allclose(inside, y[16000:24000], atol=1e-4)
    outside = window.excerpt(0.0, 0.5, 16000)  # before the window: read from the file
    np.testing.assert_allclose(outside, read_excerpt(path, offset=0.0, duration=0.5, sr=16000))
    # side-by-side patches for the heat maps
    pipe, tracks = fitted
    frames = pipe.named_steps["embed"].patch_frames
    _, offsets, seconds = patch_embeddings(pipe, [tracks.data[0]], hop=frames)
    np.testing.assert_allclose(np.diff(offsets[0])[:-1], seconds)


def test_index_then_report_with_a_model_without_an_index_step(collection, tmp_path, capsys):
    # pretrained.load gives Pipeline(mel, embedder) without an index: `index` must keep
    # the embedder (it used to drop the last step whatever it was)
    from sklearn_music.persistence import save_model

    root, ids = collection
    pipe, tracks = tiny_pipeline(8, index=False)
    pipe.fit(list(tracks.data), tracks.genre)
    save_model(pipe, tmp_path / "m.skops")
    store = tmp_path / "s.db"
    argv = ["index", str(root / "music"), "--model", str(tmp_path / "m.skops")]
    assert main([*argv, "--store", str(store), "-k", "3"]) == 0
    assert sorted(SimilarityStore(store)) == sorted(ids)
    argv = ["report", "--store", str(store), "--music-dir", str(root / "music")]
    argv += ["--model", str(tmp_path / "m.skops"), "--queries", "1", "-k", "2"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert "1 queries, 2 pairs, 3 excerpts" in capsys.readouterr().out
    assert len(list((tmp_path / "r" / "why").glob("*.png"))) == 2
