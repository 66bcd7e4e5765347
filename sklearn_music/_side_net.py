"""The skorch net that MultimodalEmbedder trains, and its rebuild from saved state.

``_SideNet`` is :class:`~sklearn_music._net._PatchNet` (random patches of whole
tracks for training, patches every ``patch_hop`` frames for inference) whose
examples also carry their track's side inputs: token ids, category codes, scaled
numbers and missing flags, passed to
:class:`~sklearn_music._side_modules.MultimodalNet` as keyword arguments.
"""

import math
from numbers import Real

import numpy as np
import torch

from ._net import _INT_BOUNDS, _check_heads, _is_int, _PatchNet, _rebuild_net
from ._patches import _FixedPatches, _TrackData


class _SideTrackData(_TrackData):
    """Normalised spectrograms, packed targets and per-track side arrays."""

    def __init__(self, specs, side, Y=None):
        super().__init__(specs, Y)
        self.side = side  # name -> array with one row per track

    def subset(self, indices):
        indices = np.asarray(indices)
        return _SideTrackData(
            [self.specs[i] for i in indices],
            {k: v[indices] for k, v in self.side.items()},
            None if self.Y is None else self.Y[indices],
        )


class _WithSide:
    """Patches of ``patches`` (one dataset of ``_patches``), each with the side
    inputs of its track: items are ``({"x": patch, **side}, y)``."""

    def __init__(self, patches, side, n_tracks):
        self.patches = patches
        self.side = side
        self.n_tracks = n_tracks

    def __len__(self):
        return len(self.patches)

    def __getitem__(self, k):
        x, y = self.patches[k]
        if isinstance(self.patches, _FixedPatches):
            i = self.patches.items[k][0]
        else:  # _RandomPatches: item k is a patch of track k % n_tracks
            i = k % self.n_tracks
        return {"x": x, **{name: v[i] for name, v in self.side.items()}}, y


class _SideNet(_PatchNet):
    """``_PatchNet`` whose examples carry their track's side inputs."""

    def get_dataset(self, X, y=None):
        if isinstance(X, _SideTrackData):
            return X
        return super().get_dataset(X, y)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The heads' loss; in training, plus ``audio_only_weight`` times the loss
        of the copy of the batch without side inputs (the second half of the rows,
        see ``MultimodalNet.forward``)."""
        n = len(y_true)
        if y_pred[0].shape[0] == n:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        loss = super().get_loss([p[:n] for p in y_pred], y_true, X=X, training=training)
        bare = super().get_loss([p[n:] for p in y_pred], y_true, X=X, training=training)
        return loss + self.module_.audio_only_weight * bare

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, _SideTrackData):
            return super().get_iterator(dataset, training=training)
        kwargs = {}
        if training:
            patches, kwargs = self._training_patches(dataset)
        else:
            patches = _FixedPatches(
                dataset, n_frames=self.patch_frames, hop=self.patch_hop,
                pad_mode=self.pad_mode, aggregate="mean",
            )  # fmt: skip
        return torch.utils.data.DataLoader(
            _WithSide(patches, dataset.side, len(dataset)),
            batch_size=self.batch_size,
            num_workers=0,
            **kwargs,
        )


# What MultimodalEmbedder writes as the net's parameters (and a saved model may
# hold): bounded sizes, so that a crafted file cannot make the loader build a huge
# network; the weights' size bounds them again.
_SIDE_INT_BOUNDS = {
    # the trunk's and the training loop's, as ConvEmbedder writes them
    **{k: v for k, v in _INT_BOUNDS.items() if k != "sequence_length"},
    "module__vocabulary_size": (0, 2**20),
    "module__n_numeric": (0, 1024),
    "module__audio_dim": (1, 65536),
    "module__token_dim": (1, 4096),
    "module__text_dim": (1, 4096),
    "module__metadata_dim": (1, 4096),
}
_SIDE_OTHER_KEYS = (
    "module__head_sizes",
    "module__n_levels",
    "module__hidden_units",
    "module__pooling",
    "module__dropout",
    "module__modality_dropout",
    "module__audio_only_weight",
    "criterion__heads",
    "criterion__class_weights",
    "lr",
    "pad_mode",
    "predict_nonlinearity",
    "verbose",
)
SIDE_NET_KEYS = frozenset(_SIDE_INT_BOUNDS) | frozenset(_SIDE_OTHER_KEYS)


def _int_list(value, low, high, *, empty=True):
    return (
        isinstance(value, (list, tuple))
        and (empty or len(value) > 0)
        and all(_is_int(v, low, high) for v in value)
    )


def _side_net_problem(net_init, n_weights):
    """Why ``net_init`` (read from a file) cannot be a saved net's parameters, or None."""
    if not isinstance(net_init, dict) or set(net_init) - {"verbose"} != SIDE_NET_KEYS - {"verbose"}:
        return f"_net_init must be a dict with the keys {sorted(SIDE_NET_KEYS)}"
    for name, (low, high) in _SIDE_INT_BOUNDS.items():
        if not _is_int(net_init[name], low, high):
            return f"_net_init[{name!r}]={net_init[name]!r} is not an int in [{low}, {high}]"
    heads, levels = net_init["module__head_sizes"], net_init["module__n_levels"]
    if not (
        _int_list(heads, 1, 2**20, empty=False)
        and _int_list(levels, 0, 2**20)
        and len(levels) <= 1024
        and _int_list(net_init["module__hidden_units"], 1, 65536)
    ):
        return "_net_init's head sizes, levels and hidden units must be lists of ints"
    pooling = net_init["module__pooling"]
    if not (
        isinstance(pooling, (list, tuple))
        and pooling
        and set(pooling) <= {"mean", "max", "l2"}
        and len(set(pooling)) == len(pooling)
    ):
        return f"_net_init['module__pooling']={pooling!r} is not a tuple of mean, max, l2"
    for name, high in (("module__dropout", 1.0), ("module__modality_dropout", 1.0)):
        value = net_init[name]
        if not (isinstance(value, Real) and 0.0 <= value < high):
            return f"_net_init[{name!r}]={value!r} is not a number in [0, {high})"
    weight = net_init["module__audio_only_weight"]
    if not (isinstance(weight, Real) and 0 <= weight < math.inf):
        return f"_net_init['module__audio_only_weight']={weight!r} is not a number >= 0"
    if not (isinstance(net_init["lr"], Real) and 0 < net_init["lr"] < math.inf):
        return f"_net_init['lr']={net_init['lr']!r} is not a positive number"
    if net_init["pad_mode"] not in ("wrap", "constant") or net_init["predict_nonlinearity"]:
        return "_net_init's pad_mode or predict_nonlinearity is invalid"
    problem = _check_heads(
        net_init["criterion__heads"], net_init["criterion__class_weights"], heads
    )
    if problem:
        return problem
    f = net_init["module__n_filters"]
    n_params = 4 * f * (net_init["module__n_mels"] + (net_init["module__n_conv"] - 1) * f)
    n_params += net_init["module__vocabulary_size"] * net_init["module__token_dim"]
    n_params += sum(n + 2 for n in levels) * net_init["module__metadata_dim"]
    if n_params > n_weights:
        return (
            f"_net_init describes a network of at least {n_params} weights, but the "
            f"file holds {n_weights}"
        )
    return None


def _side_net_from_state(net_init, weights, history, device):
    """Rebuild a fitted ``_SideNet`` from its checked parameters and weights."""
    from ._side_modules import MultimodalNet

    return _rebuild_net(
        _SideNet,
        MultimodalNet,
        _side_net_problem,
        "MultimodalEmbedder",
        net_init,
        weights,
        history,
        device,
    )
