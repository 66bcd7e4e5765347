"""Catalogue-scale jobs on a LocalCluster of 2 worker processes over loopback."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pyarrow")
distributed = pytest.importorskip("dask.distributed")

from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer  # noqa: E402
from sklearn_music.batch import embed_catalogue, read_vectors  # noqa: E402
from sklearn_music.batch._embed import set_torch_threads  # noqa: E402
from sklearn_music.datasets import make_tracks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SR = 8000
MEL = dict(sr=SR, n_fft=256, hop_length=128, n_mels=16)
TINY = dict(
    embedding_dim=8,
    n_filters=4,
    hidden_units=(8,),
    patch_frames=16,
    patch_hop=8,
    patches_per_track=2,
    max_epochs=1,
    random_state=0,
)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """10 short synthetic tracks of varying length as .wav files."""
    folder = tmp_path_factory.mktemp("music")
    tracks = make_tracks(10, n_genres=2, duration=1.0, sr=SR, random_state=0)
    for i, x in enumerate(tracks.data):
        x = x[: len(x) - 400 * (i % 3)]  # ragged lengths
        sf.write(folder / f"t{i:02d}.wav", x, SR)
    return folder


@pytest.fixture(scope="module")
def model(music):
    paths = sorted(str(p) for p in music.glob("*.wav"))
    mel = MelSpectrogramTransformer(**MEL).fit(paths)
    specs = mel.transform(paths)
    y = np.arange(len(paths)) % 2
    emb = ConvEmbedder(**TINY).fit(specs, y)
    return make_pipeline(mel, emb)


def _reference(model, folder):
    paths = sorted(str(p) for p in Path(folder).glob("*.wav"))
    set_torch_threads(1)
    return [Path(p).name for p in paths], model.transform(paths)


def test_vectors_equal_single_process(client, music, model, tmp_path):
    out = embed_catalogue(model, music, tmp_path / "vec", scheduler=client, partition_size=3)
    assert out["n_partitions"] == 4 and out["n_written"] == 4 and out["n_errors"] == 0
    assert sorted(p.name for p in (tmp_path / "vec").glob("part-*.parquet")) == [
        f"part-{i:06d}.parquet" for i in range(4)
    ]
    ids, X = read_vectors(tmp_path / "vec")
    ref_ids, ref = _reference(model, music)
    assert ids == ref_ids
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, ref)  # bit-identical

    # a rerun finds every shard written and computes nothing
    again = embed_catalogue(model, music, tmp_path / "vec", scheduler=client, partition_size=3)
    assert again["n_written"] == 0 and again["n_skipped"] == 4
    # another listing into the same folder is refused
    with pytest.raises(ValueError, match="partition_size"):
        embed_catalogue(model, music, tmp_path / "vec", scheduler=client, partition_size=4)


def test_corrupt_file_goes_to_errors_table(client, music, model, tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    for p in sorted(music.glob("*.wav"))[:4]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "t02.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    out = embed_catalogue(model, folder, tmp_path / "vec", scheduler=client, partition_size=2)
    assert out["n_tracks"] == 3 and out["n_errors"] == 1
    errors = out["errors"].to_pylist()
    assert errors[0]["track_id"] == "t02.wav"
    assert errors[0]["path"] == str(folder / "t02.wav")
    assert "t02.wav" in errors[0]["error"] or "Error" in errors[0]["error"]
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "vec" / "errors.parquet").to_pylist() == errors
    ids, X = read_vectors(tmp_path / "vec")
    assert ids == ["t00.wav", "t01.wav", "t03.wav"]
    ref_ids, ref = _reference(model, music)
    np.testing.assert_array_equal(X, ref[[0, 1, 3]])


def test_worker_killed_mid_partition(client, music, model, tmp_path):
    """The first partition to reach the crash step kills its worker process;
    the scheduler reruns it elsewhere: no track lost, none duplicated."""
    marker = tmp_path / "crash-once"
    marker.touch()

    def crash_once(X):
        try:
            os.unlink(marker)
        except FileNotFoundError:
            return X
        os._exit(1)  # the worker process dies mid-partition

    mel, emb = model[0], model[1]
    crashing = Pipeline([("mel", mel), ("crash", FunctionTransformer(crash_once)), ("emb", emb)])
    out = embed_catalogue(crashing, music, tmp_path / "vec", scheduler=client, partition_size=3)
    assert not marker.exists(), "no worker was killed"
    assert out["n_tracks"] == 10 and out["n_errors"] == 0
    ids, X = read_vectors(tmp_path / "vec")
    ref_ids, ref = _reference(model, music)
    assert ids == ref_ids  # every track once, in order
    np.testing.assert_array_equal(X, ref)
