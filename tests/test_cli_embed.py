"""``sklearn-music embed FILES --out vectors.npy|.parquet`` and ``index`` without a model:
the pretrained soundtracks-v1 by default."""

import json

import numpy as np
import pytest
import soundfile as sf

from sklearn_music import embed
from sklearn_music.cli import main
from sklearn_music.store import SimilarityStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SR = 16000


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """MUSIC/<genre>/<n>.wav: 6 synthetic tracks of 2 s."""
    from sklearn_music.datasets import make_tracks

    root = tmp_path_factory.mktemp("music")
    tracks = make_tracks(6, n_genres=2, duration=2.0, sr=SR, random_state=0)
    for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
        (root / genre).mkdir(exist_ok=True)
        sf.write(root / genre / f"{i}.wav", x, SR)
    return root


@pytest.fixture(scope="module")
def files(music):
    return sorted(p for p in music.rglob("*.wav"))


@pytest.fixture(scope="module")
def reference(files):
    """The vectors of the files, one call of the library's pretrained embed."""
    return embed([str(f) for f in files], n_jobs=1)


def _ids(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_embed_folder_to_npy_without_a_model(music, files, reference, tmp_path, capsys):
    out = tmp_path / "vectors.npy"
    assert main(["embed", str(music), "--out", str(out), "--batch-size", "4"]) == 0
    assert "embedded 6 tracks (128 dimensions)" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(out), reference, rtol=1e-5, atol=1e-6)
    # ids: the paths relative to the folder, in the sidecar (as `export` writes it)
    assert _ids(tmp_path / "vectors.ids.jsonl") == [f.relative_to(music).as_posix() for f in files]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left


def test_embed_files_and_a_listing_to_parquet(music, files, reference, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    listing = tmp_path / "more.txt"
    listing.write_text("# two more\n" + "\n".join(str(f) for f in files[2:4]) + "\n")
    out = tmp_path / "vectors.parquet"
    args = [str(files[0]), str(files[1]), str(listing)]
    assert main(["embed", *args, "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["track_id", "vector"]
    assert table.column("track_id").to_pylist() == [str(f) for f in files[:4]]
    got = np.array(table.column("vector").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(got, reference[:4], rtol=1e-5, atol=1e-6)
    # the file is what the Dask `neighbours` step reads
    from sklearn_music.batch import read_vectors

    ids, vectors = read_vectors(out)
    assert list(ids) == [str(f) for f in files[:4]] and vectors.shape == (4, 128)


def test_embed_several_folders_prefix_their_ids(music, tmp_path):
    out = tmp_path / "v.npy"
    a, b = sorted(p for p in music.iterdir() if p.is_dir())
    assert main(["embed", str(a), str(b), "--out", str(out)]) == 0
    ids = _ids(tmp_path / "v.ids.jsonl")
    assert len(ids) == 6 and ids[0].startswith(a.as_posix() + "/")


def test_embed_errors(music, files, tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    out = tmp_path / "v.npy"
    assert main(["embed", str(files[0]), str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "--skip-errors" in err
    assert not out.exists()
    assert main(["embed", str(files[0]), str(bad), "--out", str(out), "--skip-errors"]) == 0
    assert np.load(out).shape == (1, 128)
    assert _ids(tmp_path / "v.ids.jsonl") == [str(files[0])]
    assert "skipping" in capsys.readouterr().err
    # the same file twice: the same id
    assert main(["embed", str(files[0]), str(files[0]), "--out", str(out)]) == 1
    assert "track id" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert main(["embed", str(files[0]), "--out", str(tmp_path / "no" / "v.npy")]) == 1
    # a shard folder (Dask) still takes one LISTING
    assert main(["embed", str(files[0]), str(files[1]), "--out", str(tmp_path / "shards")]) == 1
    assert "several FILES go into one file" in capsys.readouterr().err


def test_index_without_a_model_uses_the_pretrained_one(music, files, reference, tmp_path, capsys):
    db = tmp_path / "tracks.db"
    assert main(["index", str(music), "--store", str(db), "-k", "2"]) == 0
    with SimilarityStore(db) as store:
        assert store.dim == 128 and len(store) == 6
        ids, vectors = store.to_arrays()
    order = [list(ids).index(f.relative_to(music).as_posix()) for f in files]
    np.testing.assert_allclose(vectors[order], reference, rtol=1e-4, atol=1e-5)
    # an audio-file query of that store: the pretrained model by name
    assert main(["similar", str(files[0]), "--store", str(db), "-k", "1"]) == 1
    assert "--model soundtracks-v1" in capsys.readouterr().err
    argv = ["similar", str(files[0]), "--store", str(db), "--model", "soundtracks-v1"]
    assert main([*argv, "-k", "1", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert files[0].relative_to(music).as_posix() in out
