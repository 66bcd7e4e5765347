"""Cold-start evaluation: the split holds whole tracks out; the metrics; audio -> factors."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from sklearn_music.coldstart import cold_start_split, evaluate_cold_start
from sklearn_music.utils._sklearn_compat import InvalidParameterError


# ------------------------------------------------------------------ the split
@pytest.fixture
def plays(rng):
    dense = rng.poisson(0.4, size=(30, 50)) * (rng.random((30, 50)) < 0.5)
    return sp.csr_matrix(dense)


def test_split_holds_whole_tracks_out(plays):
    train, test, train_tracks, test_tracks, users = cold_start_split(
        plays, test_size=0.2, random_state=0
    )
    assert len(test_tracks) == 10 and len(train_tracks) == 40
    assert not set(train_tracks) & set(test_tracks)
    np.testing.assert_array_equal(np.sort(np.r_[train_tracks, test_tracks]), np.arange(50))
    assert np.all(np.diff(train_tracks) > 0) and np.all(np.diff(test_tracks) > 0)
    np.testing.assert_array_equal(users, np.arange(30))  # every user has a training play
    # no play of a held-out track is in the training matrix, and nothing is lost
    np.testing.assert_array_equal(train.toarray(), plays.toarray()[:, train_tracks])
    np.testing.assert_array_equal(test.toarray(), plays.toarray()[:, test_tracks])
    assert train.sum() + test.sum() == plays.sum()
    assert sp.issparse(train) and sp.issparse(test)


def test_split_sizes_seed_and_dense_input(plays):
    a = cold_start_split(plays, test_size=7, random_state=1)
    b = cold_start_split(plays.toarray(), test_size=7, random_state=1)
    assert len(a[3]) == 7
    for x, z in zip(a[2:], b[2:]):
        np.testing.assert_array_equal(x, z)
    c = cold_start_split(plays, test_size=7, random_state=2)
    assert not np.array_equal(a[3], c[3])


def test_split_drops_users_and_tracks_without_training_plays():
    # which tracks are held out depends on the number of tracks and the seed only
    held_out = cold_start_split(np.ones((2, 10)), test_size=3, random_state=0)[3]
    kept_out = np.setdiff1d(np.arange(10), held_out)
    plays = np.zeros((5, 10), dtype=int)
    plays[:3, kept_out[1:]] = 1  # users 0-2 play every training track but kept_out[0]
    plays[0, held_out] = 2
    plays[1, held_out[0]] = 1
    plays[3, held_out[0]] = 4  # user 3 plays a held-out track only; user 4 nothing
    coo = sp.coo_matrix(plays)
    # an explicitly stored zero (user 2, track kept_out[0]) is no play
    X = sp.csr_matrix(
        (np.r_[coo.data, 0], (np.r_[coo.row, 2], np.r_[coo.col, kept_out[0]])), shape=(5, 10)
    )
    assert X.nnz == np.count_nonzero(plays) + 1
    train, test, train_tracks, test_tracks, users = cold_start_split(X, test_size=3, random_state=0)
    np.testing.assert_array_equal(users, [0, 1, 2])
    np.testing.assert_array_equal(train_tracks, kept_out[1:])
    np.testing.assert_array_equal(test_tracks, held_out)  # kept as drawn, played or not
    np.testing.assert_array_equal(train.toarray(), plays[np.ix_(users, train_tracks)])
    np.testing.assert_array_equal(test.toarray(), plays[np.ix_(users, test_tracks)])
    assert (train.getnnz(axis=0) > 0).all() and (train.getnnz(axis=1) > 0).all()
    assert X.nnz == np.count_nonzero(plays) + 1  # the input is left as it was


def test_split_without_any_training_play():
    held_out = cold_start_split(np.ones((3, 4)), test_size=1, random_state=0)[3]
    plays = np.zeros((3, 4))
    plays[:, held_out] = 1  # only the held-out track is played
    with pytest.raises(ValueError, match="no user played any of the 3 training tracks"):
        cold_start_split(plays, test_size=1, random_state=0)


@pytest.mark.parametrize("test_size", [50, 0.001])
def test_split_errors(plays, test_size):
    with pytest.raises(ValueError, match=f"test_size={test_size} holds out"):
        cold_start_split(plays, test_size=test_size)


@pytest.mark.parametrize("test_size", [0, 1.0, -3, "half"])
def test_split_invalid_test_size(plays, test_size):
    with pytest.raises(InvalidParameterError, match=rf"'test_size' .* Got {test_size!r}"):
        cold_start_split(plays, test_size=test_size)


def test_factors_fitted_on_the_split_never_see_held_out_tracks():
    from sklearn_music._factors import ImplicitFactors
    from sklearn_music.datasets._listening import make_listening

    listening = make_listening(np.repeat(["a", "b"], 20), n_users=60, random_state=0)
    train, _, train_tracks, test_tracks, users = cold_start_split(
        listening.plays, test_size=0.25, random_state=0
    )
    model = ImplicitFactors(n_factors=4, random_state=0).fit(
        train,
        catalogue=listening.track_ids[train_tracks],
        user_ids=listening.user_ids[users],
    )
    assert model.item_factors_.shape[0] == len(train_tracks)
    assert model.user_factors_.shape[0] == len(users)
    with pytest.raises(KeyError, match="track"):
        model.item_factors_for(listening.track_ids[test_tracks[:1]])


# ---------------------------------------------------------------- the metrics
def _ap_at_k_by_hand(scores, relevant, k):
    order = sorted(range(len(scores)), key=lambda j: -scores[j])[:k]
    hits, total = 0, 0.0
    for i, j in enumerate(order, start=1):
        if relevant[j]:
            hits += 1
            total += hits / i
    return total / min(k, sum(relevant))


def test_metrics_on_a_hand_computed_case():
    # one user, 5 held-out tracks, scores 5 > 4 > 3 > 2 > 1 on tracks 0..4
    users = np.array([[1.0]])
    items = np.array([[5.0], [4.0], [3.0], [2.0], [1.0]])
    plays = np.array([[0, 2, 0, 1, 0]])  # relevant at ranks 2 and 4
    res = evaluate_cold_start(users, items, plays, k=500)
    assert res["map_at_k"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    # positives (4, 2) vs negatives (5, 3, 1): 4>3, 4>1, 2>1 -> 3 of 6 pairs
    assert res["auc"] == pytest.approx(3 / 6)
    # cut at k=2: only the hit at rank 2 counts, divided by min(k, 2) = 2
    assert evaluate_cold_start(users, items, plays, k=2)["map_at_k"] == pytest.approx(0.25)
    # cut at k=1: no hit
    assert evaluate_cold_start(users, items, plays, k=1)["map_at_k"] == 0.0


def test_metrics_match_references_on_random_data(rng):
    users = rng.normal(size=(25, 6))
    items = rng.normal(size=(40, 6))
    plays = rng.poisson(0.3, size=(25, 40))
    plays[0] = 0  # a user who played none of the held-out tracks is left out
    plays[1] = 1  # one who played all: in the mAP, not in the AUC
    res = evaluate_cold_start(users, items, sp.csr_matrix(plays), k=10)
    scores = users @ items.T
    rel = plays > 0
    aps = [_ap_at_k_by_hand(scores[u], rel[u], 10) for u in range(25) if rel[u].any()]
    aucs = [roc_auc_score(rel[u], scores[u]) for u in range(25) if 0 < rel[u].sum() < 40]
    assert res["n_users"] == len(aps) == 24
    assert res["n_users_auc"] == len(aucs) == 23
    assert res["map_at_k"] == pytest.approx(np.mean(aps))
    assert res["auc"] == pytest.approx(np.mean(aucs))
    assert res["k"] == 10


def test_auc_counts_ties_as_half():
    users = np.array([[1.0]])
    items = np.array([[1.0], [1.0], [0.0]])
    res = evaluate_cold_start(users, items, np.array([[1, 0, 0]]))
    assert res["auc"] == pytest.approx(roc_auc_score([1, 0, 0], [1.0, 1.0, 0.0])) == 0.75


def test_perfect_and_reversed_rankings():
    users = np.eye(3)
    plays = np.array([[4, 0, 0], [0, 1, 0], [0, 0, 2]])
    best = evaluate_cold_start(users, np.eye(3), plays)
    assert best["map_at_k"] == 1.0 and best["auc"] == 1.0
    worst = evaluate_cold_start(users, -np.eye(3), plays)
    assert worst["auc"] == 0.0


def test_metric_errors():
    with pytest.raises(ValueError, match="user_factors have 2 factors but item_factors 3"):
        evaluate_cold_start(np.ones((2, 2)), np.ones((4, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"test_plays has shape \(2, 5\)"):
        evaluate_cold_start(np.ones((2, 2)), np.ones((4, 2)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="no user played any"):
        evaluate_cold_start(np.ones((2, 2)), np.ones((4, 2)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        evaluate_cold_start(np.ones((1, 2)), np.ones((2, 2)), np.array([[1, -1]]))
    with pytest.raises(InvalidParameterError, match="'k' parameter .* Got 0 instead"):
        evaluate_cold_start(np.ones((1, 2)), np.ones((2, 2)), np.array([[1, 0]]), k=0)


# ------------------------------------------------- audio -> factors, end to end
@pytest.fixture(scope="module")
def cold_start_results():
    """The four methods of van den Oord et al. on one small synthetic split.

    300 synthetic 4-s clips (4 genres x 3 artists), 500 simulated listeners with genre
    and artist tastes, 25 % of the tracks held out. About 30 s on one core.
    """
    import torch
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_music import (
        ConvEmbedder,
        ImplicitFactors,
        MelSpectrogramTransformer,
        MFCCStatistics,
    )
    from sklearn_music.datasets import make_tracks
    from sklearn_music.datasets._listening import make_listening

    torch.set_num_threads(1)
    tracks = make_tracks(300, duration=4.0, random_state=0)
    listening = make_listening(tracks, 500, random_state=0)
    train, test, tr, te, users = cold_start_split(listening.plays, test_size=0.25, random_state=0)
    wmf = dict(n_factors=16, normalize_items=True, random_state=0)
    full = ImplicitFactors(**wmf).fit(listening.plays[users])
    model = ImplicitFactors(**wmf).fit(train)
    users, factors = model.user_factors_, model.item_factors_

    mfcc = MFCCStatistics().fit_transform(tracks.data)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12)))
    ridge.fit(mfcc[tr], factors)

    specs = MelSpectrogramTransformer(n_mels=64).fit_transform(tracks.data)
    cnn = ConvEmbedder(
        embedding_dim=32,
        n_filters=32,
        patch_frames=64,
        hidden_units=(128,),
        pooling=("mean", "max"),
        weight_decay=1e-3,
        max_epochs=40,
        random_state=0,
    )
    cnn.fit(specs[tr], factors.astype(np.float64))
    predicted = cnn.predict(specs[te])
    assert predicted.shape == (len(te), 16)

    rng = np.random.default_rng(0)
    return {
        "true": evaluate_cold_start(full.user_factors_, full.item_factors_[te], test),
        "random": evaluate_cold_start(users, rng.standard_normal((len(te), 16)), test),
        "mfcc": evaluate_cold_start(users, ridge.predict(mfcc[te]), test),
        "cnn": evaluate_cold_start(users, predicted, test),
    }


@pytest.mark.slow
def test_true_factors_are_the_upper_bound(cold_start_results):
    res = cold_start_results
    assert res["true"]["auc"] > 0.85
    for method in ("random", "mfcc", "cnn"):
        assert res["true"]["auc"] > res[method]["auc"]
        assert res["true"]["map_at_k"] > res[method]["map_at_k"]
    assert abs(res["random"]["auc"] - 0.5) < 0.05


@pytest.mark.slow
def test_audio_to_factors_beats_mfcc_and_random(cold_start_results):
    # measured: MFCC mAP 0.377 / AUC 0.767, CNN 0.434 / 0.790, random 0.171 / 0.507
    res = cold_start_results
    assert res["mfcc"]["auc"] > res["random"]["auc"] + 0.1
    assert res["cnn"]["auc"] > res["mfcc"]["auc"] + 0.01
    assert res["cnn"]["map_at_k"] > res["mfcc"]["map_at_k"] + 0.01
