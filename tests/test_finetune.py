"""Fine-tuning ConvEmbedder from the pretrained soundtracks-v1 trunk (``init=``,
``"auto"`` by default)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer
from sklearn_music._pretrained_weights import read_payload, trunk_state
from sklearn_music.datasets import make_tracks
from sklearn_music.persistence import load_model, save_model
from sklearn_music.pretrained import load

# the pretrained model's architecture (the defaults; before init="auto" the default
# embedding had 64 dimensions)
ARCH = dict(embedding_dim=128)


@pytest.fixture(scope="module")
def tracks():
    return make_tracks(16, n_genres=4, n_artists_per_genre=2, duration=4.0, random_state=0)


@pytest.fixture(scope="module")
def mels(tracks):
    return MelSpectrogramTransformer().fit_transform(tracks.data)


@pytest.fixture(scope="module")
def trunk():
    return trunk_state(read_payload("soundtracks-v1"))


def _tuned(**params):
    return ConvEmbedder(init="soundtracks-v1", **ARCH, n_jobs=1, random_state=0).set_params(
        **params
    )


def _trunk_of(est):
    state = est.net_.module_.state_dict()
    return {k: v for k, v in state.items() if k.startswith("encoder.")}


def test_starts_from_the_pretrained_weights(mels, tracks, trunk):
    est = _tuned(max_epochs=0).fit(mels, tracks.genre)
    got = _trunk_of(est)
    assert got.keys() == trunk.keys()
    for name, tensor in trunk.items():
        assert torch.equal(got[name], tensor), name
    # untrained: the embeddings are the pretrained model's
    expected = load("soundtracks-v1", n_jobs=1).transform(tracks.data)
    np.testing.assert_allclose(est.transform(mels), expected, rtol=1e-5, atol=1e-6)
    assert est.classes_.tolist() == sorted(set(tracks.genre))


def test_fine_tuning_changes_the_weights_from_near_the_pretrained_ones(mels, tracks, trunk):
    tuned = _trunk_of(_tuned(max_epochs=1).fit(mels, tracks.genre))
    scratch = _trunk_of(
        ConvEmbedder(**ARCH, init=None, max_epochs=1, n_jobs=1, random_state=0).fit(
            mels, tracks.genre
        )
    )
    for name in ("encoder.conv.1.weight", "encoder.fc.4.weight"):
        moved = float((tuned[name] - trunk[name]).norm() / trunk[name].norm())
        apart = float((scratch[name] - trunk[name]).norm() / trunk[name].norm())
        assert 0 < moved < 0.2, (name, moved)
        assert apart > 5 * moved, (name, moved, apart)


def test_reproducible_with_random_state(mels, tracks):
    a = _tuned(max_epochs=1).fit(mels, tracks.genre).transform(mels)
    b = _tuned(max_epochs=1).fit(mels, tracks.genre).transform(mels)
    np.testing.assert_array_equal(a, b)
    c = _tuned(max_epochs=1, random_state=1).fit(mels, tracks.genre).transform(mels)
    assert not np.allclose(a, c)


def test_pipeline_clone_and_grid_search(tracks):
    pipe = Pipeline([("mel", MelSpectrogramTransformer()), ("embed", _tuned(max_epochs=1))])
    assert clone(pipe).get_params()["embed__init"] == "soundtracks-v1"
    grid = GridSearchCV(pipe, {"embed__lr": [1e-4, 1e-3]}, cv=2, scoring="accuracy")
    grid.fit(tracks.data, tracks.genre)
    best = grid.best_estimator_
    assert best.transform(tracks.data[:3]).shape == (3, 128)
    assert best.predict(tracks.data[:3]).shape == (3,)
    assert best[-1].init == "soundtracks-v1"


def test_architecture_must_be_the_pretrained_one(mels, tracks):
    est = ConvEmbedder(init="soundtracks-v1", embedding_dim=64, max_epochs=1)
    with pytest.raises(ValueError, match=r"embedding_dim=128 \(got 64\)"):
        est.fit(mels, tracks.genre)
    assert not hasattr(est, "net_")  # fit left it unfitted
    with pytest.raises(ValueError, match="n_filters=64 .got 32."):
        _tuned(n_filters=32).fit(mels, tracks.genre)
    with pytest.raises(ValueError, match="X has 64 mel bands"):
        _tuned().fit([m[:64] for m in mels], tracks.genre)


def test_persistence_round_trips(mels, tracks, tmp_path):
    est = _tuned(max_epochs=1).fit(mels, tracks.genre)
    expected = est.transform(mels)
    again = pickle.loads(pickle.dumps(est))
    assert again.init == "soundtracks-v1"
    np.testing.assert_array_equal(again.transform(mels), expected)
    path = save_model(est, tmp_path / "tuned.skops")
    np.testing.assert_array_equal(load_model(path).transform(mels), expected)
    # a model pickled before ``init`` existed loads with init=None
    state = est.__getstate__()
    del state["init"], state["init_"]
    old = ConvEmbedder.__new__(ConvEmbedder)
    old.__setstate__(state)
    assert old.init is None and old.get_params()["init"] is None and old.init_ is None
    np.testing.assert_array_equal(old.transform(mels), expected)
    # ... and one pickled before ``init_`` existed started from its ``init``
    state = est.__getstate__()
    del state["init_"]
    old = ConvEmbedder.__new__(ConvEmbedder)
    old.__setstate__(state)
    assert old.init_ == "soundtracks-v1"
    # an unfitted one stays unfitted
    fresh = ConvEmbedder.__new__(ConvEmbedder)
    fresh.__setstate__({k: v for k, v in ConvEmbedder().__getstate__().items()})
    assert not hasattr(fresh, "init_")


def test_auto_is_the_pretrained_start_when_data_and_architecture_fit(mels, tracks, trunk):
    auto = ConvEmbedder(n_jobs=1, random_state=0, max_epochs=0).fit(mels, tracks.genre)
    assert auto.init == "auto" and auto.init_ == "soundtracks-v1"
    got = _trunk_of(auto)
    assert all(torch.equal(got[k], v) for k, v in trunk.items())
    # trained: the same weights as naming the model
    a = ConvEmbedder(n_jobs=1, random_state=0, max_epochs=1).fit(mels, tracks.genre)
    b = _tuned(max_epochs=1).fit(mels, tracks.genre)
    assert b.init_ == "soundtracks-v1"
    np.testing.assert_array_equal(a.transform(mels), b.transform(mels))
    # without labels too
    ssl = ConvEmbedder(n_jobs=1, random_state=0, max_epochs=0).fit(mels)
    assert ssl.init_ == "soundtracks-v1"
    np.testing.assert_array_equal(ssl.mean_, auto.mean_)


@pytest.mark.parametrize(
    "params, bands",
    [({}, 64), ({"embedding_dim": 64}, 128), ({"n_filters": 32}, 128), ({"init": None}, 128)],
)
def test_auto_falls_back_to_random_weights(mels, tracks, trunk, params, bands):
    X = [m[:bands] for m in mels]
    est = ConvEmbedder(n_jobs=1, random_state=0, max_epochs=0).set_params(**params)
    est.fit(X, tracks.genre)
    assert est.init_ is None
    # its own band statistics, not the pretrained model's
    frames = np.concatenate(X, axis=1).astype(np.float64)
    np.testing.assert_allclose(est.mean_, frames.mean(axis=1), rtol=1e-5)
    if bands == 128 and "n_filters" not in params:
        name = "encoder.conv.1.weight"
        assert not torch.equal(_trunk_of(est)[name], trunk[name])
