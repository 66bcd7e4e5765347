"""Query a similarity store with an audio file: :func:`query_audio`.

The store (layer 4) knows vectors, not models; this helper joins a saved model
(:mod:`sklearn_music.persistence`) and a store: it embeds the file with the
model's steps before its index and scans the store for the closest vectors.
"""

import os
from numbers import Integral

from sklearn.utils._param_validation import HasMethods, Interval, validate_params

__all__ = ["embedding_steps", "query_audio"]


def embedding_steps(model):
    """The part of a fitted model that turns audio into vectors.

    A :class:`~sklearn.pipeline.Pipeline` whose last step searches
    (``kneighbors``, as :class:`~sklearn_music.NearestTracks`) loses that step; a
    model that only transforms is used as it is.
    """
    steps = getattr(model, "steps", None)
    if steps is not None and len(steps) >= 2 and hasattr(steps[-1][1], "kneighbors"):
        return model[:-1]
    if hasattr(model, "transform"):
        return model
    raise TypeError(
        f"a {type(model).__name__} cannot embed audio: pass a fitted Pipeline of a "
        "spectrogram, an embedder and an index (as `sklearn-music fit` saves it)"
    )


def quiet(model):
    """Turn off the ``verbose`` of every step (their own bars and tables); returns it."""
    for step in getattr(model, "steps", [(None, model)]):
        est = step[1]
        if hasattr(est, "get_params") and "verbose" in est.get_params(deep=False):
            est.set_params(verbose=0)
    return model


@validate_params(
    {
        "path": [str, os.PathLike],
        "model": [str, os.PathLike, HasMethods(["fit"])],
        "store": [str, os.PathLike, HasMethods(["similar_to_vector"])],
        "k": [Interval(Integral, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def query_audio(path, *, model, store, k=10):
    """Find the stored tracks most similar to an audio file.

    The file is embedded with the model (its steps before the index), and every
    vector of the store is scored against it by
    :meth:`~sklearn_music.store.SimilarityStore.similar_to_vector` (exact).

    Parameters
    ----------
    path : str or path-like
        The audio file (any format :func:`~sklearn_music.load_audio` reads).
    model : str, path-like or fitted Pipeline
        The model that embedded the store's tracks: a ``.skops`` file written by
        :func:`~sklearn_music.persistence.save_model` (``sklearn-music fit``), or
        the fitted pipeline itself.
    store : str, path-like or SimilarityStore
        The store to search.
    k : int, default=10
        Number of tracks to return.

    Returns
    -------
    similar : list of (track_id, float)
        ``(track_id, score)`` pairs, most similar first. A file whose audio is
        in the store finds itself first (score about 1 for the cosine metric).

    Raises
    ------
    ValueError
        If the model's vectors and the store's differ in dimension (the store
        was indexed with another model).

    Examples
    --------
    >>> import numpy as np, soundfile as sf
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_music import MFCCStatistics, NearestTracks, query_audio
    >>> from sklearn_music.store import SimilarityStore
    >>> tmp = getfixture("tmp_path")
    >>> rng = np.random.default_rng(0)
    >>> waves = rng.normal(size=(3, 8000)).astype(np.float32) * [[0.1], [0.5], [1.0]]
    >>> model = make_pipeline(MFCCStatistics(sr=8000, n_mels=32), NearestTracks())
    >>> model = model.fit(waves.astype(np.float32))
    >>> SimilarityStore.from_pipeline(tmp / "t.db", model, waves, ["a", "b", "c"])
    >>> sf.write(tmp / "q.wav", waves[1], 8000)
    >>> query_audio(tmp / "q.wav", model=model, store=tmp / "t.db", k=1)
    [('b', 1.0...)]
    """
    from .store import SimilarityStore

    if isinstance(model, (str, os.PathLike)):
        from .persistence import load_model

        model = quiet(load_model(model))
    vector = embedding_steps(model).transform([os.fspath(path)])[0]
    if isinstance(store, (str, os.PathLike)):
        with SimilarityStore(store) as opened:
            return _search(opened, vector, k)
    return _search(store, vector, k)


def _search(store, vector, k):
    if vector.shape[0] != store.dim:
        raise ValueError(
            f"the model embeds into {vector.shape[0]} dimensions but the store "
            f"{str(store.path)!r} holds {store.dim}-dimensional vectors: it was indexed "
            "with another model"
        )
    return store.similar_to_vector(vector, k=k)
