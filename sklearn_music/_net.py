"""The skorch net that ConvEmbedder trains: ``_PatchNet``, a plain NeuralNet subclass.

This module imports torch and skorch at its top; :class:`~sklearn_music.ConvEmbedder`
imports it inside its methods, so that ``import sklearn_music`` stays light. The net is
customised only through skorch's documented hooks: ``get_dataset``, ``get_iterator``,
``get_loss`` and ``initialize_module``.
"""

import io
import json
import os
import signal
import threading
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from skorch import NeuralNet
from skorch.exceptions import DeviceWarning
from skorch.history import History
from skorch.utils import to_tensor

from ._patches import _collate_sequences, _FixedPatches, _RandomPatches, _TrackData


class _PatchNet(NeuralNet):
    """skorch net that trains on random patches of whole tracks.

    Extra parameters: ``patch_frames``, ``patch_hop``, ``patches_per_track``,
    ``pad_mode``, ``sequence_length``, ``aggregate`` and ``patch_seed`` (seed of
    the random patch positions and of the shuffling).
    """

    def __init__(
        self,
        module,
        criterion,
        *,
        patch_frames=96,
        patch_hop=48,
        patches_per_track=8,
        pad_mode="wrap",
        sequence_length=4,
        aggregate="mean",
        patch_seed=0,
        **kwargs,
    ):
        super().__init__(module, criterion, **kwargs)
        self.patch_frames = patch_frames
        self.patch_hop = patch_hop
        self.patches_per_track = patches_per_track
        self.pad_mode = pad_mode
        self.sequence_length = sequence_length
        self.aggregate = aggregate
        self.patch_seed = patch_seed

    def get_dataset(self, X, y=None):
        if isinstance(X, _TrackData):
            return X
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, _TrackData):
            return super().get_iterator(dataset, training=training)
        if training:
            dataset, loader_kwargs = self._training_patches(dataset)
        else:
            dataset = _FixedPatches(
                dataset,
                n_frames=self.patch_frames,
                hop=self.patch_hop,
                pad_mode=self.pad_mode,
                aggregate=self.aggregate,
            )
            loader_kwargs = {}
        if self.aggregate == "gru":
            loader_kwargs["collate_fn"] = _collate_sequences
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size, num_workers=0, **loader_kwargs
        )

    def _training_patches(self, tracks):
        """Random patches of ``tracks`` and a seeded shuffling sampler over them."""
        seeds = np.random.SeedSequence(self.patch_seed).spawn(2)
        dataset = _RandomPatches(
            tracks,
            n_frames=self.patch_frames,
            hop=self.patch_hop,
            per_track=self.patches_per_track,
            pad_mode=self.pad_mode,
            sequence_length=self.sequence_length,
            aggregate=self.aggregate,
            rng=np.random.default_rng(seeds[0]),
        )
        gen = torch.Generator()
        gen.manual_seed(int(seeds[1].generate_state(1)[0]))
        sampler = torch.utils.data.RandomSampler(dataset, generator=gen)
        return dataset, {"sampler": sampler}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # y_pred = (embedding, head_0, head_1, ...); the criterion sums the heads
        y_true = to_tensor(y_true, device=self.device)
        return self.criterion_(y_pred[1:], y_true)

    def initialize_module(self):
        super().initialize_module()
        # He initialisation of the conv layers (each followed by BN and ReLU)
        for m in self.module_.modules():
            if isinstance(m, torch.nn.Conv1d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        return self


class _SigintWatch:
    """Note a SIGINT (Ctrl-C) received while active; its KeyboardInterrupt still raises.

    skorch's ``partial_fit`` swallows every ``KeyboardInterrupt`` of the training loop,
    both a user's Ctrl-C and the one its callbacks raise to stop training
    (``EarlyStopping``); ``received`` tells them apart. Only the main thread can
    install a handler (signals are delivered there); elsewhere nothing is watched.
    """

    def __init__(self):
        self.received = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        old = signal.getsignal(signal.SIGINT)
        if not callable(old):  # ignored, default action or not set from Python
            return self

        def handler(signum, frame):
            self.received = True
            old(signum, frame)

        self._old = old
        signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@contextmanager
def _torch_context(n_jobs, seed=None, device="cpu"):
    """Temporarily set torch's thread count and (forked) random seed."""
    old_threads = torch.get_num_threads()
    if n_jobs is not None:
        n = os.cpu_count() + 1 + n_jobs if n_jobs < 0 else n_jobs
        torch.set_num_threads(max(1, n))
    try:
        if seed is None:
            yield
        else:
            dev = torch.device(device)
            devices = [dev.index or 0] if dev.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                yield
    finally:
        torch.set_num_threads(old_threads)


def _net_to_state(net):
    """The fitted net as plain data: ``torch.save`` bytes of its CPU weights and its
    history as JSON."""
    weights = {k: v.detach().cpu() for k, v in net.module_.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    return buffer.getvalue(), json.dumps(net.history.to_list(), default=float)


def _net_from_state(net_init, weights, history, device):
    """Rebuild a ``_PatchNet`` from :func:`_net_to_state`'s data, ready for inference.

    The weights are read with ``torch.load(weights_only=True)``. A net saved on a GPU
    loads on the CPU, with a ``DeviceWarning``, where torch finds no CUDA device.
    """
    from ._modules import MultiHeadNet, MultiTargetLoss

    device = device or "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"ConvEmbedder was saved with device={device!r}, but torch finds no "
            "CUDA device here; the net is loaded on device='cpu'",
            DeviceWarning,
            stacklevel=3,
        )
        device = "cpu"
    net = _PatchNet(MultiHeadNet, MultiTargetLoss, device=device, **net_init)
    net.initialize()
    tensors = torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu")
    net.module_.load_state_dict(tensors)
    net.module_.to(device)
    net.module_.eval()
    if history is not None:
        net.history_ = History(json.loads(history))
    return net


def _forward_patches(net, data, kinds, n_jobs):
    """Embeddings and head outputs (softmax for a ``"class"`` kind) of every patch
    (every track with ``aggregate="gru"``) of ``data``, float64, one array each."""
    outs = []
    with _torch_context(n_jobs):
        for emb, *heads in net.forward_iter(data, training=False):
            row = [emb]
            for kind, h in zip(kinds, heads):
                row.append(torch.softmax(h, dim=1) if kind == "class" else h)
            outs.append([r.numpy().astype(np.float64) for r in row])
    return [np.concatenate(c) for c in zip(*outs)]
