"""The blocked exact search against sklearn's exact NearestNeighbors."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

from sklearn_music import NearestTracks, _exact
from sklearn_music._exact import chunked_kneighbors, exact_kneighbors, rank_candidates

# small blocks, so that every edge case of the blocking is reached on small data
BLOCKS = {"block_queries": 7, "block_fitted": 10}


@pytest.fixture(autouse=True)
def no_small_search_shortcut(monkeypatch):
    """Small data here: run the threads and BLAS limits that large searches use."""
    monkeypatch.setattr(_exact, "_SMALL_WORK", 0)


def _data(rng, metric, dtype, n=103, n_queries=31, dim=6):
    X = rng.normal(size=(n, dim))
    Q = rng.normal(size=(n_queries, dim))
    if metric == "cosine":
        X, Q = normalize(X), normalize(Q)
    return X.astype(dtype), Q.astype(dtype)


def _stable_reference(D, k):
    """Row-wise k smallest of a distance matrix, the smaller column first at ties."""
    cols = np.broadcast_to(np.arange(D.shape[1]), D.shape)
    order = np.lexsort((cols, D), axis=-1)[:, :k]
    return np.take_along_axis(D, order, axis=1), order


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 5, 25, 103])  # 25 > block_fitted; 103 = n_fitted
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_matches_sklearn_float64(rng, metric, k, n_jobs):
    X, Q = _data(rng, metric, np.float64)  # 103 rows: not a multiple of the blocks
    d, i = exact_kneighbors(Q, X, k, metric=metric, n_jobs=n_jobs, **BLOCKS)
    rd, ri = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(X).kneighbors(Q)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_allclose(d, rd, rtol=1e-10, atol=1e-10)
    assert d.dtype == np.float64 and i.dtype == np.intp


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 10, 103])
def test_float32_matches_sklearn_on_the_same_values(rng, metric, k):
    """float32 products; the ranking is that of the exact distances of the float32 values."""
    X, Q = _data(rng, metric, np.float32)
    d, i = exact_kneighbors(Q, X, k, metric=metric, n_jobs=2, **BLOCKS)
    ref = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute")
    rd, ri = ref.fit(X.astype(np.float64)).kneighbors(Q.astype(np.float64))
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_allclose(d, rd, atol=1e-6)
    # and sklearn's own float32 search agrees on the distances
    rd32, _ = ref.fit(X).kneighbors(Q)
    np.testing.assert_allclose(d, rd32, atol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_exclude_self_matches_sklearn(rng, metric, n_jobs):
    X, _ = _data(rng, metric, np.float64)
    for k in (3, 102):  # 102: every other track
        d, i = exact_kneighbors(X, X, k, metric=metric, exclude_self=True, n_jobs=n_jobs, **BLOCKS)
        ref = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(X)
        rd, ri = ref.kneighbors()
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_allclose(d, rd, atol=1e-10)
    with pytest.raises(ValueError, match="n_neighbors=103 must be between 1 and 102"):
        exact_kneighbors(X, X, 103, metric=metric, exclude_self=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ties_smaller_row_first(rng, dtype, n_jobs):
    """Small integer vectors: many exactly equal distances, ranked by row number."""
    X = rng.integers(0, 3, size=(203, 3)).astype(dtype)  # at most 27 distinct rows
    Q = rng.integers(0, 3, size=(40, 3)).astype(dtype)
    D = np.sqrt(((Q[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(axis=2))
    for k in (1, 10, 60, 203):  # tie groups cut by k, and spanning several blocks
        d, i = exact_kneighbors(Q, X, k, metric="euclidean", n_jobs=n_jobs, **BLOCKS)
        rd, ri = _stable_reference(D, k)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_array_equal(d, rd)
    # cosine: duplicated unit vectors are exact ties too
    U = normalize(rng.normal(size=(5, 4))).astype(dtype)
    X = U[rng.integers(0, 5, size=150)]
    Dc = 1.0 - X[:20].astype(np.float64) @ X.astype(np.float64).T
    d, i = exact_kneighbors(X[:20], X, 40, metric="cosine", n_jobs=n_jobs, **BLOCKS)
    _, ri = _stable_reference(np.round(Dc, 12), 40)
    np.testing.assert_array_equal(i, ri)


def test_results_do_not_depend_on_blocks_or_threads(rng):
    X, Q = _data(rng, "cosine", np.float32, n=1000, n_queries=64, dim=8)
    ref = exact_kneighbors(Q, X, 15, n_jobs=1, block_queries=512, block_fitted=4096)
    for bq, bf, n_jobs in [(1, 1, 1), (3, 17, 2), (64, 1000, 2), (100, 999, -1)]:
        d, i = exact_kneighbors(Q, X, 15, n_jobs=n_jobs, block_queries=bq, block_fitted=bf)
        np.testing.assert_array_equal(i, ref[1])
        np.testing.assert_array_equal(d, ref[0])


def test_no_queries_and_bad_metric(rng):
    X, Q = _data(rng, "cosine", np.float64)
    d, i = exact_kneighbors(Q[:0], X, 4)
    assert d.shape == (0, 4) and i.shape == (0, 4)
    with pytest.raises(ValueError, match="metric='manhattan' is not supported"):
        exact_kneighbors(Q, X, 4, metric="manhattan")


def test_rank_candidates_puts_missing_last(rng):
    X, Q = _data(rng, "euclidean", np.float64, n=20, n_queries=2)
    ind = np.array([[3, -1, 5, 7], [-1, -1, 2, 2]])
    d, i = rank_candidates(Q, X, ind, metric="euclidean", k=4)
    assert i[0, -1] == -1 and np.isinf(d[0, -1])
    np.testing.assert_array_equal(i[1], [2, 2, -1, -1])
    np.testing.assert_allclose(d[0, :3], np.sort(np.linalg.norm(X[[3, 5, 7]] - Q[0], axis=1)))


def test_chunked_manhattan_matches_sklearn_and_breaks_ties_by_row(rng):
    X = rng.integers(0, 3, size=(150, 3)).astype(np.float64)
    Q = rng.integers(0, 3, size=(20, 3)).astype(np.float64)
    d, i = chunked_kneighbors(Q, X, 30, metric="manhattan")
    rd, ri = _stable_reference(np.abs(Q[:, None, :] - X[None]).sum(axis=2), 30)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)
    d, i = chunked_kneighbors(X, X, 5, metric="manhattan", exclude_self=True)
    assert not np.any(i == np.arange(150)[:, None])


def test_blas_threads_are_restored(rng):
    from threadpoolctl import threadpool_info

    before = [info["num_threads"] for info in threadpool_info()]
    X, Q = _data(rng, "cosine", np.float32, n=500, n_queries=20)
    for n_jobs in (1, 2):
        exact_kneighbors(Q, X, 5, n_jobs=n_jobs)
    assert [info["num_threads"] for info in threadpool_info()] == before


def test_nearest_tracks_brute_uses_it(rng):
    X, Q = _data(rng, "cosine", np.float32, n=5000, n_queries=50, dim=16)
    nn = NearestTracks(n_neighbors=10, algorithm="brute", n_jobs=2).fit(X)
    d, i = nn.kneighbors(Q)
    rd, ri = exact_kneighbors(normalize(Q), nn.vectors_, 10, n_jobs=1)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_allclose(d, rd, atol=1e-12)
