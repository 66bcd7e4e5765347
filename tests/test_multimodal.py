"""MultimodalEmbedder: side inputs (lyrics, metadata) next to the audio branch."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from sklearn_music import MultimodalEmbedder
from sklearn_music._side import (
    UNKNOWN,
    _encode_categories,
    _encode_numbers,
    _encode_texts,
    _fit_categories,
    _fit_numbers,
    _fit_vocabulary,
    tokenize,
)
from sklearn_music.persistence import load_model, save_model

_TINY = dict(
    embedding_dim=6,
    audio_dim=6,
    n_filters=4,
    hidden_units=(8,),
    token_dim=4,
    text_dim=5,
    metadata_dim=3,
    patch_frames=12,
    patches_per_track=2,
    max_epochs=2,
    batch_size=8,
    min_count=1,
    random_state=0,
)
_SIDE = dict(text_column="lyrics", categorical_columns=["genre"], numeric_columns=["year"])


def _table(n, seed):
    """Random spectrograms of several lengths with lyrics, genres and years."""
    rng = np.random.default_rng(seed)
    words = ["love", "night", "rain", "fire", "road", "blue"]
    lyrics = [
        None if i % 4 == 3 else " ".join(rng.choice(words, size=rng.integers(2, 9)))
        for i in range(n)
    ]
    return pd.DataFrame(
        {
            "spectrogram": [
                rng.normal(size=(8, int(rng.integers(14, 40)))).astype(np.float32) for _ in range(n)
            ],
            "lyrics": lyrics,
            "genre": rng.choice(["rock", "jazz", "folk"], size=n),
            "year": np.where(rng.random(n) < 0.2, np.nan, rng.integers(1960, 2020, size=n)),
        }
    )


@pytest.fixture(scope="module")
def data():
    X = _table(16, 0)
    y = np.repeat(["a", "b"], 8)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return MultimodalEmbedder(**_TINY, **_SIDE).fit(X, y)


# ------------------------------------------------------------------ side inputs
def test_tokenize_plain_regex():
    assert tokenize("Hey, you!  Don't\tgo--2 NIGHTS") == [
        "hey",
        "you",
        "don't",
        "go",
        "2",
        "nights",
    ]
    for missing in (None, np.nan, "", "   "):
        assert tokenize(missing) == []


def test_vocabulary_min_count_max_size_and_unknown():
    texts = ["b a b c", "c b d", None, "e"]
    vocab = _fit_vocabulary(texts, min_count=2, max_size=10)
    assert vocab == {"b": 2, "c": 3}  # by count, then alphabetically; ids from 2
    assert _fit_vocabulary(texts, min_count=1, max_size=2) == {"b": 2, "c": 3}
    assert list(_fit_vocabulary(texts, min_count=1, max_size=10)) == ["b", "c", "a", "d", "e"]
    ids = _encode_texts(["c zz b c b", None], vocab, max_tokens=4)
    np.testing.assert_array_equal(ids, [[3, UNKNOWN, 2, 3], [0, 0, 0, 0]])


def test_categories_missing_unknown_and_numbers():
    cats = _fit_categories([["rock", None, "jazz", 3]])
    assert cats == [["3", "jazz", "rock"]]
    codes = _encode_categories([["rock", "pop", None, "3", 3]], cats, 5)
    np.testing.assert_array_equal(codes[:, 0], [4, 1, 0, 2, 2])
    mean, scale = _fit_numbers([[1.0, 3.0, np.nan]], ["year"])
    np.testing.assert_allclose([mean[0], scale[0]], [2.0, 1.0])
    values, missing = _encode_numbers([[5.0, None]], ["year"], mean, scale, 2)
    np.testing.assert_allclose(values[:, 0], [3.0, 0.0])
    np.testing.assert_array_equal(missing[:, 0], [0.0, 1.0])
    with pytest.raises(ValueError, match="numeric column 'year' row 1 is 'soon'"):
        _encode_numbers([[1.0, "soon"]], ["year"], mean, scale, 2)


# ------------------------------------------------------------------ the network
def test_gradients_reach_every_branch(fitted, data):
    """One backward pass from the loss: every branch's weights get a gradient."""
    from sklearn_music._side_net import _SideTrackData

    X, _ = data
    fitted = copy.deepcopy(fitted)  # training mode updates the batch-norm statistics
    specs, texts, cats, nums = fitted._read(X, reset=False)
    side = fitted._side_arrays(texts, cats, nums)
    Y = np.repeat([0.0, 1.0], 8).astype(np.float32)[:, None]
    net = fitted.net_
    module = net.module_
    module.train()
    module.modality_dropout = 0.0  # keep every side input in this batch
    loader = net.get_iterator(_SideTrackData(fitted._normalise(specs), side, Y), training=True)
    batch, yb = next(iter(loader))
    module.zero_grad()
    loss = net.get_loss(module(**batch), yb, training=True)
    loss.backward()
    branches = {
        "token embeddings": module.text.embedding.weight,
        "GRU": module.text.gru.weight_ih_l0,
        "genre table": module.metadata.tables[0].weight,
        "first conv": next(
            m for m in module.audio.modules() if isinstance(m, torch.nn.Conv1d)
        ).weight,
        "fully connected": module.fc[-1].weight,
    }
    for name, weight in branches.items():
        assert weight.grad is not None and weight.grad.abs().sum() > 0, name


def test_modality_dropout_drops_side_inputs_in_training_only():
    from sklearn_music._side_modules import MultimodalNet

    torch.manual_seed(0)
    net = MultimodalNet(
        4, (2,), vocabulary_size=6, n_levels=(3,), n_filters=4, embedding_dim=3,
        dropout=0.0, modality_dropout=1.0, audio_only_weight=0.0,
    )  # fmt: skip
    x = torch.randn(3, 4, 12)
    full = dict(tokens=torch.tensor([[2, 3, 4]] * 3), codes=torch.tensor([[2]] * 3),
                values=torch.zeros(3, 0), missing=torch.zeros(3, 0))  # fmt: skip
    none = dict(
        full, tokens=torch.zeros(3, 3, dtype=torch.long), codes=torch.zeros(3, 1, dtype=torch.long)
    )
    net.audio.eval()  # batch norm statistics aside, the two calls see the same patches
    net.text.train(), net.metadata.train()
    net.training = True
    dropped = net(x, **full)[0]
    net.eval()
    torch.testing.assert_close(dropped, net(x, **none)[0])
    assert not torch.allclose(net(x, **full)[0], net(x, **none)[0])


# ------------------------------------------------------------------ the estimator
def test_transform_without_side_inputs(fitted, data):
    """Trained with lyrics and metadata; new tracks lack them (absent or missing)."""
    X, _ = data
    full = fitted.transform(X)
    bare = fitted.transform(X[["spectrogram"]])
    as_dict = fitted.transform({"spectrogram": list(X["spectrogram"])})
    nothing = fitted.transform(X.assign(lyrics=None, genre=None, year=np.nan))
    as_array = fitted.transform(list(X["spectrogram"]))
    assert bare.shape == full.shape == (16, 6) and bare.dtype == np.float32
    assert np.isfinite(bare).all()
    for other in (as_dict, nothing, as_array):
        np.testing.assert_allclose(other, bare, rtol=1e-5, atol=1e-6)
    assert not np.allclose(bare[:3], full[:3])  # the side inputs are used


def test_unseen_words_and_categories(fitted, data):
    X, _ = data
    new = X.iloc[:2].copy()
    new["lyrics"] = ["zyx qwv", "abcdef ghijk"]  # two unseen words each
    new["genre"] = ["polka", "gamelan"]  # unseen categories
    new["year"] = [2050.0, 1900.0]
    out = fitted.transform(new)
    assert np.isfinite(out).all()
    # unseen words and categories all map to the same learned "unknown" rows
    swapped = new.assign(lyrics=new["lyrics"][::-1].to_numpy(), genre=["gamelan", "polka"])
    np.testing.assert_allclose(fitted.transform(swapped), out, rtol=1e-5, atol=1e-6)
    # "unknown" and "missing" are different learned rows
    missing = fitted.transform(new.assign(genre=None))
    assert not np.allclose(missing, out)


def test_random_state_reproducible(data, fitted):
    X, y = data
    again = MultimodalEmbedder(**_TINY, **_SIDE).fit(X, y)
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    other = MultimodalEmbedder(**dict(_TINY, random_state=1), **_SIDE).fit(X, y)
    assert not np.allclose(other.transform(X), fitted.transform(X))


def test_pickle_and_skops_round_trip(fitted, data, tmp_path):
    X, _ = data
    expected = fitted.transform(X)
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.transform(X), expected)
    np.testing.assert_array_equal(
        loaded.transform(X[["spectrogram"]]), fitted.transform(X[["spectrogram"]])
    )
    path = save_model(fitted, tmp_path / "side.skops")
    np.testing.assert_array_equal(load_model(path).transform(X), expected)


def test_saved_parameters_are_checked(fitted):
    from sklearn_music._side_net import _side_net_from_state

    state = fitted.__getstate__()
    bad = dict(state["_net_init"], module__vocabulary_size=2**20)
    with pytest.raises(ValueError, match="at least .* weights, but the file holds"):
        _side_net_from_state(bad, state["_net_weights"], None, "cpu")
    bad = dict(state["_net_init"], module__n_levels=["x"])
    with pytest.raises(ValueError, match="lists of ints"):
        _side_net_from_state(bad, state["_net_weights"], None, "cpu")


def test_audio_only_and_multi_target(data):
    X, y = data
    targets = {"label": y, "year": np.random.default_rng(0).normal(size=16)}
    est = MultimodalEmbedder(**_TINY).fit(X, targets)
    assert est.vocabulary_ == {} and est.categories_ == []
    assert [t["kind"] for t in est.targets_] == ["class", "regression"]
    assert est.transform(X).shape == (16, 6)
    assert list(est.get_feature_names_out()[:2]) == ["multimodalembedder0", "multimodalembedder1"]


def test_input_errors(data):
    X, y = data
    est = MultimodalEmbedder(**_TINY, **_SIDE)
    with pytest.raises(ValueError, match="no column 'spectrogram'"):
        est.fit(X.drop(columns="spectrogram"), y)
    with pytest.raises(ValueError, match=r"lacks the side-input columns \['genre'\]"):
        est.fit(X.drop(columns="genre"), y)
    bad = X.copy()
    bad.at[2, "spectrogram"] = np.zeros(5)
    with pytest.raises(ValueError, match="row 2 is ndarray of shape"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="must be distinct"):
        MultimodalEmbedder(text_column="genre", categorical_columns=["genre"]).fit(X, y)
    fitted = MultimodalEmbedder(**_TINY).fit(X, y)
    wrong = X.assign(spectrogram=[s[:4] for s in X["spectrogram"]])
    with pytest.raises(ValueError, match="X has 4 features .* expecting 8"):
        fitted.transform(wrong)


def test_add_spectrograms_in_a_pipeline():
    """The documented recipe: FunctionTransformer(add_spectrograms) before the model."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sklearn_music import MelSpectrogramTransformer, add_spectrograms

    rng = np.random.default_rng(0)
    waves = rng.normal(size=(6, 3000)).astype(np.float32)
    mel = MelSpectrogramTransformer(sr=8000, n_fft=256, hop_length=128, n_mels=8)
    table = {"path": list(waves), "lyrics": ["la la", None, "oh la", "", "oh", "la"]}
    out = add_spectrograms(table, mel=mel)
    assert set(out) == {"path", "lyrics", "spectrogram"} and "spectrogram" not in table
    np.testing.assert_allclose(out["spectrogram"][2], mel.transform([waves[2]])[0])
    pipe = make_pipeline(
        FunctionTransformer(add_spectrograms, kw_args={"mel": mel}),
        MultimodalEmbedder(**_TINY, text_column="lyrics"),
    )
    assert pipe.fit_transform(pd.DataFrame(table), np.repeat([0, 1], 3)).shape == (6, 6)
    with pytest.raises(ValueError, match="no column 'audio'"):
        add_spectrograms(table, mel=mel, path_column="audio")
