"""Why two tracks are similar: their patch embeddings compared moment by moment.

A :class:`~sklearn_music.ConvEmbedder` embeds a track as the mean of the embeddings
of its patches, cut every ``patch_hop`` frames (``_patches._fixed_offsets``). Here the
patches are kept apart: the cosine similarity of every patch of one track with every
patch of the other says which moments of one match which moments of the other.
"""

import numpy as np
from sklearn.utils import Bunch

from .._embedder import ConvEmbedder
from .._patches import _crop, _fixed_offsets

__all__ = ["patch_embeddings", "representative_offset", "why_similar"]


def _split_model(model):
    """``(front_end_steps, embedder, seconds_per_frame)`` of a fitted pipeline."""
    steps = getattr(model, "steps", None)
    if steps is None:
        raise TypeError(
            f"model must be a fitted Pipeline of a mel front end and a ConvEmbedder "
            f"(as saved by `fit` or returned by pretrained.load), got {type(model).__name__}"
        )
    # a FrozenEstimator keeps the embedder in .estimator
    found = [
        (i, getattr(s, "estimator", s))
        for i, (_, s) in enumerate(steps)
        if isinstance(getattr(s, "estimator", s), ConvEmbedder)
    ]
    if not found:
        raise ValueError(
            f"model has no ConvEmbedder step (steps: {[n for n, _ in steps]}): the "
            "patch similarities need the CNN embedder"
        )
    i, est = found[0]
    if i == 0:
        raise ValueError("model has no front end before its ConvEmbedder step")
    first = steps[0][1]
    if not (hasattr(first, "sr") and hasattr(first, "hop_length")):
        raise ValueError(
            f"the first step of model, {type(first).__name__}, gives no sr and "
            "hop_length: the patch offsets cannot be put in seconds"
        )
    return model[:i], est, first.hop_length / first.sr


def patch_embeddings(model, tracks, *, normalize=True, hop=None):
    """Compute the embedding of every patch of each track, and the patch offsets.

    Parameters
    ----------
    model : Pipeline
        A fitted pipeline: a mel front end, then a
        :class:`~sklearn_music.ConvEmbedder` (possibly wrapped in
        :class:`~sklearn.frozen.FrozenEstimator`), optionally an index after it.
    tracks : list
        What the pipeline's first step takes: paths, or waveforms at its ``sr``.
    normalize : bool, default=True
        Scale every patch embedding to unit length (then their dot products are
        cosine similarities). With ``False`` and ``aggregate="mean"`` the mean of a
        track's patch embeddings is the embedder's ``transform`` of the track.
    hop : int, default=None
        Frames between the patches; ``None``: the embedder's ``patch_hop`` (the
        patches that ``transform`` averages). ``hop=patch_frames`` embeds half as
        many patches, side by side.

    Returns
    -------
    embeddings : list of ndarray of shape (n_patches_i, embedding_dim)
        The patch embeddings of each track.
    offsets : list of ndarray of shape (n_patches_i,)
        Where each patch starts, in seconds.
    patch_seconds : float
        Length of a patch in seconds.

    Examples
    --------
    >>> from sklearn_music.report import patch_embeddings
    >>> from sklearn_music.utils._test_common import tiny_pipeline
    >>> pipe, tracks = tiny_pipeline(4)
    >>> pipe = pipe.fit(list(tracks.data), tracks.genre)
    >>> emb, offsets, seconds = patch_embeddings(pipe, [tracks.data[0]])
    >>> emb[0].shape, offsets[0].tolist(), seconds
    ((7, 8), [0.0, 0.128, 0.256, 0.384, 0.512, 0.64, 0.752], 0.256)
    """
    import torch

    from .._net import _torch_context

    front, est, frame_seconds = _split_model(model)
    specs = front.transform(list(tracks))
    specs = est._normalise(est._check_X(specs, reset=False))
    module = est.net_.module_
    module.eval()
    embeddings, offsets = [], []
    for spec in specs:
        starts = _fixed_offsets(spec.shape[1], est.patch_frames, hop or est._hop())
        patches = np.stack([_crop(spec, o, est.patch_frames, est.pad_mode) for o in starts])
        with _torch_context(est.n_jobs), torch.no_grad():
            x = torch.as_tensor(patches, dtype=torch.float32, device=est.net_.device)
            emb = module.encoder(x).cpu().numpy().astype(np.float64)
        if normalize:
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            emb = emb / np.where(norms > 0, norms, 1.0)
        embeddings.append(emb)
        offsets.append(np.asarray(starts, dtype=float) * frame_seconds)
    return embeddings, offsets, est.patch_frames * frame_seconds


def representative_offset(embeddings, offsets):
    """Find the start (seconds) of the patch nearest the mean patch embedding.

    Parameters
    ----------
    embeddings : ndarray of shape (n_patches, embedding_dim)
        Unit-norm patch embeddings of one track (from :func:`patch_embeddings`).
    offsets : ndarray of shape (n_patches,)
        Their starts in seconds.

    Returns
    -------
    offset : float
        The start of the patch whose embedding has the largest cosine similarity
        with the mean of the track's patch embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.report import representative_offset
    >>> emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]])
    >>> representative_offset(emb, np.array([0.0, 1.5, 3.0]))
    1.5
    """
    mean = np.asarray(embeddings).mean(axis=0)
    return float(np.asarray(offsets)[int(np.argmax(np.asarray(embeddings) @ mean))])


def why_similar(model, track_a, track_b):
    """Compare two tracks patch by patch under a model's embedder.

    Parameters
    ----------
    model : Pipeline
        A fitted pipeline: a mel front end, then a
        :class:`~sklearn_music.ConvEmbedder` (possibly wrapped in
        :class:`~sklearn.frozen.FrozenEstimator`), optionally an index after it.
    track_a, track_b : str, path-like or ndarray
        Two tracks as the pipeline's first step takes them (paths, or waveforms
        at its ``sr``).

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``similarity``: ndarray of shape (n_patches_a, n_patches_b), the cosine
        similarity of patch ``i`` of ``track_a`` with patch ``j`` of ``track_b``;
        ``offsets_a`` / ``offsets_b``: the patch starts in seconds;
        ``best``: ``(i, j)``, the most similar pair of patches;
        ``best_offsets``: their starts in seconds; ``patch_seconds``: the length
        of a patch in seconds.

    See Also
    --------
    sklearn_music.report.write_report : Draws the matrix for every listened pair.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.report import why_similar
    >>> from sklearn_music.utils._test_common import tiny_pipeline
    >>> pipe, tracks = tiny_pipeline(4)
    >>> pipe = pipe.fit(list(tracks.data), tracks.genre)
    >>> a = np.concatenate([tracks.data[0], tracks.data[1]])
    >>> why = why_similar(pipe, a, tracks.data[1])
    >>> why.similarity.shape, why.best_offsets[0] >= 1.0
    ((15, 7), True)
    """
    (emb_a, emb_b), (off_a, off_b), seconds = patch_embeddings(model, [track_a, track_b])
    similarity = emb_a @ emb_b.T
    i, j = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
    return Bunch(
        similarity=similarity,
        offsets_a=off_a,
        offsets_b=off_b,
        best=(int(i), int(j)),
        best_offsets=(float(off_a[i]), float(off_b[j])),
        patch_seconds=float(seconds),
    )
