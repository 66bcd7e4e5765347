"""ImplicitFactors: weighted matrix factorisation of play counts (via implicit)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_music._factors import ImplicitFactors
from sklearn_music.datasets._listening import make_listening

N_GENRES, N_TRACKS = 4, 120


@pytest.fixture(scope="module")
def labels():
    genre = np.repeat([f"genre{g}" for g in range(N_GENRES)], N_TRACKS // N_GENRES)
    artist = np.array([f"{g}-artist{i % 3}" for i, g in enumerate(genre)])
    return {"genre": genre, "artist": artist}


@pytest.fixture(scope="module")
def listening(labels):
    return make_listening(labels, n_users=200, random_state=0)


@pytest.fixture(scope="module")
def fitted(listening):
    return ImplicitFactors(n_factors=8, random_state=0).fit(
        listening.plays, user_ids=listening.user_ids
    )


# ---------------------------------------------------------------- make_listening
def test_make_listening_shapes_and_tastes(listening, labels):
    plays = listening.plays
    assert sp.issparse(plays) and plays.shape == (200, N_TRACKS)
    assert plays.dtype.kind == "i" and plays.data.min() > 0
    assert (plays.getnnz(axis=1) > 0).all()
    assert listening.genre_taste.shape == (200, N_GENRES)
    assert listening.artist_taste.shape == (200, 12)
    assert listening.user_ids.shape == (200,)
    np.testing.assert_array_equal(listening.track_ids, np.arange(N_TRACKS))
    # users play their favourite genre far more than a uniform quarter of the time
    dense = plays.toarray()
    fav = np.array(
        [
            (dense[u] * (labels["genre"] == listening.favourite_genre[u])).sum() / dense[u].sum()
            for u in range(200)
        ]
    )
    assert fav.mean() > 0.6


def test_make_listening_is_seeded_and_accepts_labels(labels):
    a = make_listening(labels, n_users=20, random_state=3)
    b = make_listening(labels, n_users=20, random_state=3)
    assert (a.plays != b.plays).nnz == 0
    only_genre = make_listening(labels["genre"], n_users=20, random_state=3)
    assert only_genre.artist_taste.shape == (20, 0)
    assert only_genre.artist is None


def test_make_listening_popularity_skew_and_noise(labels):
    flat = make_listening(
        labels["genre"], n_users=300, genre_weight=0.0, popularity_skew=0.0, random_state=0
    )
    skewed = make_listening(
        labels["genre"], n_users=300, genre_weight=0.0, popularity_skew=1.5, random_state=0
    )

    def share(b):  # share of the plays that go to the 5 most played tracks
        per_track = np.asarray(b.plays.sum(axis=0)).ravel()
        return np.sort(per_track)[::-1][:5].sum() / per_track.sum()

    assert share(skewed) > 3 * share(flat)
    # pure noise: plays spread uniformly whatever the tastes
    noisy = make_listening(labels["genre"], n_users=300, noise=1.0, random_state=0)
    per_track = np.asarray(noisy.plays.sum(axis=0)).ravel()
    assert per_track.std() / per_track.mean() < 0.3


def test_make_listening_frame(labels):
    b = make_listening(labels, n_users=10, random_state=0, as_frame=True)
    assert list(b.frame.columns) == ["user_id", "track_id", "plays"]
    assert b.frame["plays"].sum() == b.plays.sum()


def test_make_listening_errors(labels):
    with pytest.raises(ValueError, match="no 'genre' field"):
        make_listening({"artist": labels["artist"]})
    with pytest.raises(ValueError, match="artist labels have shape"):
        make_listening({"genre": labels["genre"], "artist": labels["artist"][:5]})


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        (dict(n_users=0), "'n_users' parameter .* Got 0 instead"),
        (dict(n_plays=0.5), "'n_plays' parameter .* Got 0.5 instead"),
        (dict(noise=1.5), "'noise' parameter .* Got 1.5 instead"),
        (dict(genre_weight=-1.0), "'genre_weight' parameter .* Got -1.0 instead"),
        (dict(as_frame="yes"), "'as_frame' parameter .* Got 'yes' instead"),
    ],
)
def test_make_listening_invalid_params(labels, kwargs, bad):
    from sklearn_music.utils._sklearn_compat import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=bad):
        make_listening(labels, **kwargs)


# ------------------------------------------------------ recovered taste structure
def test_item_factors_cluster_by_genre(fitted, labels):
    factors = fitted.item_factors_
    assert factors.shape == (N_TRACKS, 8) and factors.dtype == np.float32
    chance = 1 / N_GENRES
    probe = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        factors,
        labels["genre"],
        cv=4,
    )
    knn = cross_val_score(KNeighborsClassifier(5, metric="cosine"), factors, labels["genre"], cv=4)
    assert probe.mean() > 0.9 > chance + 0.5
    assert knn.mean() > 0.9
    # artists (12 of them, chance 1/12) are recovered too, less cleanly
    artist_knn = cross_val_score(
        KNeighborsClassifier(5, metric="cosine"), factors, labels["artist"], cv=4
    )
    assert artist_knn.mean() > 0.5


def test_user_factors_predict_favourite_genre(fitted, listening):
    acc = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        fitted.user_factors_,
        listening.favourite_genre,
        cv=4,
    )
    assert acc.mean() > 0.7


def test_scores_reconstruct_plays(fitted, listening):
    """Played pairs score higher than unplayed ones (training AUC near 1)."""
    scores = fitted.user_factors_ @ fitted.item_factors_.T
    played = listening.plays.toarray() > 0
    assert scores[played].mean() > scores[~played].mean() + 0.3


def test_normalize_items(listening):
    model = ImplicitFactors(n_factors=8, normalize_items=True, random_state=0).fit(listening.plays)
    np.testing.assert_allclose(np.linalg.norm(model.item_factors_, axis=1), 1, rtol=1e-5)
    raw = ImplicitFactors(n_factors=8, random_state=0).fit(listening.plays)
    np.testing.assert_array_equal(model.user_factors_, raw.user_factors_)
    norms = np.linalg.norm(raw.item_factors_, axis=1, keepdims=True)
    np.testing.assert_allclose(model.item_factors_, raw.item_factors_ / norms, rtol=1e-5)


def test_matches_implicit_directly(listening):
    """The confidence 1 + alpha * plays is what implicit factorises."""
    log_model = ImplicitFactors(n_factors=4, iterations=2, random_state=0).fit(listening.plays)
    lin_model = ImplicitFactors(n_factors=4, iterations=2, random_state=0, scaling="linear").fit(
        listening.plays
    )
    assert not np.allclose(log_model.item_factors_, lin_model.item_factors_)
    from implicit.cpu.als import AlternatingLeastSquares

    model = ImplicitFactors(
        n_factors=4, alpha=10.0, scaling="linear", regularization=0.01, iterations=5, random_state=0
    ).fit(listening.plays)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    ref = AlternatingLeastSquares(
        factors=4, regularization=0.01, iterations=5, num_threads=1, random_state=int(seed)
    )
    conf = listening.plays.astype(np.float32)
    conf.data = 1 + 10.0 * conf.data
    ref.fit(conf, show_progress=False)
    np.testing.assert_allclose(model.item_factors_, ref.item_factors, rtol=1e-4, atol=1e-5)
    # the default log scaling: 1 + alpha * log(1 + plays)
    ref = AlternatingLeastSquares(
        factors=4, regularization=0.1, iterations=2, num_threads=1, random_state=int(seed)
    )
    conf.data = (1 + 10.0 * np.log1p(listening.plays.data.astype(np.float64))).astype(np.float32)
    ref.fit(conf, show_progress=False)
    np.testing.assert_allclose(log_model.item_factors_, ref.item_factors, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------- recommend
def test_recommend_excludes_seen_and_orders(fitted, listening):
    user = listening.user_ids[7]
    seen = set(listening.plays[7].indices.tolist())
    tracks, scores = fitted.recommend(user, n=20)
    assert len(tracks) == 20
    assert not seen & set(tracks.tolist())
    assert np.all(np.diff(scores) <= 0)
    # the scores are the dot products, and nothing unseen scores higher than the last
    full = fitted.item_factors_ @ fitted.user_factors_[7]
    np.testing.assert_allclose(scores, full[tracks], rtol=1e-6)
    unseen = np.setdiff1d(np.arange(N_TRACKS), list(seen))
    assert np.sort(full[unseen])[::-1][19] == pytest.approx(scores[-1])


def test_recommend_including_seen(fitted, listening):
    tracks, scores = fitted.recommend(listening.user_ids[7], n=N_TRACKS, exclude_seen=False)
    np.testing.assert_array_equal(np.sort(tracks), np.arange(N_TRACKS))
    tracks_few, _ = fitted.recommend(listening.user_ids[7], n=N_TRACKS)
    assert len(tracks_few) == N_TRACKS - listening.plays[7].nnz


def test_recommend_unknown_user(fitted):
    with pytest.raises(KeyError, match="user 'nobody' was not seen in fit"):
        fitted.recommend("nobody")
    with pytest.raises(ValueError, match=r"'n' parameter of ImplicitFactors.recommend .* Got 0"):
        fitted.recommend(fitted.user_ids_[0], n=0)
    with pytest.raises(TypeError, match=r"'n' parameter .* Got 2.5"):
        fitted.recommend(fitted.user_ids_[0], n=2.5)


def test_factor_lookups(fitted, listening):
    np.testing.assert_array_equal(fitted.item_factors_for([5, 2]), fitted.item_factors_[[5, 2]])
    np.testing.assert_array_equal(
        fitted.user_factors_for(listening.user_ids[[3]]), fitted.user_factors_[[3]]
    )
    with pytest.raises(KeyError, match="track 999"):
        fitted.item_factors_for([1, 999])


# --------------------------------------------------------------- determinism
def test_random_state_gives_identical_factors(listening):
    a = ImplicitFactors(n_factors=8, random_state=42).fit(listening.plays)
    b = ImplicitFactors(n_factors=8, random_state=42, n_jobs=2).fit(listening.plays)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    c = ImplicitFactors(n_factors=8, random_state=43).fit(listening.plays)
    assert not np.allclose(a.item_factors_, c.item_factors_)


# -------------------------------------------------------------- input forms
def test_input_forms_give_the_same_factors(listening):
    plays = listening.plays[:40]
    plays = plays[:, np.flatnonzero(plays.getnnz(axis=0))]
    users = [f"u{i}" for i in range(plays.shape[0])]
    tracks = [f"t{j:03d}" for j in range(plays.shape[1])]
    coo = plays.tocoo()
    history = {u: {} for u in users}
    for r, c, v in zip(coo.row, coo.col, coo.data):
        history[users[r]][tracks[c]] = int(v)
    frame = pd.DataFrame(
        {
            "user_id": [users[r] for r in coo.row],
            "track_id": [tracks[c] for c in coo.col],
            "plays": coo.data,
        }
    )
    params = dict(n_factors=4, random_state=0)
    from_matrix = ImplicitFactors(**params).fit(plays, user_ids=users, catalogue=tracks)
    from_dense = ImplicitFactors(**params).fit(plays.toarray(), user_ids=users, catalogue=tracks)
    from_history = ImplicitFactors(**params).fit(history)
    from_frame = ImplicitFactors(**params).fit(frame.sample(frac=1, random_state=0))
    for other in (from_dense, from_history):
        np.testing.assert_array_equal(other.track_ids_, tracks)
        np.testing.assert_array_equal(other.user_ids_, users)
        np.testing.assert_allclose(other.item_factors_, from_matrix.item_factors_, rtol=1e-5)
    # The shuffled frame lists its users in another order, so each user starts from
    # another random row and implicit's (3-step conjugate gradient) solves end
    # slightly elsewhere: compare through the ids, at the solver's precision.
    scale = np.abs(from_matrix.item_factors_).max()
    np.testing.assert_allclose(
        from_frame.item_factors_for(tracks), from_matrix.item_factors_, atol=1e-2 * scale
    )
    assert set(from_frame.user_ids_.tolist()) == set(users)


def test_zero_play_counts_are_no_plays():
    model = ImplicitFactors(n_factors=2, random_state=0).fit(
        {"ann": {"a": 2, "b": 0}, "bob": {"b": 1, "a": 1}}
    )
    assert model.user_items_[0].nnz == 1
    with pytest.raises(ValueError, match=r"user 'cid' \(row 1\)"):
        ImplicitFactors(n_factors=2).fit({"ann": {"a": 1}, "cid": {"a": 0}})


def test_history_lists_and_frame_without_plays():
    history = {"ann": ["a", "b", "b"], "bob": ["b", "c"], "cid": ["c", "a"]}
    model = ImplicitFactors(n_factors=2, random_state=0).fit(history)
    assert model.user_items_[0, 1] == 2  # a repeated id counts twice
    frame = pd.DataFrame(
        {
            "user_id": ["ann", "ann", "ann", "bob", "bob", "cid", "cid"],
            "track_id": ["a", "b", "b", "b", "c", "c", "a"],
        }
    )
    other = ImplicitFactors(n_factors=2, random_state=0).fit(frame)
    np.testing.assert_allclose(other.item_factors_, model.item_factors_, rtol=1e-5)


def test_transform_folds_in_users(fitted, listening):
    folded = fitted.transform(listening.plays[:10])
    assert folded.shape == (10, 8) and folded.dtype == np.float32
    # Fold-in solves the user step exactly (Cholesky) where fit stopped after a few
    # conjugate-gradient steps: its factors are close, and never worse on the loss.
    np.testing.assert_allclose(
        folded, fitted.user_factors_[:10], rtol=0.1, atol=0.1 * np.abs(folded).max()
    )
    items = fitted.item_factors_.astype(np.float64)
    plays = listening.plays[:10].toarray()
    assert fitted.scaling == "log"
    conf = 1 + fitted.alpha * np.log1p(plays)
    pref = (plays > 0).astype(float)

    def loss(x):
        fit_term = (conf * (pref - x @ items.T) ** 2).sum(axis=1)
        return fit_term + fitted.regularization * (x**2).sum(axis=1)

    fitted_loss = loss(fitted.user_factors_[:10].astype(np.float64))
    assert np.all(loss(folded.astype(np.float64)) <= fitted_loss * (1 + 1e-5))
    names = fitted.get_feature_names_out()
    assert names[0] == "implicitfactors0"


# ------------------------------------------------------------------ errors
def test_track_in_history_but_not_in_catalogue():
    history = {"ann": ["a", "b"], "bob": ["b", "zzz"]}
    msg = "track 'zzz' in the history of user 'bob' is not in the catalogue"
    with pytest.raises(ValueError, match=msg):
        ImplicitFactors(n_factors=2).fit(history, catalogue=["a", "b"])


def test_track_in_catalogue_but_never_played():
    history = {"ann": ["a", "b"], "bob": ["b"]}
    with pytest.raises(ValueError, match=r"never played, e.g. track 'c' \(column 2\)"):
        ImplicitFactors(n_factors=2).fit(history, catalogue=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"track 'y' \(column 1\)"):
        ImplicitFactors(n_factors=2).fit(np.array([[1, 0], [2, 0]]), catalogue=["x", "y"])


def test_user_without_plays():
    with pytest.raises(ValueError, match=r"user 'bob' \(row 1\)"):
        ImplicitFactors(n_factors=2).fit({"ann": ["a"], "bob": []})
    with pytest.raises(ValueError, match=r"user 'u1' \(row 1\)"):
        ImplicitFactors(n_factors=2).fit(np.array([[1, 2], [0, 0]]), user_ids=["u0", "u1"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="Negative values"):
        ImplicitFactors(n_factors=2).fit(np.array([[1, -2], [3, 1]]))
    with pytest.raises(ValueError, match="play count -1.0 of user 'ann' for track 'a'"):
        ImplicitFactors(n_factors=2).fit({"ann": {"a": -1, "b": 2}})
    with pytest.raises(ValueError, match="catalogue has 3 track ids but the play matrix has 2"):
        ImplicitFactors(n_factors=2).fit(np.ones((2, 2)), catalogue=["a", "b", "c"])
    with pytest.raises(ValueError, match="user_ids is only used with a play-count matrix"):
        ImplicitFactors(n_factors=2).fit({"ann": ["a"]}, user_ids=["ann"])
    with pytest.raises(ValueError, match="track id 'a' appears twice"):
        ImplicitFactors(n_factors=2).fit(np.ones((2, 2)), catalogue=["a", "a"])
    with pytest.raises(ValueError, match="history of user 'ann' must be a list"):
        ImplicitFactors(n_factors=2).fit({"ann": "abc"})


def test_transform_unknown_track(fitted):
    msg = "track 'nope' in the history of user 'x' is not in the catalogue"
    with pytest.raises(ValueError, match=msg):
        fitted.transform({"x": ["nope"]})
