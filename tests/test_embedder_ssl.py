"""ConvEmbedder without labels (contrastive training) and with a contrastive term."""

import pickle

import numpy as np
import pytest

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer
from sklearn_music.datasets import make_tracks

SMALL = dict(
    embedding_dim=16,
    n_filters=16,
    hidden_units=(32,),
    dropout=0.0,
    patch_frames=24,
    patches_per_track=8,
    batch_size=16,
    max_epochs=6,
    lr=3e-3,
    n_jobs=1,
    random_state=0,
)


@pytest.fixture(scope="module")
def specs():
    """Log-mel spectrograms of 24 synthetic tracks of 6 s (188 frames, 32 bands)."""
    tracks = make_tracks(24, n_genres=4, n_artists_per_genre=3, duration=6.0, random_state=0)
    mel = MelSpectrogramTransformer(n_mels=32).fit_transform(tracks.data)
    return mel.astype(np.float32), tracks.genre


@pytest.fixture(scope="module")
def fitted(specs):
    X, _ = specs
    return ConvEmbedder(**SMALL).fit(X)


def _halves(X):
    """First and second half (non-overlapping) of every track, as separate tracks."""
    mid = X.shape[2] // 2
    return X[:, :, :mid], X[:, :, mid:]


def _own_half_rank(emb_a, emb_b):
    """Fraction of first halves whose most similar second half (cosine) is their own,
    and the mean same-track minus mean other-track cosine similarity."""
    a = emb_a / np.linalg.norm(emb_a, axis=1, keepdims=True)
    b = emb_b / np.linalg.norm(emb_b, axis=1, keepdims=True)
    sim = a @ b.T
    top1 = float(np.mean(sim.argmax(axis=1) == np.arange(len(sim))))
    off = ~np.eye(len(sim), dtype=bool)
    return top1, float(np.diag(sim).mean() - sim[off].mean())


def test_fit_without_y_places_patches_of_a_track_together(specs, fitted):
    X, _ = specs
    first, second = _halves(X)
    top1, gap = _own_half_rank(fitted.transform(first), fitted.transform(second))
    # 24 candidates: chance of top-1 is 1/24
    assert top1 >= 0.6
    assert gap > 0.3
    # training is what does it: the same network untrained is worse
    untrained = ConvEmbedder(**(SMALL | {"max_epochs": 0})).fit(X)
    top1_0, gap_0 = _own_half_rank(untrained.transform(first), untrained.transform(second))
    assert gap > gap_0 + 0.1


def test_fit_without_y_has_no_targets_and_no_predict(specs, fitted):
    X, _ = specs
    assert fitted.targets_ == []
    assert not hasattr(fitted, "classes_")
    assert fitted.transform(X).shape == (len(X), 16)
    with pytest.raises(ValueError, match="fitted without y"):
        fitted.predict(X)
    losses = fitted.net_.history[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_fit_without_y_is_reproducible(specs, fitted):
    X, _ = specs
    again = ConvEmbedder(**SMALL).fit(X)
    np.testing.assert_array_equal(again.transform(X[:4]), fitted.transform(X[:4]))
    other = ConvEmbedder(**(SMALL | {"random_state": 1})).fit(X)
    assert not np.allclose(other.transform(X[:4]), fitted.transform(X[:4]))


def test_fit_without_y_pickles(specs, fitted):
    X, _ = specs
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.transform(X[:3]), fitted.transform(X[:3]))
    keys = set(loaded.net_.module_.state_dict())
    assert any(k.startswith("projection.") for k in keys)
    assert not any(k.startswith("augment.") for k in keys)  # buffers not saved


def test_augment_false_differs(specs, fitted):
    X, _ = specs
    plain = ConvEmbedder(**(SMALL | {"augment": False, "max_epochs": 1})).fit(X)
    assert plain.net_.module_.augment is None
    assert fitted.net_.module_.augment is not None


def test_contrastive_term_with_labels(specs):
    X, genre = specs
    params = SMALL | {"max_epochs": 2}
    sup = ConvEmbedder(**params).fit(X, genre)
    both = ConvEmbedder(**(params | {"contrastive_weight": 0.5})).fit(X, genre)
    assert sup.net_.module_.projection is None
    assert both.net_.module_.projection is not None
    assert list(both.classes_) == sorted(set(genre))
    assert both.predict(X).shape == (len(X),)
    assert not np.allclose(sup.transform(X[:3]), both.transform(X[:3]))
    # the supervised net is the one of contrastive_weight=0: no extra parameters
    assert "contrastive_weight" not in sup._net_init


def test_contrastive_term_with_validation_reports_valid_loss(specs):
    X, genre = specs
    est = ConvEmbedder(
        **(SMALL | {"max_epochs": 2, "contrastive_weight": 1.0, "validation_fraction": 0.25})
    ).fit(X, genre)
    assert np.isfinite(est.net_.history[-1, "valid_loss"])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"aggregate": "gru"}, "needs aggregate='mean'"),
        ({"validation_fraction": 0.2}, "needs targets"),
    ],
)
def test_fit_without_y_rejects(specs, params, match):
    X, _ = specs
    with pytest.raises(ValueError, match=match):
        ConvEmbedder(**(SMALL | params)).fit(X)


@pytest.mark.parametrize(
    "params", [{"contrastive_weight": -1.0}, {"temperature": 0.0}, {"augment": "yes"}]
)
def test_contrastive_parameters_are_validated(specs, params):
    from sklearn.utils._param_validation import InvalidParameterError

    X, _ = specs
    with pytest.raises(InvalidParameterError):
        ConvEmbedder(**(SMALL | params)).fit(X)


def test_saved_contrastive_parameters_are_checked_on_load(fitted):
    from sklearn_music._net import _net_init_problem

    n_weights = sum(v.numel() for v in fitted.net_.module_.state_dict().values())
    assert _net_init_problem(fitted._net_init, n_weights) is None
    bad = dict(fitted._net_init, module__augment={"mean": [0.0], "scale": [1.0]})
    assert "32 finite numbers" in _net_init_problem(bad, n_weights)
    bad = dict(fitted._net_init, temperature=-1.0)
    assert "positive number" in _net_init_problem(bad, n_weights)
    partial = {k: v for k, v in fitted._net_init.items() if k != "temperature"}
    assert "lacks ['temperature']" in _net_init_problem(partial, n_weights)
