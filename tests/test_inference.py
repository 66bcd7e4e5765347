"""ConvEmbedder's direct inference path against skorch's ``forward_iter`` path.

The reference is what ``transform`` ran before: the patches of
:class:`~sklearn_music._patches._FixedPatches` through skorch's ``forward_iter``
(``sklearn_music._net._forward_patches``), averaged per track.
"""

import numpy as np
import pytest
import torch

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer
from sklearn_music._inference import inference_threads
from sklearn_music._net import _forward_patches
from sklearn_music._patches import (
    _fixed_offsets,
    _FixedPatches,
    _patch_batches,
    _TrackData,
)
from sklearn_music.datasets import make_tracks

TINY = dict(
    embedding_dim=8,
    n_filters=8,
    hidden_units=(16,),
    patch_frames=16,
    patch_hop=5,
    patches_per_track=2,
    max_epochs=2,
    random_state=0,
)


@pytest.fixture(scope="module")
def mels():
    """Log-mels of synthesised tracks, cut to lengths around the patch length."""
    data = make_tracks(12, duration=2.0, random_state=0)
    S = MelSpectrogramTransformer(n_mels=16).fit_transform(data.data)  # (12, 16, 63)
    lengths = [63, 5, 16, 17, 21, 1, 40, 15, 63, 33, 20, 26]  # short, equal, odd, ...
    return [S[i, :, :n] for i, n in enumerate(lengths)], data.genre


def _reference(est, X):
    """The old path: skorch forward_iter over _FixedPatches, then the patch mean."""
    specs = est._normalise(est._check_X(X, reset=False))
    kinds = [t["kind"] for t in est.targets_]
    cols = _forward_patches(est.net_, _TrackData(specs), kinds, 1)
    if est.aggregate == "mean":
        counts = np.array([len(_fixed_offsets(s.shape[1], 16, 5)) for s in specs])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        cols = [np.add.reduceat(c, starts, axis=0) / counts[:, None] for c in cols]
    return cols


@pytest.mark.parametrize("pad_mode", ["wrap", "constant"])
@pytest.mark.parametrize("batch_size", [1, 3, 7, 64])
def test_patch_batches_are_the_fixed_patches(mels, pad_mode, batch_size):
    specs = mels[0]
    items = _FixedPatches(
        _TrackData(specs), n_frames=16, hop=5, pad_mode=pad_mode, aggregate="mean"
    )
    expected = np.stack([items[k][0] for k in range(len(items))])
    batches = [
        b.copy()
        for b in _patch_batches(specs, n_frames=16, hop=5, pad_mode=pad_mode, batch_size=batch_size)
    ]
    assert all(len(b) == batch_size for b in batches[:-1])
    assert np.array_equal(np.concatenate(batches), expected)


@pytest.mark.parametrize(
    "params",
    [
        dict(pad_mode="wrap"),
        dict(pad_mode="constant"),
        dict(aggregate="gru", sequence_length=2),
        dict(contrastive_weight=0.5),  # the projection head is skipped by transform
    ],
)
def test_transform_and_predict_equal_the_skorch_path(mels, params):
    X, genre = mels
    est = ConvEmbedder(**TINY, **params).fit(X, genre)
    ref = _reference(est, X)
    emb = est.transform(X)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(emb, ref[0].astype(np.float32), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.predict_proba(X), ref[1], rtol=1e-5, atol=1e-7)
    assert np.array_equal(est.predict(X), est.classes_[ref[1].argmax(axis=1)])


def test_transform_without_targets_equals_the_skorch_path(mels):
    X = mels[0]
    est = ConvEmbedder(**TINY).fit(X)  # contrastive: no heads, a projection head
    np.testing.assert_allclose(
        est.transform(X), _reference(est, X)[0].astype(np.float32), rtol=1e-5, atol=1e-6
    )


def test_inference_threads_and_torch_setting_restored(mels):
    assert inference_threads(None) == 1
    assert inference_threads(3) == 3
    assert inference_threads(-1) >= 1
    X, genre = mels
    est = ConvEmbedder(**TINY, n_jobs=2).fit(X, genre)
    before = torch.get_num_threads()
    est.transform(X)
    assert torch.get_num_threads() == before
    # one or two threads give the same vectors
    np.testing.assert_allclose(
        est.set_params(n_jobs=None).transform(X), est.set_params(n_jobs=2).transform(X), atol=1e-6
    )
