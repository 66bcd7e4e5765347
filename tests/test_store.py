"""SimilarityStore: round trip, neighbours against sklearn, incremental add,
atomic rebuild under concurrent readers, crash safety."""

import math
import multiprocessing
import os
import signal
import sqlite3
import time

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from sklearn_music.store import SimilarityStore
from sklearn_music.store import _write as store_write

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _vectors(rng, n, dim=8):
    return rng.normal(size=(n, dim)).astype(np.float32)


def _exact(vectors, k, metric="cosine"):
    """Reference: sklearn's exact neighbours, self excluded, as (ids, scores)."""
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute")
    dist, ind = nn.fit(vectors).kneighbors(vectors)
    ids, scores = [], []
    for i in range(len(vectors)):
        keep = ind[i] != i
        d, j = dist[i][keep][:k], ind[i][keep][:k]
        ids.append(list(j))
        scores.append(list(1 - d if metric == "cosine" else -d))
    return ids, scores


def _tmp_files(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- #
# round trip and lookups
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("ids_kind", ["str", "int"])
def test_round_trip(tmp_path, rng, ids_kind):
    X = _vectors(rng, 30)
    ids = (
        [f"album/track {i}.ogg" for i in range(30)]
        if ids_kind == "str"
        else list(np.arange(100, 130))
    )
    path = tmp_path / "tracks.db"
    SimilarityStore.build(path, X, ids, n_neighbors=5)
    with SimilarityStore(path) as store:
        assert len(store) == 30
        assert store.dim == 8 and store.metric == "cosine" and store.n_neighbors == 5
        expected_type = str if ids_kind == "str" else int
        assert store.id_type is expected_type
        listed = list(store)
        assert listed == [expected_type(i) for i in ids]
        assert all(type(t) is expected_type for t in listed)
        for i, tid in enumerate(ids):
            assert tid in store
            np.testing.assert_array_equal(store.vector(tid), X[i])
            assert store.vector(tid).dtype == np.float32
            sim = store.similar(tid, k=5)
            assert len(sim) == 5
            assert all(type(t) is expected_type for t, _ in sim)
            assert tid not in [t for t, _ in sim]
            scores = [s for _, s in sim]
            assert scores == sorted(scores, reverse=True)
        assert store.similar(ids[0], k=2) == store.similar(ids[0])[:2]
        assert store.similar(ids[0], k=0) == []
        assert "nope" not in store and 10**9 not in store and 1.5 not in store


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_similar_equals_exact_neighbors(tmp_path, rng, metric):
    X = _vectors(rng, 60)
    path = tmp_path / "tracks.db"
    SimilarityStore.build(path, X, list(range(60)), n_neighbors=7, metric=metric, algorithm="brute")
    ref_ids, ref_scores = _exact(X, 7, metric)
    with SimilarityStore(path) as store:
        for i in range(60):
            got = store.similar(i, k=7)
            assert [t for t, _ in got] == ref_ids[i]
            np.testing.assert_allclose([s for _, s in got], ref_scores[i], atol=1e-5)


def test_similar_matches_nearest_tracks(tmp_path, rng):
    """The stored lists are the index's own neighbours and distances.

    (algorithm="nndescent" goes through the same code; it is left out here
    because pynndescent's JIT compilation costs about a minute per process.)
    """
    algorithm = "brute"
    from sklearn_music import NearestTracks

    X = _vectors(rng, 300)
    path = tmp_path / "tracks.db"
    SimilarityStore.build(
        path, X, list(range(300)), n_neighbors=5, algorithm=algorithm, random_state=0
    )
    index = NearestTracks(n_neighbors=5, algorithm=algorithm, random_state=0).fit(X)
    dist, ind = index.kneighbors()
    with SimilarityStore(path) as store:
        for i in range(300):
            got = store.similar(i, k=5)
            assert [t for t, _ in got] == list(ind[i])
            np.testing.assert_allclose([s for _, s in got], 1 - dist[i], atol=1e-5)


def test_from_pipeline(tmp_path, rng):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_music import NearestTracks

    X = _vectors(rng, 40)
    ids = [f"t{i}" for i in range(40)]
    pipe = make_pipeline(StandardScaler(), NearestTracks(n_neighbors=3)).fit(X)
    path = tmp_path / "p.db"
    SimilarityStore.from_pipeline(path, pipe, X, ids, n_neighbors=3)
    E = pipe[0].transform(X)
    with SimilarityStore(path) as store:
        np.testing.assert_allclose(store.vector("t5"), E[5], rtol=1e-6)
        ref = _exact(E, 3)[0][5]
        assert [t for t, _ in store.similar("t5")] == [ids[j] for j in ref]
    # a fitted index alone: its vectors (unit-normalised for cosine) and ids
    index = NearestTracks(n_neighbors=3).fit(E, track_ids=ids)
    SimilarityStore.from_pipeline(path, index, None, None, n_neighbors=3)
    with SimilarityStore(path) as store:
        assert list(store) == ids
        np.testing.assert_allclose(store.vector("t5"), E[5] / np.linalg.norm(E[5]), rtol=1e-5)
        assert [t for t, _ in store.similar("t5")] == [ids[j] for j in ref]


class _Index:
    """A fitted NearestTracks-like index with the given attributes."""

    metric = "euclidean"

    def __init__(self, **attrs):
        vars(self).update(attrs)


def test_from_pipeline_reads_public_vectors_only(tmp_path):
    path = tmp_path / "i.db"
    public, private = np.eye(3, dtype=np.float32), 2 * np.eye(3, dtype=np.float32)
    index = _Index(vectors_=public, _fit_X=private, track_ids_=["a", "b", "c"])
    SimilarityStore.from_pipeline(path, index, None, None, n_neighbors=1)
    with SimilarityStore(path) as store:
        assert store.metric == "euclidean"
        np.testing.assert_array_equal([store.vector(t) for t in "abc"], public)
    with pytest.raises(ValueError, match="_Index does not expose its training vectors"):
        SimilarityStore.from_pipeline(path, _Index(_fit_X=private, track_ids_=["a"]), None, None)
    with pytest.raises(ValueError, match="_Index does not expose its training vectors"):
        SimilarityStore.from_pipeline(path, _Index(), None, ["a"])
    with pytest.raises(ValueError, match="not a Pipeline"):
        SimilarityStore.from_pipeline(path, _Index(vectors_=public), public, ["a", "b", "c"])


def test_small_stores(tmp_path):
    path = tmp_path / "one.db"
    SimilarityStore.build(path, [[1.0, 2.0]], ["only"], n_neighbors=3)
    with SimilarityStore(path) as store:
        assert store.similar("only") == []
    SimilarityStore.build(
        path, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], ["a", "b", "c"], n_neighbors=10
    )
    with SimilarityStore(path) as store:
        assert [t for t, _ in store.similar("a")] == ["c", "b"]
        assert store.similar("a")[0][1] == pytest.approx(math.sqrt(0.5), abs=1e-6)


def test_recommend(tmp_path, rng):
    X = _vectors(rng, 200)
    path = tmp_path / "tracks.db"
    SimilarityStore.build(path, X, [f"t{i}" for i in range(200)], n_neighbors=10, algorithm="brute")
    history = ["t3", "t17", "t42"]
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    q = U[[3, 17, 42]].mean(0)
    q /= np.linalg.norm(q)
    scores = U @ q
    scores[[3, 17, 42]] = -np.inf
    expected = [f"t{i}" for i in np.argsort(-scores)[:8]]
    with SimilarityStore(path) as store:
        got = store.recommend(history, k=8, exhaustive=True, batch_size=37)
        assert [t for t, _ in got] == expected
        np.testing.assert_allclose([s for _, s in got], np.sort(scores)[::-1][:8], atol=1e-5)
        assert store.recommend(history, k=8) == got  # a store this small is scanned
    from sklearn_music.store import _queries

    with SimilarityStore(path) as store, pytest.MonkeyPatch.context() as mp:
        mp.setattr(_queries, "SCAN_BELOW", 0)  # the search of the stored lists
        fast = store.recommend(history, k=8)
        assert len(fast) == 8 and not {t for t, _ in fast} & set(history)
        # exact scores, best first, at least as good as re-ranking the history's lists
        ranked = [scores[int(t[1:])] for t, _ in fast]
        np.testing.assert_allclose([s for _, s in fast], ranked, atol=1e-5)
        assert ranked == sorted(ranked, reverse=True)
        candidates = {t for h in history for t, _ in store.similar(h)} - set(history)
        lists_only = sorted((scores[int(t[1:])] for t in candidates), reverse=True)[:8]
        assert all(a >= b - 1e-6 for a, b in zip(ranked, lists_only))
        with pytest.raises(KeyError, match="'t999'"):
            store.recommend(["t1", "t999"])
        with pytest.raises(ValueError, match="empty"):
            store.recommend([])


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
def test_errors(tmp_path, rng):
    path = tmp_path / "tracks.db"
    X = _vectors(rng, 5)
    with pytest.raises(ValueError, match="duplicate track id 'b'.*rows 1 and 3"):
        SimilarityStore.build(path, X, ["a", "b", "c", "b", "e"])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="row 3 contains a non-finite"):
        SimilarityStore.build(path, bad, list("abcde"))
    zero = X.copy()
    zero[2] = 0
    with pytest.raises(ValueError, match="row 2 is all zeros"):
        SimilarityStore.build(path, zero, list("abcde"))
    with pytest.raises(TypeError, match=r"track_ids\[2\]=3 is int"):
        SimilarityStore.build(path, X, ["a", "b", 3, "d", "e"])
    with pytest.raises(TypeError, match="must be str or int"):
        SimilarityStore.build(path, X, ["a", "b", 3.5, "d", "e"])
    with pytest.raises(ValueError, match="5 rows but track_ids has 4"):
        SimilarityStore.build(path, X, list("abcd"))
    with pytest.raises(ValueError, match="'metric' parameter.*Got 'manhattan'"):
        SimilarityStore.build(path, X, list("abcde"), metric="manhattan")
    with pytest.raises(ValueError, match="'n_neighbors' parameter.*Got 0 instead"):
        SimilarityStore.build(path, X, list("abcde"), n_neighbors=0)
    with pytest.raises(ValueError, match="'n_neighbors' parameter.*Got 65536 instead"):
        SimilarityStore.build(path, X, list("abcde"), n_neighbors=65536)
    with pytest.raises(ValueError, match="'batch_size' parameter.*Got 0 instead"):
        SimilarityStore.build(path, X, list("abcde"), batch_size=0)
    with pytest.raises(TypeError, match="'track_ids' parameter.*Got None instead"):
        SimilarityStore.build(path, X, None)
    assert not path.exists() and _tmp_files(path) == []

    SimilarityStore.build(path, X, list("abcde"), n_neighbors=2)
    with pytest.raises(FileNotFoundError, match="no-such.db"):
        SimilarityStore(tmp_path / "no-such.db")
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(ValueError, match="junk.db.*not a similarity store"):
        SimilarityStore(tmp_path / "junk.db")
    with SimilarityStore(path) as store:
        with pytest.raises(KeyError, match="'zz'"):
            store.similar("zz")
        with pytest.raises(KeyError, match="'zz'"):
            store.vector("zz")
        with pytest.raises(KeyError, match="7"):
            store.similar(7)
        with pytest.raises(ValueError, match="'k' parameter of SimilarityStore.similar.*Got -1"):
            store.similar("a", k=-1)
        with pytest.raises(TypeError, match="'k' parameter.*Got 'two'"):
            store.similar("a", k="two")
        with pytest.raises(ValueError, match="'k' parameter of SimilarityStore.recommend"):
            store.recommend(["a"], k=-2)
        with pytest.raises(ValueError, match="'exhaustive' parameter.*Got 'yes'"):
            store.recommend(["a"], exhaustive="yes")
        with pytest.raises(ValueError, match="read-only"):
            store.add(X[:1], ["f"])
    with pytest.raises(ValueError, match="closed"):
        store.similar("a")
    with pytest.raises(ValueError, match="'mode' parameter of SimilarityStore.__init__.*'w'"):
        SimilarityStore(path, mode="w")
    with SimilarityStore(path, mode="a") as store:
        with pytest.raises(ValueError, match="'batch_size' parameter of SimilarityStore.add"):
            store.add(X[:1], ["f"], batch_size=0)
        with pytest.raises(ValueError, match="3 dimensions but the store's vectors have 8"):
            store.add(np.ones((1, 3)), ["f"])
        with pytest.raises(ValueError, match="'c' \\(row 1\\) is already in"):
            store.add(X[:2], ["f", "c"])
        with pytest.raises(ValueError, match="row 1 contains a non-finite"):
            store.add(np.vstack([X[0], np.full(8, np.inf)]), ["f", "g"])
        with pytest.raises(TypeError, match="is int but the store's ids are str"):
            store.add(X[:1], [5])
        assert len(store) == 5 and list(store) == list("abcde")
    assert _tmp_files(path) == []


# --------------------------------------------------------------------------- #
# incremental add
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_add_equals_rebuild(tmp_path, rng, metric):
    X = _vectors(rng, 120)
    ids = [f"t{i:03d}" for i in range(120)]
    full = tmp_path / "full.db"
    SimilarityStore.build(full, X, ids, n_neighbors=6, metric=metric, algorithm="brute")
    inc = tmp_path / "inc.db"
    SimilarityStore.build(inc, X[:90], ids[:90], n_neighbors=6, metric=metric, algorithm="brute")
    with SimilarityStore(inc, mode="a") as store:
        store.add(X[90:110], ids[90:110], batch_size=17)
        store.add(X[110:111], ids[110:111])
        store.add(X[111:], ids[111:], batch_size=1000)
        assert len(store) == 120
    with SimilarityStore(full) as a, SimilarityStore(inc) as b:
        assert list(a) == list(b)
        for tid in ids:
            sa, sb = a.similar(tid), b.similar(tid)
            assert [t for t, _ in sa] == [t for t, _ in sb], tid
            np.testing.assert_allclose([s for _, s in sa], [s for _, s in sb], atol=1e-5)
            np.testing.assert_array_equal(a.vector(tid), b.vector(tid))


def test_add_to_tiny_store(tmp_path):
    """Lists shorter than n_neighbors fill up as tracks are added."""
    path = tmp_path / "t.db"
    SimilarityStore.build(path, [[1.0, 0.0]], [1], n_neighbors=3)
    with SimilarityStore(path, mode="a") as store:
        store.add([[0.0, 1.0]], [2])
        store.add([[1.0, 1.0], [1.0, 0.2]], [3, 4])
        assert [t for t, _ in store.similar(1)] == [4, 3, 2]
        assert [t for t, _ in store.similar(2)] == [3, 4, 1]
        assert [t for t, _ in store.similar(4)] == [1, 3, 2]


def test_refresh(tmp_path, rng):
    path = tmp_path / "tracks.db"
    SimilarityStore.build(path, _vectors(rng, 10), list(range(10)), n_neighbors=2)
    old = SimilarityStore(path)
    SimilarityStore.build(path, _vectors(rng, 12), list(range(12)), n_neighbors=2)
    # the open store keeps reading the file it opened
    assert len(old) == 10 and len(list(old)) == 10
    assert not old.refresh() or len(old) == 12
    assert len(old) == 12 and 11 in old
    assert not old.refresh()
    old.close()


def test_failed_build_cleans_up(tmp_path, rng, monkeypatch):
    path = tmp_path / "tracks.db"
    X = _vectors(rng, 50)
    SimilarityStore.build(path, X, list(range(50)), n_neighbors=3)
    before = SimilarityStore(path).similar(7)

    def failing(n, batch_size):
        yield 0, 10
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(store_write, "_row_batches", failing)
    with pytest.raises(OSError, match="disk full"):
        SimilarityStore.build(path, _vectors(rng, 50), list(range(50)), n_neighbors=3)
    assert _tmp_files(path) == []
    assert SimilarityStore(path).similar(7) == before


# --------------------------------------------------------------------------- #
# concurrency: readers during rebuilds, SIGKILL mid-build
# --------------------------------------------------------------------------- #
def _fork():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    return multiprocessing.get_context("fork")


def _reader(path, expected, started, stop, results, seed):
    """Query in a loop, reopening the store; every answer must be complete and
    equal to the answer of one of the published versions."""
    rng = np.random.default_rng(seed)
    n = len(expected[0])
    ok = errors = 0
    versions = set()
    messages = []
    long_lived = SimilarityStore(path)  # opened before any rebuild
    first = {i: long_lived.similar(i) for i in range(n)}
    started.set()
    while not stop.is_set():
        try:
            with SimilarityStore(path) as store:
                version = None
                for i in rng.integers(0, n, size=5):
                    got = tuple(t for t, _ in store.similar(int(i)))
                    matches = {v for v in range(len(expected)) if expected[v][i] == got}
                    if not matches or (version is not None and version not in matches):
                        raise AssertionError(f"track {i}: unexpected answer {got}")
                    version = matches.pop() if version is None else version
                versions.add(version)
                assert len(store) == n and store.vector(int(i)).shape == (8,)
            j = int(rng.integers(0, n))
            assert long_lived.similar(j) == first[j], "old inode changed"
            ok += 1
        except Exception as exc:  # report, don't die: the parent counts
            errors += 1
            if len(messages) < 3:
                messages.append(repr(exc))
    long_lived.close()
    results.put((ok, errors, sorted(versions), messages))


def test_readers_during_rebuilds(tmp_path, rng):
    ctx = _fork()
    n, k = 300, 5
    path = tmp_path / "tracks.db"
    data = [_vectors(rng, n), _vectors(rng, n)]
    expected = [[tuple(ids) for ids in _exact(X, k)[0]] for X in data]
    assert expected[0] != expected[1]
    SimilarityStore.build(path, data[0], list(range(n)), n_neighbors=k, algorithm="brute")
    started = [ctx.Event() for _ in range(8)]
    stop = ctx.Event()
    results = ctx.Queue()
    readers = [
        ctx.Process(target=_reader, args=(path, expected, started[r], stop, results, r))
        for r in range(8)
    ]
    for p in readers:
        p.start()
    try:
        for ev in started:
            assert ev.wait(60)
        for swap in range(6):
            SimilarityStore.build(
                path, data[(swap + 1) % 2], list(range(n)), n_neighbors=k, algorithm="brute"
            )
            time.sleep(0.1)
    finally:
        stop.set()
        out = [results.get(timeout=60) for _ in readers]
        for p in readers:
            p.join(timeout=60)
    assert all(p.exitcode == 0 for p in readers)
    assert sum(o[1] for o in out) == 0, [o[3] for o in out if o[1]]
    assert all(o[0] > 0 for o in out)
    seen = set().union(*(o[2] for o in out))
    assert seen == {0, 1}  # the readers did see the swaps
    assert _tmp_files(path) == []


def _killed_builder(path, X, writing):
    """Build, but stop for good after the first batch is written to the temp file."""
    original = store_write._row_batches

    def slow(n, batch_size):
        gen = original(n, batch_size)
        yield next(gen)
        writing.set()
        time.sleep(600)
        yield from gen

    store_write._row_batches = slow
    SimilarityStore.build(path, X, list(range(len(X))), n_neighbors=4, batch_size=50)


def test_sigkill_mid_build_leaves_old_store(tmp_path, rng):
    ctx = _fork()
    path = tmp_path / "tracks.db"
    X_old = _vectors(rng, 100)
    SimilarityStore.build(path, X_old, list(range(100)), n_neighbors=4)
    with SimilarityStore(path) as store:
        before = {i: store.similar(i) for i in range(100)}
    inode = os.stat(path).st_ino

    writing = ctx.Event()
    child = ctx.Process(target=_killed_builder, args=(path, _vectors(rng, 400), writing))
    child.start()
    try:
        assert writing.wait(60), "the build never started writing"
        leftovers = _tmp_files(path)
        assert len(leftovers) == 1 and str(child.pid) in leftovers[0]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    # the old store is untouched, readable and valid
    assert os.stat(path).st_ino == inode
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with SimilarityStore(path) as store:
        assert len(store) == 100
        assert {i: store.similar(i) for i in range(100)} == before
    # the dead build's temporary file is removed by the next build
    assert len(_tmp_files(path)) == 1
    SimilarityStore.build(path, X_old[:50], list(range(50)), n_neighbors=4)
    assert _tmp_files(path) == []
    assert len(SimilarityStore(path)) == 50
