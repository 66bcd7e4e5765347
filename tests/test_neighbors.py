"""NearestTracks against sklearn's exact NearestNeighbors, and its own behaviour."""

import pickle

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_blobs
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_music import NearestTracks
from sklearn_music.metrics import precision_at_k


def _recall(approx, exact):
    k = exact.shape[1]
    return np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)])


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def blobs():
    """Clustered data: 2000 fitted tracks and 200 queries, 32 dims, 20 clusters."""
    X, y = make_blobs(2200, 32, centers=20, cluster_std=3.0, random_state=0)
    return X[:2000], y[:2000], X[2000:], y[2000:]


@pytest.fixture(scope="module")
def approx(blobs):
    """The approximate index, built once (numba compiles pynndescent on first use)."""
    X, y, _, _ = blobs
    return NearestTracks(algorithm="nndescent", random_state=0, n_jobs=1).fit(X, y)


# ------------------------------------------------------ exact search: identical
@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan"])
def test_brute_matches_sklearn(rng, metric):
    X = rng.normal(size=(120, 6))
    Q = rng.normal(size=(15, 6))
    nn = NearestTracks(n_neighbors=7, metric=metric, algorithm="brute").fit(X)
    ref = NearestNeighbors(n_neighbors=7, metric=metric, algorithm="brute").fit(X)
    for query in (Q, None):  # None: each fitted track against the others
        d, i = nn.kneighbors(query)
        rd, ri = ref.kneighbors(query)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_allclose(d, rd, atol=1e-6)
    assert nn.algorithm_ == "brute"


def test_x_none_excludes_the_track_itself_even_with_duplicates(rng):
    X = rng.normal(size=(30, 4))
    X[1] = X[0]  # a duplicate: track 0's nearest other track is 1, at distance 0
    nn = NearestTracks(n_neighbors=3, algorithm="brute").fit(X)
    d, i = nn.kneighbors()
    assert not np.any(i == np.arange(30)[:, None])
    assert i[0, 0] == 1 and i[1, 0] == 0 and d[0, 0] == pytest.approx(0.0)
    # an explicit query is not a fitted track: the track itself may be returned
    d, i = nn.kneighbors(X[:2], 1)
    np.testing.assert_allclose(d[:, 0], 0.0, atol=1e-12)
    assert set(i[:, 0].tolist()) <= {0, 1}


def test_kneighbors_graph_matches_sklearn(rng):
    X = rng.normal(size=(50, 5))
    nn = NearestTracks(n_neighbors=4, algorithm="brute").fit(X)
    ref = NearestNeighbors(n_neighbors=4, metric="cosine").fit(X)
    for mode in ("connectivity", "distance"):
        for query in (None, X[:7]):
            g = nn.kneighbors_graph(query, mode=mode)
            r = ref.kneighbors_graph(query, mode=mode)
            assert g.shape == r.shape
            np.testing.assert_allclose(g.toarray(), r.toarray(), atol=1e-6)
    with pytest.raises(ValueError, match="mode='weights' is not supported"):
        nn.kneighbors_graph(mode="weights")


def test_n_neighbors_too_large_names_the_numbers(rng):
    nn = NearestTracks(n_neighbors=5, algorithm="brute").fit(rng.normal(size=(5, 3)))
    nn.kneighbors(rng.normal(size=(2, 3)))  # 5 of 5: fine
    with pytest.raises(ValueError, match="n_neighbors=5 is larger than the 4 fitted"):
        nn.kneighbors()
    with pytest.raises(ValueError, match="n_neighbors=0 must be a positive"):
        nn.kneighbors(n_neighbors=0)


def test_auto_picks_by_size(rng):
    X = rng.normal(size=(40, 3))
    # at most brute_threshold fitted tracks: exact search
    nn = NearestTracks(brute_threshold=40).fit(X)
    assert nn.algorithm_ == "brute" and isinstance(nn.index_, np.ndarray)
    assert NearestTracks().fit(X).algorithm_ == "brute"  # default threshold 10000
    # one more than the threshold: the approximate index
    nn = NearestTracks(brute_threshold=39, random_state=0, n_jobs=1).fit(X)
    # whether or not hnswlib is installed: the fitted model does not depend on it
    assert nn.algorithm_ == "nndescent"
    # hnswlib has no Manhattan distance
    nn = NearestTracks(metric="manhattan", brute_threshold=39, random_state=0, n_jobs=1).fit(X)
    assert nn.algorithm_ == "nndescent"
    assert type(nn.index_).__name__ == "NNDescent"
    assert NearestTracks(brute_threshold=39).get_params()["algorithm"] == "auto"


@pytest.mark.parametrize("algorithm", ["brute", "nndescent"])
def test_vectors_are_normalised_here_for_cosine(rng, algorithm):
    X = rng.normal(size=(60, 5)) * rng.uniform(0.1, 10.0, size=(60, 1))
    X_before = X.copy()
    cos = NearestTracks(algorithm=algorithm, random_state=0, n_jobs=1).fit(X)
    ref = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert cos.vectors_.shape == X.shape
    np.testing.assert_allclose(cos.vectors_, ref, rtol=1e-6)
    assert cos.vectors_.dtype == (np.float64 if algorithm == "brute" else np.float32)
    np.testing.assert_array_equal(X, X_before)
    # the reported distances are 1 - cos computed from vectors_
    d, i = cos.kneighbors(X[:5], 4)
    true = 1 - np.einsum("qd,qkd->qk", ref[:5], ref[i])
    np.testing.assert_allclose(d, true, atol=1e-6)
    # other metrics keep the vectors as fitted
    euc = NearestTracks(metric="euclidean", algorithm=algorithm, random_state=0).fit(X)
    np.testing.assert_allclose(euc.vectors_, X, rtol=1e-6)


def test_nndescent_state_saved_without_vectors_loads(blobs, approx):
    """A state as sklearn_music 0.1 pickled it: an NNDescent index, no vectors_."""
    _, _, Q, _ = blobs
    state = approx.__getstate__()
    del state["vectors_"]
    old = NearestTracks.__new__(NearestTracks)
    old.__setstate__(state)
    np.testing.assert_allclose(old.vectors_, approx.vectors_, atol=1e-7)
    d0, i0 = approx.kneighbors(Q)
    d1, i1 = old.kneighbors(Q)
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_allclose(d1, d0, atol=1e-6)


# ------------------------------------------------------- approximate: recall
def test_nndescent_recall_against_exact(blobs, approx):
    X, _, Q, _ = blobs
    ref = NearestNeighbors(n_neighbors=10, metric="cosine", algorithm="brute").fit(X)
    assert approx.algorithm_ == "nndescent"
    _, exact = ref.kneighbors(Q)
    d, i = approx.kneighbors(Q)
    assert _recall(i, exact) >= 0.95
    # distances are the true cosine distances of the returned tracks, sorted
    true = 1 - np.sum(
        (Q / np.linalg.norm(Q, axis=1, keepdims=True))[:, None, :]
        * (X / np.linalg.norm(X, axis=1, keepdims=True))[i],
        axis=2,
    )
    np.testing.assert_allclose(d, true, atol=1e-5)
    assert np.all(np.diff(d, axis=1) >= -1e-6)
    # X=None: each fitted track against the others
    _, exact = ref.kneighbors()
    i = approx.kneighbors(return_distance=False)
    assert not np.any(i == np.arange(len(X))[:, None])
    assert _recall(i, exact) >= 0.95


def test_nndescent_is_deterministic_with_a_seed(blobs, approx):
    X, y, Q, _ = blobs
    again = NearestTracks(algorithm="nndescent", random_state=0, n_jobs=1).fit(X, y)
    d0, i0 = approx.kneighbors(Q)
    d1, i1 = again.kneighbors(Q)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(d0, d1)


def test_index_params_reach_pynndescent(blobs):
    X = blobs[0][:300]
    nn = NearestTracks(
        algorithm="nndescent", index_params={"n_neighbors": 12}, random_state=0, n_jobs=1
    ).fit(X)
    assert nn.index_.n_neighbors == 12
    with pytest.raises(ValueError, match="index_params may not set 'metric'"):
        NearestTracks(algorithm="nndescent", index_params={"metric": "l1"}).fit(X)


# ------------------------------------------------------- predict and score
def test_predict_majority_with_ties_to_the_nearest():
    X = np.array([[0.0], [1.0], [3.0], [10.0]])
    nn = NearestTracks(n_neighbors=2, metric="euclidean").fit(X, ["a", "b", "b", "c"])
    # query 0.4: neighbours 0 (a), 1 (b) -> tie, the nearest's label a
    # query 2.5: neighbours 2 (b), 1 (b) -> b; query 9: 3 (c), 2 (b) -> c
    assert nn.predict([[0.4], [2.5], [9.0]]).tolist() == ["a", "b", "c"]
    nn3 = NearestTracks(n_neighbors=3, metric="euclidean").fit(X, ["a", "b", "b", "c"])
    assert nn3.predict([[0.4]]).tolist() == ["b"]


def test_score_is_precision_at_k_of_the_fitted_labels(blobs):
    X, y, Q, yq = blobs
    nn = NearestTracks(n_neighbors=5, algorithm="brute").fit(X, y)
    ind = nn.kneighbors(Q, return_distance=False)
    assert nn.score(Q, yq) == pytest.approx(precision_at_k(yq, y[ind], k=5))
    # hand case: 2 of the 2 neighbours of query 0, 1 of 2 of query 1
    small = NearestTracks(n_neighbors=2, metric="euclidean").fit(
        [[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 0]
    )
    assert small.score([[0.5], [5.5]], [0, 1]) == pytest.approx((1 + 0.5) / 2)


def test_unlabelled_fit_has_no_predict(rng):
    nn = NearestTracks(n_neighbors=2).fit(rng.normal(size=(10, 3)))
    with pytest.raises(AttributeError, match="fitted without y"):
        nn.predict(rng.normal(size=(1, 3)))


def test_cross_val_score_ranks_pipelines_by_retrieval(blobs):
    X, y, _, _ = blobs
    X, y = X[:300], y[:300]
    pipe = Pipeline([("scale", StandardScaler()), ("nn", NearestTracks(n_neighbors=5))])
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.8)  # well-separated clusters
    noisy = np.random.default_rng(0).permutation(y)  # labels unrelated to X
    assert cross_val_score(pipe, X, noisy, cv=3).mean() < scores.mean() - 0.3


# ----------------------------------------------------------------- recommend
@pytest.fixture
def catalogue():
    X = np.array([[1.0, 0.0], [0.95, 0.1], [0.9, 0.3], [0.0, 1.0], [0.1, 0.95], [-1.0, 0.2]])
    ids = np.array(["t0", "t1", "t2", "t3", "t4", "t5"])
    return X, ids


@pytest.mark.parametrize("algorithm", ["brute", "nndescent"])
def test_recommend_mean_profile(catalogue, algorithm):
    X, ids = catalogue
    nn = NearestTracks(algorithm=algorithm, random_state=0, n_jobs=1).fit(X, track_ids=ids)
    (recs,) = nn.recommend(["t0", "t3"], n=10)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    profile = U[[0, 3]].mean(axis=0)
    cos = U @ profile / np.linalg.norm(profile)
    expected = [(ids[j], cos[j]) for j in np.argsort(-cos) if j not in (0, 3)]
    assert [t for t, _ in recs] == [t for t, _ in expected]  # history excluded
    np.testing.assert_allclose([s for _, s in recs], [s for _, s in expected], atol=1e-6)
    scores = [s for _, s in recs]
    assert scores == sorted(scores, reverse=True)


def test_recommend_several_users_max_and_history(catalogue):
    X, ids = catalogue
    nn = NearestTracks().fit(X, track_ids=ids)
    users = [["t0"], ["t3", "t4"]]
    recs = nn.recommend(users, n=2)
    assert [[t for t, _ in r] for r in recs] == [["t1", "t2"], ["t2", "t1"]]
    # "max": each track's best similarity to any history track
    recs = nn.recommend([["t0", "t5"]], n=2, aggregate="max")
    assert [t for t, _ in recs[0]] == ["t1", "t2"]
    # history kept when asked
    (recs,) = nn.recommend(["t0"], n=1, exclude_history=False)
    assert recs[0][0] == "t0" and recs[0][1] == pytest.approx(1.0)
    # fewer tracks left than n
    (recs,) = nn.recommend(["t0", "t1", "t2", "t3"], n=10)
    assert sorted(t for t, _ in recs) == ["t4", "t5"]


def test_recommend_unknown_track_is_named(catalogue):
    X, ids = catalogue
    nn = NearestTracks().fit(X, track_ids=ids)
    with pytest.raises(KeyError, match="unknown track id 'nope' in the history of user 1"):
        nn.recommend([["t0"], ["t1", "nope"]])
    with pytest.raises(TypeError, match="got the string 't0'"):
        nn.recommend("t0")


def test_track_ids_must_match_and_be_unique(rng):
    X = rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match=r"track_ids has shape \(3,\); expected \(4,\)"):
        NearestTracks().fit(X, track_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="'a' appears 2 times"):
        NearestTracks().fit(X, track_ids=["a", "b", "a", "c"])
    assert NearestTracks().fit(X).track_ids_.tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------ metadata routing
def test_track_ids_are_routed_through_a_pipeline(rng):
    X = rng.normal(size=(12, 3))
    ids = np.array([f"id{i}" for i in range(12)])
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("scale", StandardScaler()),
                ("nn", NearestTracks(n_neighbors=2).set_fit_request(track_ids=True)),
            ]
        )
        pipe.fit(X, track_ids=ids)
        np.testing.assert_array_equal(pipe[-1].track_ids_, ids)
        # without the request, routing refuses the unrequested metadata
        unrequested = Pipeline([("scale", StandardScaler()), ("nn", NearestTracks())])
        with pytest.raises(Exception, match="track_ids"):
            unrequested.fit(X, track_ids=ids)
    # the classic step__param form works without routing
    pipe = Pipeline([("scale", StandardScaler()), ("nn", NearestTracks(n_neighbors=2))])
    pipe.fit(X, nn__track_ids=ids)
    assert pipe[-1].recommend(["id0"], n=1)[0][0][0] in ids


# ------------------------------------------------------------------ pickling
def test_pickle_brute(rng):
    X = rng.normal(size=(20, 3))
    nn = NearestTracks(n_neighbors=3).fit(
        X, rng.integers(0, 2, 20), track_ids=[f"t{i}" for i in range(20)]
    )
    loaded = pickle.loads(pickle.dumps(nn))
    np.testing.assert_array_equal(loaded.kneighbors()[1], nn.kneighbors()[1])
    assert loaded.recommend(["t0"], n=3) == nn.recommend(["t0"], n=3)
    assert loaded.index_.flags.writeable


def test_pickle_nndescent_and_reload_from_a_memmap(tmp_path, blobs, approx):
    _, _, Q, _ = blobs
    d0, i0 = approx.kneighbors(Q)
    loaded = pickle.loads(pickle.dumps(approx))
    d1, i1 = loaded.kneighbors(Q)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(d0, d1)
    # joblib memory-maps the arrays read-only; pickling such an NNDescent
    # crashes pynndescent 0.7.0, so NearestTracks copies arrays on load
    joblib.dump(approx, tmp_path / "index.joblib")
    mapped = joblib.load(tmp_path / "index.joblib", mmap_mode="r")
    again = pickle.loads(pickle.dumps(mapped))
    for model in (mapped, again):
        d, i = model.kneighbors(Q)
        np.testing.assert_array_equal(i, i0)
        np.testing.assert_array_equal(d, d0)
    assert again.recommend([0, 1], n=3) == approx.recommend([0, 1], n=3)
    # the estimator itself still holds its NNDescent (pickling did not alter it)
    assert type(approx.index_).__name__ == "NNDescent"


def test_skops_round_trip_needs_no_pynndescent_type(tmp_path, blobs, approx):
    import skops.io as sio

    from sklearn_music.persistence import load_model, save_model

    path = save_model(approx, tmp_path / "index.skops")
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == ["sklearn_music._neighbors.NearestTracks"]
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.kneighbors(blobs[2])[1], approx.kneighbors(blobs[2])[1])
