"""Tests of ConvEmbedder: shapes, determinism, every target kind, pipelines."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_music import ConvEmbedder
from sklearn_music._patches import _crop, _fixed_offsets

N_MELS = 16
CLASSES = np.array(["ambient", "folk", "rock"])
# tiny and fast: all the tests share these
TINY = dict(
    embedding_dim=8,
    n_filters=8,
    hidden_units=(16,),
    dropout=0.1,
    patch_frames=16,
    patch_hop=8,
    patches_per_track=4,
    max_epochs=8,
    lr=1e-2,
    random_state=0,
)


def _planted(n_tracks, seed, min_frames=10, max_frames=60):
    """Noise spectrograms of random lengths; each class lights up its own 4 bands
    in short bursts, and a float target (2 columns) scales two other bands."""
    rng = np.random.default_rng(seed)
    y = CLASSES[np.arange(n_tracks) % len(CLASSES)]
    rng.shuffle(y)
    factors = rng.uniform(-1.0, 1.0, size=(n_tracks, 2))
    X = []
    for i in range(n_tracks):
        n_frames = int(rng.integers(min_frames, max_frames + 1))
        spec = rng.normal(size=(N_MELS, n_frames)).astype(np.float32)
        k = int(np.flatnonzero(CLASSES == y[i])[0])
        bursts = rng.random(n_frames) < 0.5
        spec[4 * k : 4 * k + 4, bursts] += 2.0
        spec[12] += 1.5 * factors[i, 0]
        spec[13] += 1.5 * factors[i, 1]
        X.append(spec)
    return X, y, factors


@pytest.fixture(scope="module")
def train_data():
    return _planted(48, seed=1)


@pytest.fixture(scope="module")
def test_data():
    return _planted(30, seed=2)


@pytest.fixture(scope="module")
def fitted(train_data):
    X, y, _ = train_data
    return ConvEmbedder(**TINY).fit(X, y)


def _losses(est):
    return np.asarray(est.net_.history[:, "train_loss"])


# ------------------------------------------------------------------ shapes & basics
def test_transform_shape_and_names(fitted, test_data):
    X, _, _ = test_data
    Z = fitted.transform(X)
    assert Z.shape == (len(X), TINY["embedding_dim"])
    assert Z.dtype == np.float32
    assert np.isfinite(Z).all()
    names = fitted.get_feature_names_out()
    assert list(names) == [f"convembedder{i}" for i in range(TINY["embedding_dim"])]
    assert fitted.n_features_in_ == N_MELS
    df = clone(fitted).set_params(max_epochs=1).set_output(transform="pandas")
    out = df.fit(X, test_data[1]).transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)


def test_input_forms_agree(fitted, test_data):
    # a 3-D array, a list, a tuple and a 1-D object array of equal-length tracks
    X = np.stack([x[:, :10] for x in test_data[0]])
    Z = fitted.transform(X)
    obj = np.empty(len(X), dtype=object)
    obj[:] = list(X)
    for form in (list(X), tuple(X), obj):
        np.testing.assert_allclose(fitted.transform(form), Z, rtol=1e-5, atol=1e-6)


def test_normalisation_learned_in_fit(fitted, train_data):
    frames = np.concatenate(train_data[0], axis=1).astype(np.float64)
    np.testing.assert_allclose(fitted.mean_, frames.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted.scale_, frames.std(axis=1), rtol=1e-5)


def test_transform_is_mean_of_patch_embeddings(fitted, test_data):
    """Reference: run the bare torch encoder on the hop-spaced patches by hand."""
    import torch

    X = test_data[0][:5]
    encoder = fitted.net_.module_.encoder.eval()
    expected = []
    for spec in X:
        norm = (spec - fitted.mean_[:, None]) / fitted.scale_[:, None]
        offsets = _fixed_offsets(norm.shape[1], TINY["patch_frames"], TINY["patch_hop"])
        patches = np.stack([_crop(norm, o, TINY["patch_frames"], "wrap") for o in offsets])
        with torch.no_grad():
            expected.append(encoder(torch.from_numpy(patches)).numpy().mean(axis=0))
    np.testing.assert_allclose(fitted.transform(X), np.array(expected), rtol=1e-4, atol=1e-5)


def test_patch_offsets_cover_the_track():
    assert _fixed_offsets(10, 16, 8) == [0]  # short track: one padded patch
    assert _fixed_offsets(16, 16, 8) == [0]
    assert _fixed_offsets(40, 16, 8) == [0, 8, 16, 24]
    assert _fixed_offsets(41, 16, 8) == [0, 8, 16, 24, 25]  # last patch ends the track
    spec = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(_crop(spec, 0, 7, "wrap")[0], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(_crop(spec, 0, 5, "constant")[1], [3, 4, 5, 0, 0])


# ------------------------------------------------------------------ determinism
def test_same_random_state_same_embeddings(fitted, train_data, test_data):
    X, y, _ = train_data
    again = ConvEmbedder(**TINY).fit(X, y)
    np.testing.assert_array_equal(_losses(again), _losses(fitted))
    np.testing.assert_array_equal(again.transform(test_data[0]), fitted.transform(test_data[0]))
    other = ConvEmbedder(**{**TINY, "random_state": 1}).fit(X, y)
    assert not np.array_equal(other.transform(test_data[0]), fitted.transform(test_data[0]))


def test_fit_does_not_change_global_torch_seed(train_data):
    import torch

    X, y, _ = train_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ConvEmbedder(**{**TINY, "max_epochs": 1}).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


# ------------------------------------------------------------------ every target kind
def test_classification_learns(fitted, test_data):
    losses = _losses(fitted)
    assert losses[-1] < 0.7 * losses[0]
    X, y, _ = test_data
    assert set(fitted.classes_) == set(CLASSES)
    pred = fitted.predict(X)
    assert pred.dtype.kind in "UO"  # string labels come back as strings
    assert np.mean(pred == y) > 0.6  # chance is 1/3
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), len(CLASSES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(fitted.classes_[proba.argmax(axis=1)], pred)


def test_regression_learns(train_data, test_data):
    X, _, factors = train_data
    est = ConvEmbedder(**TINY).fit(X, factors)
    losses = _losses(est)
    assert losses[-1] < 0.7 * losses[0]
    assert not hasattr(est, "classes_")
    Xt, _, ft = test_data
    pred = est.predict(Xt)
    assert pred.shape == ft.shape
    for j in range(2):
        assert np.corrcoef(pred[:, j], ft[:, j])[0, 1] > 0.5
    with pytest.raises(ValueError, match="regression target"):
        est.predict_proba(Xt)


@pytest.mark.parametrize("container", ["dict", "dataframe"])
def test_multi_target(train_data, test_data, container):
    X, y, factors = train_data
    if container == "dict":
        targets = {"genre": y, "factors": factors}
        kinds = ["class", "regression"]
    else:
        targets = pd.DataFrame({"genre": y, "f0": factors[:, 0], "f1": factors[:, 1]})
        kinds = ["class", "regression", "regression"]
    params = {**TINY, "max_epochs": 12, "target_weights": {"genre": 2.0}}
    est = ConvEmbedder(**params).fit(X, targets)
    assert [t["kind"] for t in est.targets_] == kinds
    assert est.targets_[0]["weight"] == 2.0 and est.targets_[1]["weight"] == 1.0
    assert len(est.net_.module_.heads) == len(kinds)
    losses = _losses(est)
    assert losses[-1] < 0.7 * losses[0]
    Xt, yt, ft = test_data
    assert np.mean(est.predict(Xt) == yt) > 0.6
    second = "factors" if container == "dict" else "f0"
    est2 = clone(est).set_params(predict_target=second).fit(X, targets)
    pred = est2.predict(Xt)
    assert pred.shape == ((len(Xt), 2) if container == "dict" else (len(Xt),))
    pred = pred.reshape(len(Xt), -1)
    corr = [np.corrcoef(pred[:, j], ft[:, j])[0, 1] for j in range(pred.shape[1])]
    assert np.mean(corr) > 0.3  # random predictions: 0 +- 0.18


def test_gru_aggregate_learns(train_data, test_data):
    X, y, _ = train_data
    est = ConvEmbedder(**TINY, aggregate="gru", sequence_length=3).fit(X, y)
    losses = _losses(est)
    assert losses[-1] < 0.7 * losses[0]
    Xt, yt, _ = test_data
    assert est.transform(Xt).shape == (len(Xt), TINY["embedding_dim"])
    assert np.mean(est.predict(Xt) == yt) > 0.5


# ------------------------------------------------------------------ lengths
def test_variable_and_short_tracks(fitted):
    rng = np.random.default_rng(0)
    lengths = [1, 3, 15, 16, 17, 100]  # shorter, equal and longer than a patch
    X = [rng.normal(size=(N_MELS, n)).astype(np.float32) for n in lengths]
    Z = fitted.transform(X)
    assert Z.shape == (len(lengths), TINY["embedding_dim"])
    assert np.isfinite(Z).all()
    # each track is embedded on its own: the result does not depend on its batch
    np.testing.assert_allclose(fitted.transform(X[::-1])[::-1], Z, rtol=1e-4, atol=1e-5)
    # a one-frame track repeated ("wrap") is the same as a constant patch
    const = np.repeat(X[0], TINY["patch_frames"], axis=1)
    np.testing.assert_allclose(fitted.transform([const]), Z[:1], rtol=1e-4, atol=1e-5)


def test_fit_on_tracks_shorter_than_a_patch(train_data, test_data):
    X, y, _ = train_data
    short = [x[:, :5] for x in X]
    for pad_mode in ("wrap", "constant"):
        est = ConvEmbedder(**{**TINY, "max_epochs": 2}, pad_mode=pad_mode).fit(short, y)
        assert est.transform(test_data[0]).shape == (30, TINY["embedding_dim"])


def test_two_dimensional_X_is_single_frames(fitted):
    rng = np.random.default_rng(0)
    X2 = rng.normal(size=(4, N_MELS))
    np.testing.assert_allclose(fitted.transform(X2), fitted.transform(X2[:, :, None]), rtol=1e-6)


# ------------------------------------------------------------------ skorch features
def test_validation_early_stopping_and_callbacks(train_data):
    from skorch.callbacks import Callback

    class CountEpochs(Callback):
        def initialize(self):
            self.n = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.n += 1

    counter = CountEpochs()
    X, y, _ = train_data
    est = ConvEmbedder(
        **{**TINY, "max_epochs": 30, "lr": 0.05},
        validation_fraction=0.25,
        early_stopping=True,
        n_iter_no_change=2,
        callbacks=[("count", counter)],
    ).fit(X, y)
    history = est.net_.history
    assert len(history) < 30  # stopped early
    assert all(np.isfinite(history[:, "valid_loss"]))
    # the user's callback object is copied, not mutated
    assert not hasattr(counter, "n")
    assert dict(est.net_.callbacks_)["count"].n == len(history)


def test_verbose_prints_epoch_table(train_data, capsys):
    X, y, _ = train_data
    ConvEmbedder(**{**TINY, "max_epochs": 2}, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out
    ConvEmbedder(**{**TINY, "max_epochs": 2}, verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------ sklearn tooling
def test_pickle_and_joblib_round_trip(fitted, test_data, tmp_path):
    X = test_data[0]
    Z = fitted.transform(X)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(X), Z)
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    joblib.dump(fitted, tmp_path / "emb.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "emb.joblib").transform(X), Z)


def test_pickled_state_is_plain_data(fitted):
    """The state holds weights as bytes and plain values: no torch or skorch object."""
    import io

    import torch

    state = fitted.__getstate__()
    assert "net_" not in state
    assert isinstance(state["_net_weights"], bytes)

    def modules(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from modules(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from modules(v)
        else:
            yield type(value).__module__.split(".")[0]

    assert not {"torch", "skorch"} & set(modules(state))
    weights = torch.load(io.BytesIO(state["_net_weights"]), weights_only=True)
    expected = fitted.net_.module_.state_dict()
    assert weights.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(weights[name], tensor.cpu())
    again = pickle.loads(pickle.dumps(fitted))
    assert again.net_.history[:, "train_loss"] == fitted.net_.history[:, "train_loss"]


def test_clone_is_unfitted(fitted):
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not hasattr(fresh, "net_")


def test_grid_search_smoke(train_data):
    X, y, _ = train_data
    pipe = make_pipeline(
        ConvEmbedder(**{**TINY, "max_epochs": 1}), LogisticRegression(max_iter=200)
    )
    grid = GridSearchCV(
        pipe,
        {"convembedder__embedding_dim": [4, 8], "convembedder__lr": [1e-3, 1e-2]},
        cv=2,
    ).fit(X, y)
    assert (
        grid.best_estimator_[0].transform(X[:3]).shape[1]
        == (grid.best_params_["convembedder__embedding_dim"])
    )
    assert len(grid.cv_results_["mean_test_score"]) == 4


@pytest.mark.slow
def test_pipeline_on_make_tracks_group_kfold():
    """mel → embedder → logistic regression, cross-validated over unseen tracks.

    Every synthetic track is cut into two clips; GroupKFold keeps the clips of a
    track in the same fold (as the real-music benchmark does).
    """
    from sklearn_music import MelSpectrogramTransformer
    from sklearn_music.datasets import make_tracks

    tracks = make_tracks(36, n_genres=3, n_artists_per_genre=2, duration=4.0, random_state=0)
    clips = tracks.data.reshape(2 * len(tracks.data), -1)
    genre = np.repeat(tracks.genre, 2)
    groups = np.repeat(np.arange(len(tracks.data)), 2)
    pipe = make_pipeline(
        MelSpectrogramTransformer(n_mels=32),
        ConvEmbedder(**{**TINY, "max_epochs": 15}),
        LogisticRegression(max_iter=500),
    )
    scores = cross_val_score(pipe, clips, genre, groups=groups, cv=GroupKFold(3))
    # chance is 1/3 (+- 0.06 over the 72 clips); mel mean/std statistics give 0.6
    assert scores.mean() > 0.45


# ------------------------------------------------------------------ errors
def test_errors_name_the_problem(fitted, train_data):
    X, y, _ = train_data
    # fit(X, None) trains without labels (tests/test_embedder_ssl.py), with no
    # validation loss to compute
    with pytest.raises(ValueError, match="validation loss needs targets"):
        ConvEmbedder(**TINY, validation_fraction=0.2).fit(X, None)
    with pytest.raises(ValueError, match="patch_frames=4 is too short"):
        ConvEmbedder(**{**TINY, "patch_frames": 4}).fit(X, y)
    with pytest.raises(ValueError, match="early_stopping=True needs validation_fraction"):
        ConvEmbedder(**TINY, early_stopping=True).fit(X, y)
    with pytest.raises(ValueError, match=r"target_weights names \['year'\]"):
        ConvEmbedder(**TINY, target_weights={"year": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="predict_target='year' is not a target"):
        ConvEmbedder(**TINY, predict_target="year").fit(X, y)
    with pytest.raises(ValueError, match="target 'y' has 3 rows but X has 48"):
        ConvEmbedder(**TINY).fit(X, y[:3])
    bad = list(X[:3]) + [np.ones((N_MELS + 1, 20), np.float32)]
    with pytest.raises(ValueError, match=r"X\[3\] has 17 mel bands but X\[0\] has 16"):
        fitted.transform(bad)
    with pytest.raises(ValueError, match=r"X\[1\] contains NaN"):
        fitted.transform([X[0], np.full((N_MELS, 20), np.nan, np.float32)])
    with pytest.raises(ValueError, match="X has 20 features .* expecting 16"):
        fitted.transform([np.zeros((20, 30), np.float32)])
    with pytest.raises(ValueError, match="pooling"):
        ConvEmbedder(**TINY, pooling=("mean", "median")).fit(X, y)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' but torch finds no CUDA"):
            ConvEmbedder(**TINY, device="cuda").fit(X, y)


def test_pooling_options(train_data):
    X, y, _ = train_data
    for pooling in (("mean",), ("max", "l2")):
        est = ConvEmbedder(**{**TINY, "max_epochs": 1}, pooling=pooling).fit(X, y)
        first = est.net_.module_.encoder.fc[1]
        assert first.in_features == TINY["n_filters"] * len(pooling)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est.transform(X[:2])


def test_model_saved_on_cuda_loads_on_cpu(fitted, test_data):
    """A net whose device is "cuda" unpickles on a machine without a GPU."""
    import torch
    from skorch.exceptions import DeviceWarning

    if torch.cuda.is_available():  # pragma: no cover - the test machine has no GPU
        pytest.skip("needs a machine without CUDA")
    on_gpu = pickle.loads(pickle.dumps(fitted))
    on_gpu.set_params(device="cuda")
    on_gpu.net_.device = "cuda"
    blob = pickle.dumps(on_gpu)
    with pytest.warns(DeviceWarning, match="cpu"):
        loaded = pickle.loads(blob)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.transform(test_data[0]), fitted.transform(test_data[0]))
