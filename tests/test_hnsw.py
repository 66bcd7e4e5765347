"""NearestTracks(algorithm="hnsw"): recall against exact search, persistence."""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.neighbors import NearestNeighbors

from sklearn_music import NearestTracks

pytest.importorskip("hnswlib")


def _recall(approx, exact):
    k = exact.shape[1]
    return np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)])


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(2200, 32, centers=20, cluster_std=3.0, random_state=0)
    return X[:2000], y[:2000], X[2000:], y[2000:]


@pytest.fixture(scope="module")
def hnsw(blobs):
    X, y, _, _ = blobs
    return NearestTracks(algorithm="hnsw", random_state=0, n_jobs=1).fit(X, y)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_recall_against_exact(blobs, metric):
    X, _, Q, _ = blobs
    nn = NearestTracks(algorithm="hnsw", metric=metric, random_state=0, n_jobs=1).fit(X)
    assert nn.algorithm_ == "hnsw" and nn.vectors_.dtype == np.float32
    ref = NearestNeighbors(n_neighbors=10, metric=metric, algorithm="brute").fit(X)
    _, exact = ref.kneighbors(Q)
    d, i = nn.kneighbors(Q)
    assert _recall(i, exact) >= 0.99
    # distances: the exact ones of the tracks returned, increasing
    V = nn.vectors_.astype(np.float64)
    if metric == "cosine":
        Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        true = 1 - np.einsum("qd,qkd->qk", Qn, V[i])
    else:
        true = np.linalg.norm(V[i] - Q[:, None, :], axis=2)
    np.testing.assert_allclose(d, true, rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(d, axis=1) >= 0)
    # X=None: each fitted track against the others, never itself
    _, exact = ref.kneighbors()
    i = nn.kneighbors(return_distance=False)
    assert not np.any(i == np.arange(len(X))[:, None])
    assert _recall(i, exact) >= 0.99


def test_ef_is_a_query_time_breadth(blobs):
    X, _, Q, _ = blobs
    _, exact = NearestNeighbors(n_neighbors=20, metric="cosine").fit(X).kneighbors(Q)
    nn = NearestTracks(
        algorithm="hnsw", index_params={"M": 4, "ef_construction": 20}, random_state=0, n_jobs=1
    ).fit(X)
    low = _recall(nn.set_params(ef=1).kneighbors(Q, 20, return_distance=False), exact)
    high = _recall(nn.set_params(ef=200).kneighbors(Q, 20, return_distance=False), exact)
    assert high > low + 0.1 and high >= 0.95  # ef < k still returns k: at least k is used
    assert nn.index_.M == 4 and nn.index_.ef_construction == 20


def test_bad_index_params_and_metric(blobs):
    X = blobs[0][:100]
    with pytest.raises(ValueError, match="accepts only the keys .* not 'n_neighbors'"):
        NearestTracks(algorithm="hnsw", index_params={"n_neighbors": 5}).fit(X)
    with pytest.raises(ValueError, match="metric='manhattan'; use algorithm='nndescent'"):
        NearestTracks(algorithm="hnsw", metric="manhattan").fit(X)


def test_deterministic_with_a_seed(blobs, hnsw):
    X, y, Q, _ = blobs
    again = NearestTracks(algorithm="hnsw", random_state=0, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(again.kneighbors(Q)[1], hnsw.kneighbors(Q)[1])


def test_recommend_and_predict(blobs, hnsw):
    X, y, Q, yq = blobs
    exact = NearestTracks(algorithm="brute").fit(X, y)
    assert hnsw.score(Q, yq) == pytest.approx(exact.score(Q, yq), abs=0.02)
    recs = hnsw.recommend([[0, 1], [5]], n=5)
    ref = exact.recommend([[0, 1], [5]], n=5)
    for got, want in zip(recs, ref):
        assert len({t for t, _ in got} & {t for t, _ in want}) >= 4
        np.testing.assert_allclose(
            sorted(s for _, s in got)[-1], sorted(s for _, s in want)[-1], atol=1e-6
        )


def test_pickle_and_reload_from_a_memmap(tmp_path, blobs, hnsw):
    _, _, Q, _ = blobs
    d0, i0 = hnsw.kneighbors(Q)
    state = hnsw.__getstate__()
    assert set(state["index_"]) == {"hnswlib_state"}  # plain arrays and builtins
    loaded = pickle.loads(pickle.dumps(hnsw))
    d1, i1 = loaded.kneighbors(Q)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(d0, d1)
    joblib.dump(hnsw, tmp_path / "index.joblib")
    mapped = joblib.load(tmp_path / "index.joblib", mmap_mode="r")
    again = pickle.loads(pickle.dumps(mapped))
    for model in (mapped, again):
        d, i = model.kneighbors(Q)
        np.testing.assert_array_equal(i, i0)
        np.testing.assert_array_equal(d, d0)
    assert type(hnsw.index_).__name__ == "Index"  # pickling did not alter it


def test_skops_round_trip_needs_no_hnswlib_type(tmp_path, blobs, hnsw):
    import skops.io as sio

    from sklearn_music.persistence import load_model, save_model

    _, _, Q, _ = blobs
    path = save_model(hnsw, tmp_path / "index.skops")
    assert sio.get_untrusted_types(file=path) == ["sklearn_music._neighbors.NearestTracks"]
    loaded = load_model(path)
    d, i = loaded.kneighbors(Q)
    d0, i0 = hnsw.kneighbors(Q)
    np.testing.assert_array_equal(i, i0)
    np.testing.assert_array_equal(d, d0)
    assert loaded.algorithm_ == "hnsw" and loaded.ef == 50


def test_state_without_ef_loads_with_the_default(blobs, hnsw):
    """A NearestTracks pickled before ``ef`` existed (sklearn_music 0.1)."""
    state = hnsw.__getstate__()
    del state["ef"]
    old = NearestTracks.__new__(NearestTracks)
    old.__setstate__(state)
    assert old.ef == 50
    np.testing.assert_array_equal(old.kneighbors(blobs[2])[1], hnsw.kneighbors(blobs[2])[1])
