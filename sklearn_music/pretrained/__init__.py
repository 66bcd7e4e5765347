"""Pretrained embedders shipped with the package, and embeddings in one call.

``soundtracks-v1`` is a :class:`~sklearn_music.ConvEmbedder` trained without labels
(contrastive training, ``fit(X)``) on the open ``wide`` collection of Debian game
soundtracks by ``scripts/train_pretrained.py``; its data, licences, recipe and scores
are on the model card (``docs/model_card.rst``). The weights are package data, read
with ``torch.load(weights_only=True)``: nothing is downloaded.

:func:`load` returns a fitted ``Pipeline(MelSpectrogramTransformer, FrozenEstimator(
ConvEmbedder))``. The embedder is wrapped in scikit-learn's
:class:`~sklearn.frozen.FrozenEstimator` so that the pipeline keeps the estimator
contract where it is used: ``clone`` (and so :class:`~sklearn.model_selection.GridSearchCV`)
keeps the pretrained weights, and ``fit`` does not retrain them (a bare fitted
``ConvEmbedder`` would be cloned into an untrained one and retrained from scratch by
``fit``).
"""

import io
import os
from numbers import Integral

import numpy as np

from .._pretrained_weights import MODELS, read_payload
from ..utils._sklearn_compat import Interval, StrOptions, validate_params

__all__ = ["load", "embed", "available_models"]

_MODELS = MODELS


def available_models():
    """List the pretrained models shipped with the package.

    Returns
    -------
    names : list of str
        The names :func:`load` accepts.

    Examples
    --------
    >>> from sklearn_music.pretrained import available_models
    >>> available_models()
    ['soundtracks-v1']
    """
    return sorted(_MODELS)


def _read(name):
    """The saved payload of model ``name`` (plain tensors and numbers)."""
    return read_payload(name)


def _embedder_from_payload(payload):
    """A fitted ConvEmbedder holding the payload's weights and normalisation."""
    import torch

    from .._embedder import ConvEmbedder
    from .._net import _net_from_state, net_init_params

    # the shipped models were trained from random weights (the payloads written
    # before ``init`` was part of the recipe do not say so)
    est = ConvEmbedder(**({"init": None} | dict(payload["embedder_params"])))
    est.init_ = None
    est.n_features_in_ = int(payload["n_mels"])
    est.mean_ = payload["mean"].numpy().astype(np.float32)
    est.scale_ = payload["scale"].numpy().astype(np.float32)
    est.targets_ = []
    est._n_features_out = int(est.embedding_dim)
    est._net_init = net_init_params(est, [], None, 0, unlabeled=True)
    buffer = io.BytesIO()
    torch.save(payload["state_dict"], buffer)
    est.net_ = _net_from_state(est._net_init, buffer.getvalue(), None, "cpu")
    return est


@validate_params(
    {"name": [StrOptions(set(_MODELS))], "n_jobs": [Integral, None]},
    prefer_skip_nested_validation=True,
)
def load(name="soundtracks-v1", *, n_jobs=None):
    """Load a pretrained embedding pipeline: audio in, track vectors out.

    Parameters
    ----------
    name : {"soundtracks-v1"}, default="soundtracks-v1"
        The pretrained model (see :func:`available_models`).
    n_jobs : int, default=None
        ``n_jobs`` of the mel step (tracks read in parallel). The embedder runs on
        one torch thread whatever ``n_jobs`` is: on a busy 2-core machine two
        threads were many times slower than one (``benchmarks/bench_e2e.py``).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Fitted ``Pipeline([("mel", MelSpectrogramTransformer(...)), ("embed",
        FrozenEstimator(ConvEmbedder(...)))])``. ``transform`` takes what
        :class:`~sklearn_music.MelSpectrogramTransformer` takes (paths, file
        objects, waveforms at 16 kHz) and returns float32 vectors of shape
        ``(n_tracks, 128)``; ``pipeline[-1].estimator`` is the ConvEmbedder.

    See Also
    --------
    sklearn_music.embed : Vectors of tracks in one call.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.pretrained import load
    >>> pipe = load("soundtracks-v1")
    >>> waves = np.random.default_rng(0).normal(size=(2, 16000 * 4)).astype(np.float32)
    >>> pipe.transform(waves * 0.1).shape
    (2, 128)
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    from .._mel import MelSpectrogramTransformer

    payload = _read(name)
    embedder = _embedder_from_payload(payload)
    mel = MelSpectrogramTransformer(**payload["mel_params"], n_jobs=n_jobs)
    return Pipeline([("mel", mel), ("embed", FrozenEstimator(embedder))])


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


@validate_params(
    {
        "X": ["array-like", str, os.PathLike],
        "sr": [Interval(Integral, 1, None, closed="left"), None],
        "model": [StrOptions(set(_MODELS))],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def embed(X, *, sr=None, model="soundtracks-v1", n_jobs=None):
    """Embed tracks with a pretrained model: paths or waveforms in, vectors out.

    Parameters
    ----------
    X : str, path-like, list of (str, path-like, file object or 1-D array) or \
ndarray of shape (n_tracks, n_samples)
        Audio files (any format :func:`~sklearn_music.load_audio` reads) or
        waveforms. One path is one track.
    sr : int, default=None
        Sampling rate of the waveforms in ``X``; they are resampled to the model's
        16 kHz. ``None``: waveforms are at 16 kHz. Files carry their own rate, so
        ``sr`` must be ``None`` for them.
    model : {"soundtracks-v1"}, default="soundtracks-v1"
        The pretrained model (see :func:`load`).
    n_jobs : int, default=None
        Tracks read in parallel (the embedder uses one torch thread, see
        :func:`load`).

    Returns
    -------
    vectors : ndarray of shape (n_tracks, embedding_dim), dtype float32
        One vector per track (compare them with the cosine).

    See Also
    --------
    load : The pretrained pipeline itself (for a Pipeline or a grid search).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music import embed
    >>> t = np.arange(44100 * 3) / 44100
    >>> tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    >>> embed([tone, tone[::-1].copy()], sr=44100).shape
    (2, 128)
    """
    from ..io import load_audio

    pipe = load(model, n_jobs=n_jobs)
    target_sr = pipe[0].sr
    if _is_path(X):
        X = [X]
    elif isinstance(X, np.ndarray) and X.ndim == 1:
        raise ValueError(
            f"X is a 1-D array of shape {X.shape}; pass a list of waveforms or a 2-D "
            "array of shape (n_tracks, n_samples)"
        )
    tracks = list(X)
    if sr is not None and sr != target_sr:
        for i, track in enumerate(tracks):
            if _is_path(track) or hasattr(track, "read"):
                raise ValueError(
                    f"sr={sr} applies to waveforms, but X[{i}] is a file ({track!r}), "
                    "whose sampling rate is read from the file"
                )
            tracks[i] = load_audio(np.asarray(track), sr=target_sr, orig_sr=sr)
    return pipe.transform(tracks)
