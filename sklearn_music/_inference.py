"""ConvEmbedder's inference: patches cut with strided views, the module run directly.

:func:`forward_tracks` gives what skorch's ``forward_iter`` over
:class:`~sklearn_music._patches._FixedPatches` gave (the same patches, in the same
order, through the same module in eval mode), without its per-patch Python copies,
``DataLoader`` and collation: the patches of ``aggregate="mean"`` are gathered from a
strided view of each spectrogram straight into one reused batch buffer
(:func:`~sklearn_music._patches._patch_batches`), and the module runs under
:func:`torch.inference_mode`. When only the embeddings are wanted
(:meth:`ConvEmbedder.transform`), the heads and the contrastive projection head are
not run at all.

torch is imported at the top: :class:`~sklearn_music.ConvEmbedder` imports this module
inside its methods, so that ``import sklearn_music`` stays light.
"""

import os
from contextlib import contextmanager

import numpy as np
import torch

from ._patches import _collate_sequences, _FixedPatches, _patch_batches, _TrackData

# Patches per forward pass of ``aggregate="mean"`` inference: 64 was faster than 32
# (per-call overhead) and than 256 (cache) on one thread (benchmarks/bench_e2e.py).
_INFERENCE_BATCH = 64


def inference_threads(n_jobs):
    """Torch intra-op threads for inference: ``n_jobs``, and 1 when it is ``None``.

    With torch's own default (one thread per core) every operation of the small
    convolutional network forks and joins its OpenMP team, a few hundred times per
    second of audio; on a machine whose cores are busy with other work (or with the
    decoding workers of the mel step) a thread that is not scheduled stalls the
    others at each join. ``benchmarks/bench_e2e.py`` measured 2 threads several
    times slower than 1 on a loaded 2-core machine, so ``None`` means 1 here.
    """
    if n_jobs is None:
        return 1
    return max(1, os.cpu_count() + 1 + n_jobs if n_jobs < 0 else n_jobs)


@contextmanager
def _threads(n):
    old = torch.get_num_threads()
    if n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != old:
            torch.set_num_threads(old)


def _embed_only(module, x):
    """The embeddings of a batch of patches: the module's first output alone."""
    if module.augment is not None:
        x = module.augment(x)  # identity in eval mode, as in MultiHeadNet.forward
    return module.encoder(x)


def _outputs(module, x, kinds, embeddings_only, lengths=None):
    """float32 numpy outputs of one batch: the embeddings, then one per head."""
    if embeddings_only and lengths is None:
        return [_embed_only(module, x).cpu().numpy()]
    emb, *heads = module(x) if lengths is None else module(x, lengths)
    row = [emb]
    if not embeddings_only:  # zip drops the projection head's output
        row += [torch.softmax(h, dim=1) if k == "class" else h for k, h in zip(kinds, heads)]
    return [r.cpu().numpy() for r in row]


def _sequence_batches(net, specs):
    """``aggregate="gru"`` batches: ``batch_size`` tracks as padded patch sequences."""
    items = _FixedPatches(
        _TrackData(specs),
        n_frames=net.patch_frames,
        hop=net.patch_hop,
        pad_mode=net.pad_mode,
        aggregate="gru",
    )
    for start in range(0, len(specs), net.batch_size):
        stop = min(start + net.batch_size, len(specs))
        batch, _ = _collate_sequences([items[i] for i in range(start, stop)])
        yield batch["x"], batch["lengths"]


def forward_tracks(net, specs, kinds, n_jobs, *, embeddings_only=False):
    """Embeddings and head outputs of every patch (every track with ``"gru"``).

    Parameters
    ----------
    net : sklearn_music._net._PatchNet
        The fitted net (its ``module_``, patch and batch parameters are used).
    specs : list of ndarray of shape (n_mels, n_frames_i)
        Normalised float32 spectrograms.
    kinds : list of str
        ``"class"`` or ``"regression"`` per head; class outputs go through softmax.
    n_jobs : int or None
        Torch threads (see :func:`inference_threads`).
    embeddings_only : bool, default=False
        Run the encoder alone and return the embeddings only.

    Returns
    -------
    outputs : list of ndarray
        float64 arrays of one row per patch (per track with ``"gru"``): the
        embeddings first, then one per head unless ``embeddings_only``.
    """
    module = net.module_
    module.eval()
    device = torch.device(net.device)
    if net.aggregate == "mean":
        batches = (
            (torch.from_numpy(b), None)
            for b in _patch_batches(
                specs,
                n_frames=net.patch_frames,
                hop=net.patch_hop,
                pad_mode=net.pad_mode,
                batch_size=_INFERENCE_BATCH,
            )
        )
    else:
        batches = _sequence_batches(net, specs)
    chunks = []
    with _threads(inference_threads(n_jobs)), torch.inference_mode():
        for x, lengths in batches:
            x = x.to(device)
            if lengths is not None:
                lengths = lengths.to(device)
            chunks.append(_outputs(module, x, kinds, embeddings_only, lengths))
    return [np.concatenate(c).astype(np.float64) for c in zip(*chunks)]
