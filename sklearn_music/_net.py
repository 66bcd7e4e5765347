"""The skorch net that ConvEmbedder trains: ``_PatchNet``, a plain NeuralNet subclass.

This module imports torch and skorch at its top; :class:`~sklearn_music.ConvEmbedder`
imports it inside its methods, so that ``import sklearn_music`` stays light. The net is
customised only through skorch's documented hooks: ``get_dataset``, ``get_iterator``,
``get_loss`` and ``initialize_module``.
"""

import copy
import io
import json
import math
import os
import pickle
import signal
import threading
import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from skorch import NeuralNet
from skorch.exceptions import DeviceWarning
from skorch.history import History
from skorch.utils import to_tensor

from ._contrastive import nt_xent_loss
from ._patches import _collate_sequences, _FixedPatches, _RandomPairs, _RandomPatches, _TrackData


class _PatchNet(NeuralNet):
    """skorch net that trains on random patches of whole tracks.

    Extra parameters: ``patch_frames``, ``patch_hop``, ``patches_per_track``,
    ``pad_mode``, ``sequence_length``, ``aggregate``, ``patch_seed`` (seed of
    the random patch positions and of the shuffling), ``contrastive_weight`` and
    ``temperature``. With ``contrastive_weight > 0`` the net trains on pairs of
    patches of a track (the module returns its projection last, and the last column
    of the targets is the track index): the loss is the heads' loss on both patches
    plus ``contrastive_weight`` times the NT-Xent loss of the pairs (patches of the
    same track are not each other's negatives). The validation loss is the heads'
    alone.
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
        contrastive_weight=0.0,
        temperature=0.1,
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
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature

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
        if self.contrastive_weight > 0:
            dataset = _RandomPairs(
                tracks,
                n_frames=self.patch_frames,
                per_track=self.patches_per_track,
                pad_mode=self.pad_mode,
                rng=np.random.default_rng(seeds[0]),
            )
        else:
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
        # y_pred = (embedding, head_0, head_1, ..., [projection]); the criterion
        # sums the heads
        y_true = to_tensor(y_true, device=self.device)
        if self.contrastive_weight <= 0:
            return self.criterion_(y_pred[1:], y_true)
        heads = y_pred[1:-1]
        if not training:  # plain patches, no pairs: the heads' loss only
            return self.criterion_(heads, y_true) if heads else y_pred[0].new_zeros(())
        n = len(y_true)
        loss = y_pred[0].new_zeros(())
        if heads:
            loss = loss + self.criterion_(heads, torch.cat([y_true, y_true]))
        proj = y_pred[-1]
        pair = nt_xent_loss(proj[:n], proj[n:], self.temperature, groups=y_true[:, -1])
        return loss + self.contrastive_weight * pair

    def initialize_module(self):
        from ._modules import he_init_convs

        super().initialize_module()
        he_init_convs(self.module_)
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


# What ``ConvEmbedder._net_init_params`` writes, and what a saved model may hold:
# name -> (kind, low, high). Sizes are bounded so that a crafted file cannot make
# the loader build a huge network; the weights' size bounds them again below.
_INT_BOUNDS = {
    "module__n_mels": (1, 4096),
    "module__n_filters": (1, 4096),
    "module__n_conv": (1, 16),
    "module__embedding_dim": (1, 65536),
    "max_epochs": (0, 2**31),
    "batch_size": (1, 2**31),
    "patch_frames": (1, 2**20),
    "patch_hop": (1, 2**20),
    "patches_per_track": (1, 2**20),
    "sequence_length": (1, 2**20),
    "patch_seed": (0, 2**63),
}
_CHOICES = {
    "module__aggregate": ("mean", "gru"),
    "aggregate": ("mean", "gru"),
    "pad_mode": ("wrap", "constant"),
}
_OTHER_KEYS = (
    "module__head_sizes",
    "module__pooling",
    "module__hidden_units",
    "module__dropout",
    "criterion__heads",
    "criterion__class_weights",
    "lr",
    "predict_nonlinearity",
    "verbose",
)
_NET_INIT_KEYS = frozenset(_INT_BOUNDS) | frozenset(_CHOICES) | frozenset(_OTHER_KEYS)
# written only for a net trained with the contrastive loss (y=None or
# contrastive_weight > 0): all four or none
_CONTRASTIVE_KEYS = frozenset(
    {"module__projection_dim", "module__augment", "contrastive_weight", "temperature"}
)


def _contrastive_problem(net_init):
    """Why the contrastive parameters of ``net_init`` are invalid, or None."""
    if not _is_int(net_init["module__projection_dim"], 1, 65536):
        return "_net_init['module__projection_dim'] is not an int in [1, 65536]"
    for name in ("contrastive_weight", "temperature"):
        value = net_init[name]
        if not (isinstance(value, Real) and 0 < value < math.inf):
            return f"_net_init[{name!r}]={value!r} is not a positive number"
    augment, n_mels = net_init["module__augment"], net_init["module__n_mels"]
    if augment is None:
        return None
    if not isinstance(augment, dict) or set(augment) != {"mean", "scale"}:
        return "_net_init['module__augment'] must be None or a dict of mean and scale"
    for name in ("mean", "scale"):
        values = augment[name]
        if not (
            isinstance(values, (list, tuple))
            and len(values) == n_mels
            and all(isinstance(v, Real) and math.isfinite(v) for v in values)
        ):
            return f"_net_init['module__augment'][{name!r}] must be {n_mels} finite numbers"
    return None


def _is_int(value, low, high):
    return isinstance(value, Integral) and not isinstance(value, bool) and low <= value <= high


def _int_list(value, low, high):
    return isinstance(value, (list, tuple)) and all(_is_int(v, low, high) for v in value)


def _check_heads(heads, class_weights, head_sizes):
    if not isinstance(heads, (list, tuple)) or len(heads) != len(head_sizes):
        return "criterion__heads must be one (kind, start, stop, weight) per head"
    for i, head in enumerate(heads):
        ok = isinstance(head, (list, tuple)) and len(head) == 4
        kind, start, stop, weight = head if ok else (None,) * 4
        if not (ok and kind in ("class", "regression") and _is_int(start, 0, 2**31)):
            return f"criterion__heads[{i}]={head!r} is not (kind, start, stop, weight)"
        if not (_is_int(stop, start + 1, 2**31) and isinstance(weight, Real)):
            return f"criterion__heads[{i}]={head!r} is not (kind, start, stop, weight)"
    if not isinstance(class_weights, (list, tuple)) or len(class_weights) != len(heads):
        return "criterion__class_weights must hold one entry per head"
    for i, (cw, size) in enumerate(zip(class_weights, head_sizes)):
        if cw is None:
            continue
        arr = np.asarray(cw) if isinstance(cw, (list, tuple, np.ndarray)) else None
        if arr is None or arr.dtype.kind not in "fiu" or arr.shape != (size,):
            return f"criterion__class_weights[{i}] must be None or {size} numbers"
    return None


def _net_init_problem(net_init, n_weights):
    """Why ``net_init`` (read from a file) cannot be a saved net's parameters, or None."""
    if not isinstance(net_init, dict) or not all(isinstance(k, str) for k in net_init):
        return f"_net_init is a {type(net_init).__name__}, not a dict of parameters"
    contrastive = bool(_CONTRASTIVE_KEYS & set(net_init))
    expected = _NET_INIT_KEYS | (_CONTRASTIVE_KEYS if contrastive else frozenset())
    unknown = sorted(set(net_init) - expected)
    missing = sorted((expected - {"verbose"}) - set(net_init))
    if unknown or missing:
        return f"_net_init has unknown keys {unknown} and lacks {missing}"
    for name, (low, high) in _INT_BOUNDS.items():
        if not _is_int(net_init[name], low, high):
            return f"_net_init[{name!r}]={net_init[name]!r} is not an int in [{low}, {high}]"
    for name, choices in _CHOICES.items():
        if net_init[name] not in choices:
            return f"_net_init[{name!r}]={net_init[name]!r} is not one of {choices}"
    heads, hidden = net_init["module__head_sizes"], net_init["module__hidden_units"]
    # a net trained without targets has no head (its projection head is the output)
    no_heads = not heads and not contrastive
    if not _int_list(heads, 1, 2**20) or no_heads or not _int_list(hidden, 1, 65536):
        return "_net_init's head sizes and hidden units must be lists of positive ints"
    if contrastive:
        problem = _contrastive_problem(net_init)
        if problem:
            return problem
    pooling = net_init["module__pooling"]
    if not (
        isinstance(pooling, (list, tuple))
        and pooling
        and set(pooling) <= {"mean", "max", "l2"}
        and len(set(pooling)) == len(pooling)
    ):
        return f"_net_init['module__pooling']={pooling!r} is not a tuple of mean, max, l2"
    for name, low, high in (("module__dropout", 0.0, 1.0), ("lr", 0.0, math.inf)):
        value = net_init[name]
        if not (isinstance(value, Real) and low <= value < high):
            return f"_net_init[{name!r}]={value!r} is not a number in [{low}, {high})"
    if net_init["predict_nonlinearity"] is not None:
        return "_net_init['predict_nonlinearity'] must be None"
    if not isinstance(net_init.get("verbose", 0), Integral):
        return "_net_init['verbose'] must be an int"
    problem = _check_heads(
        net_init["criterion__heads"], net_init["criterion__class_weights"], heads
    )
    if problem:
        return problem
    # the network these sizes describe has at least this many float32 weights
    f, emb = net_init["module__n_filters"], net_init["module__embedding_dim"]
    widths = [f, *hidden, emb]
    n_params = 4 * f * (net_init["module__n_mels"] + (net_init["module__n_conv"] - 1) * f)
    n_params += sum(a * b for a, b in zip(widths, widths[1:])) + emb * sum(heads)
    if n_params > n_weights:
        return (
            f"_net_init describes a network of at least {n_params} weights, but the "
            f"file holds {n_weights}"
        )
    return None


def _load_weights(weights):
    """The tensors of :func:`_net_to_state`'s bytes, or a ValueError naming the cause."""
    if not isinstance(weights, bytes):
        raise ValueError(f"the saved network weights are a {type(weights).__name__}, not bytes")
    try:
        tensors = torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        # torch's own message suggests weights_only=False, which would run code
        # from the file: never pass that on
        reason = str(exc).split("\n")[0].split(". ")[0][:200]
        raise ValueError(
            "the saved network weights are not a plain tensor archive and were "
            f"refused ({type(exc).__name__}: {reason})"
        ) from None
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise ValueError("the saved network weights are not a dict of named tensors")
    return tensors


def _net_from_state(net_init, weights, history, device):
    """Rebuild a ``_PatchNet`` from :func:`_net_to_state`'s data, ready for inference.

    The weights are read with ``torch.load(weights_only=True)``. Everything is
    checked before the network is built: the weights must be a dict of named
    tensors, ``net_init`` must hold the known parameters with valid types and
    sizes no larger than the weights; a problem raises ValueError. A net saved
    on a GPU loads on the CPU, with a ``DeviceWarning``, where torch finds no
    CUDA device.
    """
    from ._modules import MultiHeadNet

    return _rebuild_net(
        _PatchNet,
        MultiHeadNet,
        _net_init_problem,
        "ConvEmbedder",
        net_init,
        weights,
        history,
        device,
    )


def _rebuild_net(net_cls, module_cls, problem_of, owner, net_init, weights, history, device):
    """Checked rebuild of a fitted ``net_cls`` around ``module_cls`` (shared by
    :func:`_net_from_state` and the multimodal embedder's): ``problem_of(net_init,
    n_weights)`` names what is wrong with the saved parameters, ``owner`` is the
    estimator named in the messages."""
    from ._modules import MultiTargetLoss

    tensors = _load_weights(weights)  # builds tensors only, bounded by the file's size
    problem = problem_of(net_init, sum(t.numel() for t in tensors.values()))
    if problem:
        raise ValueError(f"the saved network's parameters are invalid: {problem}")
    try:
        history = None if history is None else History(json.loads(history))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the saved training history is not valid JSON ({exc})") from None
    device = device or "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"{owner} was saved with device={device!r}, but torch finds no "
            "CUDA device here; the net is loaded on device='cpu'",
            DeviceWarning,
            stacklevel=4,
        )
        device = "cpu"
    net = net_cls(module_cls, MultiTargetLoss, device=device, **net_init)
    net.initialize()
    try:
        net.module_.load_state_dict(tensors)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ValueError(f"the saved weights do not fit the saved network ({reason})") from None
    net.module_.to(device)
    net.module_.eval()
    if history is not None:
        net.history_ = history
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


# ------------------------------------------------- building the net for an estimator
_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}
_PROJECTION_DIM = 64  # output of the contrastive projection head


def net_heads(est, targets, Y):
    """Output size, loss description and class weights of every target's head."""
    head_sizes, loss_heads, class_weights = [], [], []
    for t in targets:
        if t["kind"] == "class":
            head_sizes.append(len(t["classes"]))
            cw = None
            if est.class_weight == "balanced":
                counts = np.bincount(Y[:, t["start"]].astype(int), minlength=len(t["classes"]))
                cw = len(Y) / (len(t["classes"]) * np.maximum(counts, 1))
            class_weights.append(cw)
        else:
            head_sizes.append(t["stop"] - t["start"])
            class_weights.append(None)
        loss_heads.append((t["kind"], t["start"], t["stop"], t["weight"]))
    return head_sizes, loss_heads, class_weights


def net_init_params(est, targets, Y, patch_seed, unlabeled=False):
    """The ``_PatchNet`` parameters, as plain data (pickled next to the weights)."""
    head_sizes, loss_heads, class_weights = net_heads(est, targets, Y)
    contrastive = {}
    weight = 1.0 if unlabeled else float(est.contrastive_weight)
    if weight > 0:  # only then: a supervised net keeps its old parameters
        contrastive = dict(
            module__projection_dim=_PROJECTION_DIM,
            module__augment=(
                dict(mean=est.mean_.tolist(), scale=est.scale_.tolist()) if est.augment else None
            ),
            contrastive_weight=weight,
            temperature=float(est.temperature),
        )
    return contrastive | dict(
        module__n_mels=int(est.n_features_in_),
        module__head_sizes=[int(h) for h in head_sizes],
        module__aggregate=est.aggregate,
        module__n_filters=int(est.n_filters),
        module__n_conv=int(est.n_conv),
        module__pooling=tuple(est.pooling),
        module__hidden_units=tuple(int(u) for u in est.hidden_units),
        module__embedding_dim=int(est.embedding_dim),
        module__dropout=float(est.dropout),
        criterion__heads=loss_heads,
        criterion__class_weights=class_weights,
        lr=float(est.lr),
        max_epochs=int(est.max_epochs),
        batch_size=int(est.batch_size),
        predict_nonlinearity=None,
        verbose=est.verbose,
        patch_frames=int(est.patch_frames),
        patch_hop=int(est._hop()),
        patches_per_track=int(est.patches_per_track),
        pad_mode=est.pad_mode,
        sequence_length=int(est.sequence_length),
        aggregate=est.aggregate,
        patch_seed=patch_seed,
    )


def fit_from_trunk(net, data, trunk):
    """Fine-tune ``net`` on ``data`` from pretrained trunk weights.

    The net is initialised (new heads, seeded by the caller's torch seed), the
    tensors ``trunk`` (``encoder.*`` of a pretrained ``MultiHeadNet``) replace its
    trunk's, and it is trained for ``max_epochs`` as :meth:`skorch.NeuralNet.fit`
    would (``partial_fit`` after ``initialize`` is skorch's ``fit``).
    """
    net.initialize()
    missing, unexpected = net.module_.load_state_dict(trunk, strict=False)
    wrong = list(unexpected) + [k for k in missing if k.startswith("encoder.")]
    if wrong:
        raise ValueError(f"the pretrained trunk does not fit the network: {wrong[:5]}")
    return net.partial_fit(data, y=None)


def net_optimizer(est):
    """The torch optimizer class and its ``optimizer__*`` net parameters."""
    import torch

    if callable(est.optimizer):
        optimizer, opt_kwargs = est.optimizer, {}
    else:
        optimizer = getattr(torch.optim, _OPTIMIZERS[est.optimizer])
        opt_kwargs = {"optimizer__momentum": 0.9} if est.optimizer == "sgd" else {}
    if est.weight_decay:
        opt_kwargs["optimizer__weight_decay"] = est.weight_decay
    return optimizer, opt_kwargs


def net_callbacks(est):
    """Copies of the user's callbacks, plus skorch's early stopping if asked."""
    from skorch.callbacks import EarlyStopping

    callbacks = [copy.deepcopy(cb) for cb in (est.callbacks or [])]
    if est.early_stopping:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(monitor="valid_loss", patience=est.n_iter_no_change, load_best=True),
            )
        )
    return callbacks


def raise_interrupted(est, net):
    """Raise the Ctrl-C's ``KeyboardInterrupt`` that skorch swallowed, or warn."""
    done = sum("train_loss" in row for row in net.history)
    what = f"ConvEmbedder.fit was interrupted after {done} of {est.max_epochs} epochs"
    if est.on_interrupt == "raise":
        raise KeyboardInterrupt(
            f"{what}; the estimator is left as it was before fit "
            "(on_interrupt='keep' keeps the partly trained net instead)"
        )
    warnings.warn(
        f"{what}; keeping the partly trained net (on_interrupt='keep')",
        UserWarning,
        stacklevel=4,
    )


def check_fit_params(est, y):
    """Checks between parameters that ``_parameter_constraints`` cannot express."""
    import torch

    from ._modules import min_patch_frames

    pooling = tuple(est.pooling)
    if not pooling or not set(pooling) <= {"mean", "max", "l2"}:
        raise ValueError(
            f"pooling={est.pooling!r} must be a non-empty tuple of 'mean', 'max' and 'l2'"
        )
    if any(int(u) < 1 for u in est.hidden_units):
        raise ValueError(f"hidden_units={est.hidden_units!r} must be positive ints")
    min_frames = min_patch_frames(est.n_conv)
    if est.patch_frames < min_frames:
        raise ValueError(
            f"patch_frames={est.patch_frames} is too short for n_conv="
            f"{est.n_conv} conv layers: it must be at least {min_frames}"
        )
    if est._contrastive_weight(y) > 0 and est.aggregate != "mean":
        raise ValueError(
            f"aggregate={est.aggregate!r}: contrastive training (y=None or "
            "contrastive_weight > 0) needs aggregate='mean'"
        )
    if y is None and est.validation_fraction is not None:
        raise ValueError(
            f"validation_fraction={est.validation_fraction}: the validation loss "
            "needs targets; fit without y trains with no validation"
        )
    if est.early_stopping and est.validation_fraction is None:
        raise ValueError(
            "early_stopping=True needs validation_fraction (the valid_loss it monitors)"
        )
    if str(est.device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={est.device!r} but torch finds no CUDA device")
