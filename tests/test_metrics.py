"""Retrieval metrics against hand-computed cases and scikit-learn references."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_music.metrics import (
    average_precision,
    linear_probe_score,
    make_retrieval_scorer,
    mean_average_precision,
    precision_at_k,
    recall_at_k,
    retrieval_report,
)


# ---------------------------------------------------------- hand-computed cases
def test_precision_at_k_hand_computed():
    y_query = ["a", "b"]
    y_nbrs = [["a", "b", "a", "a"], ["a", "a", "b", "b"]]
    # query 0: a b a -> 2/3; query 1: a a b -> 1/3
    np.testing.assert_allclose(precision_at_k(y_query, y_nbrs, k=3, average=False), [2 / 3, 1 / 3])
    assert precision_at_k(y_query, y_nbrs, k=3) == pytest.approx(0.5)
    assert precision_at_k(y_query, y_nbrs, k=1) == pytest.approx(0.5)
    assert precision_at_k(y_query, y_nbrs, k=None) == pytest.approx((3 / 4 + 2 / 4) / 2)


def test_precision_groups_are_removed_before_the_cut():
    # the first neighbour shares the query's group (same artist): removed, then
    # the list is b, a, a -> P@2 = 1/2 (it would be 1/2 with the a b cut too, so
    # check P@1: without exclusion 1, with exclusion 0)
    kw = {"groups_query": ["g1"], "groups_neighbors": [["g1", "g2", "g3", "g4"]]}
    assert precision_at_k(["a"], [["a", "b", "a", "a"]], k=1) == 1.0
    assert precision_at_k(["a"], [["a", "b", "a", "a"]], k=1, **kw) == 0.0
    got = precision_at_k(["a"], [["a", "b", "a", "a"]], k=3, **kw)
    assert got == pytest.approx(2 / 3)
    # excluded entries in the middle keep the others' order
    kw = {"groups_query": [0], "groups_neighbors": [[1, 0, 0, 2]]}
    assert precision_at_k([5], [[5, 5, 5, 7]], k=2, **kw) == pytest.approx(1 / 2)


def test_precision_short_list_counts_missing_as_misses():
    # 2 neighbours left after exclusion, k=4: denominator stays k
    kw = {"groups_query": [0], "groups_neighbors": [[0, 0, 1, 2]]}
    assert precision_at_k([1], [[1, 1, 1, 1]], k=4, **kw) == pytest.approx(2 / 4)


def test_recall_at_k_hand_computed():
    assert recall_at_k([0], [[0, 1, 0, 0]], k=2) == pytest.approx(1 / 3)
    assert recall_at_k([0], [[0, 1, 0, 0]], k=4) == pytest.approx(1.0)
    assert recall_at_k([0], [[0, 1]], k=2, n_relevant=[4]) == pytest.approx(0.25)
    # no relevant track: 0
    assert recall_at_k([0], [[1, 1]], k=2) == 0.0
    with pytest.raises(ValueError, match=r"n_relevant\[0\]=1 is smaller than the 2"):
        recall_at_k([0], [[0, 0]], k=2, n_relevant=[1])


def test_average_precision_hand_computed():
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    np.testing.assert_allclose(
        average_precision([1, 1], [[1, 0, 1], [0, 0, 0]]), [(1 + 2 / 3) / 2, 0.0]
    )
    # 4 relevant tracks in the collection, 2 retrieved
    np.testing.assert_allclose(
        average_precision([1], [[1, 0, 1]], n_relevant=[4]), [(1 + 2 / 3) / 4]
    )
    # cut at k=2: only the first hit counts, R capped at k: 1 / min(2, 2)
    np.testing.assert_allclose(average_precision([1], [[1, 0, 1]], k=2), [0.5])
    # groups: the first hit is the query's own group -> list 0 1 -> 1/2 / 1
    np.testing.assert_allclose(
        average_precision([1], [[1, 0, 1]], groups_query=["x"], groups_neighbors=[["x", "y", "z"]]),
        [0.5],
    )
    assert mean_average_precision([1, 1], [[1, 0, 1], [0, 1, 0]]) == pytest.approx(
        ((1 + 2 / 3) / 2 + 1 / 2) / 2
    )


def test_average_precision_matches_sklearn_on_full_rankings(rng):
    n_queries, n = 20, 50
    y_query = rng.integers(0, 3, n_queries)
    y_nbrs = rng.integers(0, 3, (n_queries, n))
    y_nbrs[:, 0] = y_query  # at least one relevant track per query
    ours = average_precision(y_query, y_nbrs)
    scores = -np.arange(n)  # nearest first
    ref = [average_precision_score(y_nbrs[i] == y_query[i], scores) for i in range(n_queries)]
    np.testing.assert_allclose(ours, ref)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"y_query": [[0]], "y_neighbors": [[0]]}, "y_query must be 1-D"),
        ({"y_query": [0, 1], "y_neighbors": [[0]]}, r"y_neighbors must have shape"),
        ({"y_query": [0], "y_neighbors": [[0]], "groups_query": [0]}, "must be given together"),
        (
            {
                "y_query": [0],
                "y_neighbors": [[0, 1]],
                "groups_query": [0],
                "groups_neighbors": [[0]],
            },
            r"groups_neighbors has shape \(1, 1\)",
        ),
        (
            {"y_query": [0], "y_neighbors": [[0]], "k": 0},
            "k. parameter of precision_at_k must be an int.*Got 0 instead",
        ),
    ],
)
def test_bad_input_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        precision_at_k(**bad)


# ------------------------------------------------------------ retrieval_report
def test_retrieval_report_hand_computed():
    X = [[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.2]]
    y = ["a", "a", "b", "b"]
    assert retrieval_report(X, y, k=(1, 2)) == {"P@1": 1.0, "P@2": 0.5, "mAP": 1.0}
    # each track is its artist's only other track of its genre: with artist
    # exclusion nothing relevant is left
    report = retrieval_report(X, y, groups=["p", "p", "q", "q"], k=1)
    assert report == {"P@1": 0.0, "mAP": 0.0}


def test_retrieval_report_matches_sklearn_neighbours(rng):
    X = rng.normal(size=(60, 5))
    y = rng.integers(0, 3, 60)
    groups = rng.integers(0, 10, 60)
    report = retrieval_report(X, y, groups=groups, k=(1, 5), metric="euclidean")
    _, ind = NearestNeighbors(n_neighbors=59).fit(X).kneighbors()
    p1, p5, aps = [], [], []
    for i in range(60):
        keep = [j for j in ind[i] if groups[j] != groups[i]]
        rel = (y[keep] == y[i]).astype(float)
        p1.append(rel[0])
        p5.append(rel[:5].mean())
        hits = np.cumsum(rel)
        aps.append((hits / np.arange(1, len(rel) + 1) * rel).sum() / max(rel.sum(), 1))
    assert report["P@1"] == pytest.approx(np.mean(p1))
    assert report["P@5"] == pytest.approx(np.mean(p5))
    assert report["mAP"] == pytest.approx(np.mean(aps))


# --------------------------------------------------------------------- scorers
def _blobs(rng, n_per=15, n_classes=3, dim=4):
    y = np.repeat(np.arange(n_classes), n_per)
    X = rng.normal(size=(len(y), dim)) + 4 * np.eye(n_classes, dim)[y]
    return X, y


def test_scorer_on_a_nearest_tracks_pipeline(rng):
    from sklearn_music import NearestTracks

    X, y = _blobs(rng)
    X_test, y_test = _blobs(rng, n_per=4)
    pipe = Pipeline([("scale", StandardScaler()), ("nn", NearestTracks(n_neighbors=5))]).fit(X, y)
    ind = pipe[-1].kneighbors(pipe[0].transform(X_test), 3, return_distance=False)
    expected = precision_at_k(y_test, y[ind], k=3)
    assert make_retrieval_scorer("precision", k=3)(pipe, X_test, y_test) == expected
    # recall: 15 relevant fitted tracks per query
    expected = recall_at_k(y_test, y[ind], k=3, n_relevant=np.full(len(y_test), 15))
    assert make_retrieval_scorer("recall", k=3)(pipe, X_test, y_test) == expected
    # the estimator's own score is the precision at its n_neighbors
    ind5 = pipe[-1].kneighbors(pipe[0].transform(X_test), return_distance=False)
    expected = precision_at_k(y_test, y[ind5], k=5)
    assert pipe.score(X_test, y_test) == pytest.approx(expected)


def test_scorer_on_a_transformer_is_leave_one_out(rng):
    X, y = _blobs(rng)
    pca = PCA(n_components=2).fit(X)
    E = pca.transform(X)
    _, ind = NearestNeighbors(n_neighbors=4, metric="cosine").fit(E).kneighbors()
    expected = precision_at_k(y, y[ind], k=4)
    assert make_retrieval_scorer(k=4)(pca, X, y) == pytest.approx(expected)
    expected = mean_average_precision(y, y[ind], k=4, n_relevant=np.full(len(y), 14))
    got = make_retrieval_scorer("average_precision", k=4)(pca, X, y)
    assert got == pytest.approx(expected)


def test_scorer_in_grid_search(rng):
    X, y = _blobs(rng, dim=6)
    # noise columns hurt retrieval: keeping 3 informative components is better
    # than keeping all 6 ... or not; the search must pick the best mean score
    search = GridSearchCV(
        Pipeline([("pca", PCA()), ("scale", StandardScaler())]),
        {"pca__n_components": [1, 3]},
        scoring=make_retrieval_scorer(k=5),
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert search.best_params_["pca__n_components"] == [1, 3][int(np.argmax(means))]
    assert 0.0 <= means.min() <= means.max() <= 1.0


def test_grid_search_over_a_nearest_tracks_pipeline_with_group_folds(rng):
    from sklearn.model_selection import GroupKFold

    from sklearn_music import NearestTracks

    X, y = _blobs(rng, dim=6)
    artists = np.tile(np.arange(9), 5)
    pipe = Pipeline([("pca", PCA()), ("nn", NearestTracks(n_neighbors=3))])
    grid = {"pca__n_components": [1, 3], "nn__n_neighbors": [1, 5]}
    for scoring in (None, make_retrieval_scorer(k=3)):
        search = GridSearchCV(pipe, grid, scoring=scoring, cv=GroupKFold(3))
        search.fit(X, y, groups=artists)
        means = search.cv_results_["mean_test_score"]
        assert np.all((means >= 0) & (means <= 1))
        assert search.best_score_ == means.max()
    # the scorer's value on one split, by hand
    train, test = next(GroupKFold(3).split(X, y, artists))
    model = pipe.set_params(pca__n_components=3).fit(X[train], y[train])
    ind = model[-1].kneighbors(model[0].transform(X[test]), 3, return_distance=False)
    assert make_retrieval_scorer(k=3)(model, X[test], y[test]) == pytest.approx(
        precision_at_k(y[test], y[train][ind], k=3)
    )


class _LabelledNeighbors(NearestNeighbors):
    """scikit-learn's exact index, keeping the fitted labels as ``y_``."""

    def fit(self, X, y=None):
        super().fit(X)
        self.y_ = np.asarray(y)
        return self


def test_scorer_duck_types_on_kneighbors_and_fitted_labels(rng):
    from sklearn_music import NearestTracks

    X = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, 40)
    Q, y_q = X[:10] + 0.1, y[:10]
    scorer = make_retrieval_scorer("recall", k=5, metric="euclidean")
    ref = scorer(NearestTracks(metric="euclidean", algorithm="brute").fit(X, y), Q, y_q)
    assert scorer(_LabelledNeighbors(metric="euclidean").fit(X, y), Q, y_q) == ref
    with pytest.raises(AttributeError, match="has no y_"):
        scorer(NearestNeighbors().fit(X), Q, y_q)


def test_metrics_import_no_estimator():
    import subprocess
    import sys

    code = (
        "import sys, sklearn_music.metrics; "
        "print(sorted(m for m in sys.modules if m.startswith('sklearn_music._')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "_neighbors" not in out.stdout and "_embedder" not in out.stdout


def test_make_retrieval_scorer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'score' parameter .* Got 'ndcg' instead"):
        make_retrieval_scorer("ndcg")
    with pytest.raises(ValueError, match="'k' parameter .* Got None instead"):
        make_retrieval_scorer(k=None)


# ---------------------------------------------------------------- linear probe
def test_linear_probe_score_matches_manual_cross_validation(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = _blobs(rng)
    X = X + rng.normal(scale=2.0, size=X.shape)  # not perfectly separable
    scores = linear_probe_score(X, y, cv=3)
    ref = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), X, y, cv=3
    )
    np.testing.assert_allclose(scores, ref)
    groups = np.tile(np.arange(5), 9)
    assert linear_probe_score(X, y, cv=5, groups=groups).shape == (5,)
