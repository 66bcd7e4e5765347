"""Catalogue-scale jobs on a LocalCluster of 2 worker processes over loopback."""

import os
import signal
import subprocess
import sys
import time
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


@pytest.mark.slow
def test_rerun_after_kill_finishes_the_rest(music, model, tmp_path):
    """Kill a whole run (client, scheduler, workers) mid-way; the rerun writes
    only the missing shards and the result equals an uninterrupted run."""
    import pickle

    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    script = f"""
import pickle, time
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn_music.batch import embed_catalogue

def slow(X):
    time.sleep(1.0)
    return X

if __name__ == "__main__":
    model = pickle.load(open({str(tmp_path / "model.pkl")!r}, "rb"))
    model = Pipeline([("mel", model[0]), ("slow", FunctionTransformer(slow)), ("emb", model[1])])
    embed_catalogue(model, {str(music)!r}, {str(tmp_path / "vec")!r}, partition_size=1,
                    n_workers=2, progress=False)
"""
    (tmp_path / "run.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "run.py")],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while len(list((tmp_path / "vec").glob("part-*.parquet"))) < 3:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run wrote no shard in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "vec").glob("part-*.parquet")}
    assert 3 <= len(before) < 10

    out = embed_catalogue(model, music, tmp_path / "vec", partition_size=1, n_workers=2)
    assert out["n_skipped"] == len(before) and out["n_written"] == 10 - len(before)
    for name, mtime in before.items():  # finished shards were not rewritten
        assert (tmp_path / "vec" / name).stat().st_mtime_ns == mtime
    assert not list((tmp_path / "vec").glob(".*.tmp"))
    ids, X = read_vectors(tmp_path / "vec")
    ref_ids, ref = _reference(model, music)
    assert ids == ref_ids
    np.testing.assert_array_equal(X, ref)


# --------------------------------------------------------------------------- #
# neighbours and recommendations
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """300 random 8-d tracks in two shards, and the store SimilarityStore.build makes."""
    from sklearn_music.batch._shards import vectors_table, write_parquet_atomic
    from sklearn_music.store import SimilarityStore

    folder = tmp_path_factory.mktemp("catalogue")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    ids = [f"track{i:03d}" for i in rng.permutation(300)]
    (folder / "vec").mkdir()
    write_parquet_atomic(vectors_table(ids[:170], X[:170]), folder / "vec" / "part-000000.parquet")
    write_parquet_atomic(vectors_table(ids[170:], X[170:]), folder / "vec" / "part-000001.parquet")
    SimilarityStore.build(folder / "ref.db", X, ids, n_neighbors=5, algorithm="brute")
    return folder, ids, X


def test_store_from_vectors_equals_build(client, catalogue, tmp_path):
    from sklearn_music.batch import build_store_from_vectors
    from sklearn_music.store import SimilarityStore

    folder, ids, X = catalogue
    n = build_store_from_vectors(
        folder / "vec",
        tmp_path / "s.db",
        n_neighbors=5,
        algorithm="brute",
        scheduler=client,
        block_size=64,
    )
    assert n == 300
    with SimilarityStore(tmp_path / "s.db") as got, SimilarityStore(folder / "ref.db") as ref:
        assert len(got) == 300 and got.n_neighbors == 5
        assert sorted(got) == sorted(ids)
        for tid, x in zip(ids, X):
            np.testing.assert_array_equal(got.vector(tid), x)
            a, b = got.similar(tid), ref.similar(tid)
            assert [t for t, _ in a] == [t for t, _ in b]
            np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-6)


def test_graph_top_k_hand_computed_ties_and_padding():
    from sklearn_music.batch._neighbours import graph_top_k

    V = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    # row 0's candidates: 2 and 1 tie (cosine 0), 3 is opposite; row 3 has one
    cand = np.array([[2, 1, 3], [-1, -1, -1], [0, -1, -1], [0, -1, -1]], dtype=np.int32)
    ind, sc = graph_top_k(V, cand, 0, 4, 2, "cosine")
    assert ind.tolist() == [[1, 2], [-1, -1], [0, -1], [0, -1]]  # tie: smaller row first
    np.testing.assert_array_equal(sc[0], [0.0, 0.0])
    assert sc[1].tolist() == [-np.inf, -np.inf] and sc[3, 0] == -1.0
    ind, sc = graph_top_k(V, cand, 0, 1, 4, "euclidean")  # k above the degree: padded
    assert ind.tolist() == [[1, 2, 3, -1]]
    np.testing.assert_allclose(sc[0, :3], [-np.sqrt(2), -np.sqrt(2), -2.0], rtol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_graph_top_k_against_exact_search(metric):
    from sklearn.neighbors import NearestNeighbors

    from sklearn_music import NearestTracks
    from sklearn_music.batch._neighbours import graph_candidates, graph_top_k

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 8))
    X = (centres[rng.integers(0, 40, 3000)] + 0.3 * rng.normal(size=(3000, 8))).astype(np.float32)
    index = NearestTracks(metric=metric, algorithm="nndescent", random_state=0).fit(X)
    cand = graph_candidates(index)
    assert cand.shape == (3000, 30) and not (cand == np.arange(3000)[:, None]).any()
    ind, sc = graph_top_k(index.vectors_, cand, 0, 3000, 10, metric)
    exact = NearestNeighbors(n_neighbors=11, metric=metric).fit(X).kneighbors(return_distance=False)
    recall = np.mean([len(set(a) & set(b[:10])) / 10 for a, b in zip(ind, exact)])
    assert recall >= 0.99
    assert (ind != np.arange(3000)[:, None]).all()
    assert (np.diff(sc, axis=1) <= 0).all()
    # scores are exact: recomputed from the fitted vectors
    V = index.vectors_.astype(np.float64)
    if metric == "cosine":
        want = np.einsum("ij,ikj->ik", V, V[ind])
    else:
        want = -np.linalg.norm(V[ind] - V[:, None, :], axis=2)
    np.testing.assert_allclose(sc, want, rtol=1e-6, atol=1e-6)
    # a brute index has no graph
    assert graph_candidates(NearestTracks(algorithm="brute").fit(X)) is None


def test_store_from_vectors_from_the_graph(catalogue, tmp_path):
    from sklearn_music.batch import build_store_from_vectors
    from sklearn_music.store import SimilarityStore

    folder, ids, X = catalogue
    # the graph needs no cluster: no scheduler is started
    build_store_from_vectors(
        folder / "vec", tmp_path / "g.db", n_neighbors=5, algorithm="nndescent", block_size=64
    )
    overlap = []
    with SimilarityStore(tmp_path / "g.db") as got, SimilarityStore(folder / "ref.db") as ref:
        for tid in ids:
            a, b = got.similar(tid), ref.similar(tid)
            overlap.append(len({t for t, _ in a} & {t for t, _ in b}) / 5)
            for t, score in a:  # exact cosine of the stored vectors
                u, v = got.vector(tid), got.vector(t)
                cos = float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
                assert abs(score - cos) < 1e-5
    assert np.mean(overlap) >= 0.97
    with pytest.raises(ValueError, match="neighbours_from='graph' needs a graph.*'brute'"):
        build_store_from_vectors(
            folder / "vec",
            tmp_path / "b.db",
            n_neighbors=5,
            algorithm="brute",
            neighbours_from="graph",
        )
    assert not (tmp_path / "b.db").exists()


def test_recommend_all_equals_store_recommend(client, catalogue, tmp_path):
    import pandas as pd

    from sklearn_music.batch import recommend_all
    from sklearn_music.store import SimilarityStore

    folder, ids, _ = catalogue
    rng = np.random.default_rng(1)
    rows = []
    for user in range(40):
        for t in rng.choice(ids, size=rng.integers(1, 7), replace=False):
            rows.append((user, t, int(rng.integers(0, 4))))
    rows.append((40, "not-in-the-store", 3))  # a user with only unknown tracks
    table = pd.DataFrame(rows, columns=["user_id", "track_id", "plays"])
    table.sample(frac=1.0, random_state=0).to_csv(tmp_path / "plays.csv", index=False)
    store = tmp_path / "s.db"
    store.write_bytes((folder / "ref.db").read_bytes())

    out = recommend_all(
        tmp_path / "plays.csv",
        store,
        tmp_path / "recs",
        n=4,
        into_store=True,
        scheduler=client,
        users_per_task=7,
    )
    assert out["n_users"] == 41 and out["n_parts"] == 6
    recs = pd.read_parquet(tmp_path / "recs")
    assert list(recs.columns) == ["user_id", "rank", "track_id", "score"]
    shuffled = pd.read_csv(tmp_path / "plays.csv")
    with SimilarityStore(store) as s:
        n_checked = 0
        for user in range(41):
            seen = shuffled[(shuffled.user_id == user) & (shuffled.plays >= 1)]
            history = [t for t in dict.fromkeys(seen.track_id) if t in s]
            got = recs[recs.user_id == user]
            if not history:
                assert got.empty
                with pytest.raises(KeyError, match="no recommendations"):
                    s.recommended(user)
                continue
            expected = s.recommend(history, k=4)
            assert got["rank"].tolist() == list(range(1, len(expected) + 1))
            assert got.track_id.tolist() == [t for t, _ in expected]
            np.testing.assert_allclose(got.score, [sc for _, sc in expected], rtol=1e-6)
            stored = s.recommended(user)
            assert [t for t, _ in stored] == [t for t, _ in expected]
            n_checked += 1
        assert n_checked > 30


def test_cli_subcommands_on_a_scheduler_address(client, music, model, tmp_path, capsys):
    """embed -> neighbours -> recommend-all through the subcommands, with --scheduler."""
    import argparse

    import pandas as pd

    from sklearn_music.batch import add_batch_parsers
    from sklearn_music.persistence import save_model
    from sklearn_music.store import SimilarityStore

    save_model(model, tmp_path / "model.skops")
    parser = argparse.ArgumentParser(prog="sklearn-music")
    add_batch_parsers(parser.add_subparsers(dest="command", required=True))
    address = ["--scheduler", client.scheduler.address, "--no-progress"]

    def run(*argv):
        args = parser.parse_args([*argv, *address])
        assert args.func(args) == 0

    run("embed", str(music), "--model", str(tmp_path / "model.skops"), "--out", str(tmp_path / "v"))
    assert "10 tracks in 1 shards" in capsys.readouterr().out
    run("neighbours", str(tmp_path / "v"), "--store", str(tmp_path / "s.db"), "--neighbors", "3")
    ids = sorted(p.name for p in music.glob("*.wav"))
    pd.DataFrame({"user_id": ["u1", "u1", "u2"], "track_id": ids[:3]}).to_parquet(
        tmp_path / "plays.parquet"
    )
    run(
        "recommend-all",
        str(tmp_path / "plays.parquet"),
        "--store",
        str(tmp_path / "s.db"),
        "--out",
        str(tmp_path / "recs"),
        "-n",
        "2",
        "--into-store",
    )
    with SimilarityStore(tmp_path / "s.db") as s:
        assert sorted(s) == ids
        for user, history in (("u1", ids[:2]), ("u2", ids[2:3])):
            stored, fresh = s.recommended(user, k=5), s.recommend(history, k=2)
            assert [t for t, _ in stored] == [t for t, _ in fresh]
            np.testing.assert_allclose([x for _, x in stored], [x for _, x in fresh], rtol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("search", ["graph", "scan", "exhaustive"])
def test_recommend_users_equals_store_recommend(metric, search, tmp_path, monkeypatch):
    """The bulk scoring of a part gives each user's ``SimilarityStore.recommend``:
    its best-first search of the lists (store read from disk or held in memory),
    the scan of a small store, and the exhaustive scan."""
    from sklearn_music.batch._recommend import recommend_users, resident_rows
    from sklearn_music.store import SimilarityStore, _queries

    exhaustive = search == "exhaustive"
    if search == "graph":  # the 150-track store would be scanned otherwise
        monkeypatch.setattr(_queries, "SCAN_BELOW", 0)

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 6))
    X = centres[rng.integers(0, 6, size=150)] + 0.3 * rng.normal(size=(150, 6))
    X[1] = -X[0]  # a history of these two has no mean direction (cosine)
    ids = [int(i) for i in rng.permutation(10_000)[:150]]
    path = tmp_path / "s.db"
    SimilarityStore.build(path, X, ids, n_neighbors=6, metric=metric, algorithm="brute")
    histories = [list(rng.choice(ids, size=rng.integers(1, 9), replace=False)) for _ in range(40)]
    histories = [[int(t) for t in h] for h in histories]
    histories += [[ids[0], ids[1]], [ids[5], -1, str(ids[6])], [-1], []]
    histories += [[ids[2], ids[3], ids[2]]]  # a track played twice
    with SimilarityStore(path) as store:
        got = recommend_users(store, histories, n=5, exhaustive=exhaustive, batch_size=37)
        rows = resident_rows(store)  # the whole store in memory, as a worker keeps it
        assert recommend_users(store, histories, n=5, exhaustive=exhaustive, rows=rows) == got
        assert len(got) == len(histories)
        for history, recs in zip(histories, got):
            known = [t for t in history if t in store]
            try:
                expected = store.recommend(known, k=5, exhaustive=exhaustive) if known else []
            except ValueError:  # opposite unit vectors: no direction
                assert metric == "cosine" and known == [ids[0], ids[1]]
                expected = []
            assert [t for t, _ in recs] == [t for t, _ in expected]
            np.testing.assert_allclose(
                [s for _, s in recs], [s for _, s in expected], rtol=1e-12, atol=1e-12
            )
            assert all(type(t) is int for t, _ in recs)


def test_bulk_reads_of_a_store(tmp_path):
    """lists_of leaves unknown keys out; vectors_of keeps the order and names a missing id."""
    from sklearn_music.store import SimilarityStore
    from sklearn_music.store._bulk import lists_of, vectors_of

    X = np.random.default_rng(4).normal(size=(2000, 3)).astype(np.float32)
    ids = [f"t{i}" for i in range(2000)]
    SimilarityStore.build(tmp_path / "s.db", X, ids, n_neighbors=3, algorithm="brute")
    with SimilarityStore(tmp_path / "s.db") as store:
        keys = ids[::-1][:1500]  # more than one IN (...) query
        lists = lists_of(store, [*keys, "nope"])
        assert list(lists) != [] and set(lists) == set(keys)
        assert all(lists[k] == [t for t, _ in store.similar(k)] for k in keys[:50])
        np.testing.assert_array_equal(vectors_of(store, keys), X[[int(k[1:]) for k in keys]])
        with pytest.raises(KeyError, match="unknown track id 'nope'"):
            vectors_of(store, ["t1", "nope"])
