"""ConvEmbedder: a Dieleman-style CNN, trained on patches through skorch.

The estimator owns a fitted skorch net (``net_``) instead of subclassing
:class:`skorch.NeuralNet`: skorch's ``__init__`` sets public attributes and validates
its own parameters, which breaks scikit-learn's estimator contract. Training is
skorch's (callbacks, history, early stopping, devices). The net, ``_PatchNet``, lives in
``_net.py``; the patch datasets and the track split it trains on in ``_patches.py``;
the torch modules in ``_modules.py``.

torch, skorch and ``_net`` are imported inside the methods that need them, so that
``import sklearn_music`` stays light.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._net_state import NetStateMixin
from ._patches import (
    _encode_targets,
    _fixed_offsets,
    _ragged_spectrograms,
    _TrackData,
    _TrackSplit,
)
from ._pretrained_weights import MODELS
from .utils._sklearn_compat import Interval, StrOptions, _fit_context

__all__ = ["ConvEmbedder"]


_OPTIMIZERS = ("adam", "adamw", "sgd")  # torch.optim classes: see _net._OPTIMIZERS


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------
class ConvEmbedder(NetStateMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Track embeddings from a Dieleman-style CNN trained on spectrogram patches.

    A 1-D convolutional network over time, with the mel bands as input channels
    (Dieleman's content-based recommendation network), is trained by skorch on
    random fixed-size patches of every track to predict one or several targets
    (genre, artist, collaborative-filtering factors...), or, without targets, by a
    contrastive stand-in task: two random patches of the same track must embed
    nearer each other than the patches of the other tracks of the batch (NT-Xent).
    The contrastive task needs no output per track, so it scales to any number of
    tracks; it can also be added to the supervised heads (``contrastive_weight``).
    :meth:`transform` returns
    the embedding layer of each track: the mean of the embeddings of its patches
    taken every ``patch_hop`` frames (or a GRU over them, ``aggregate="gru"``).

    Parameters
    ----------
    embedding_dim : int, default=128
        Size of the embedding (the output of :meth:`transform`). 128 is the
        pretrained model's size, so that ``init="auto"`` can start from it (it was 64
        before ``init="auto"`` became the default; from random weights both sizes
        scored the same, see ``docs/research_log_ssl.rst``).
    patch_frames : int, default=96
        Length of a patch in frames (96 frames ≈ 3 s at ``sr=16000``,
        ``hop_length=512``). Tracks shorter than a patch are padded
        (see ``pad_mode``). Must be at least
        ``sklearn_music._modules.min_patch_frames(n_conv)``
        (9 for ``n_conv=3``).
    patch_hop : int, default=None
        Hop between the patches averaged by :meth:`transform`; ``None`` means
        ``patch_frames // 2``.
    patches_per_track : int, default=8
        Random patches drawn from every track in each training epoch.
    n_filters : int, default=64
        Filters of each conv layer (Dieleman used 256).
    n_conv : int, default=3
        Number of conv layers (filters 4 frames long; max-pool 4 after the first,
        2 after the others, global pooling after the last).
    pooling : tuple of {"mean", "max", "l2"}, default=("mean", "max", "l2")
        Global temporal pooling statistics, concatenated.
    hidden_units : tuple of int, default=(256,)
        Fully connected layers between the pooling and the embedding layer.
    dropout : float, default=0.3
        Dropout before every fully connected layer.
    aggregate : {"mean", "gru"}, default="mean"
        How a track's patches become its embedding: the mean of the patch
        embeddings, or the last state of a GRU run over them (then trained on runs
        of ``sequence_length`` consecutive patches).
    sequence_length : int, default=4
        Patches per training sequence when ``aggregate="gru"``.
    pad_mode : {"wrap", "constant"}, default="wrap"
        How a track shorter than a patch is padded: repeated, or zeros (the band
        means after normalisation).
    target_weights : dict, default=None
        Weight of each target's loss, by target name (dict keys or DataFrame
        columns; a single target is named after its ``name`` when it is a named
        pandas Series, else ``"y"``). Missing names weigh 1.
    class_weight : {"balanced"}, default=None
        ``"balanced"`` weighs the cross-entropy of each class by the inverse of its
        frequency.
    predict_target : str, default=None
        Target used by :meth:`predict` and :meth:`predict_proba`; ``None`` means the
        first classification target (or the first target when there is none).
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        The optimizer (``"sgd"`` uses momentum 0.9).
    lr : float, default=1e-3
        Learning rate.
    weight_decay : float, default=1e-4
        L2 penalty of the optimizer.
    batch_size : int, default=32
        Patches per mini-batch (sequences with ``aggregate="gru"``; tracks at
        inference).
    contrastive_weight : float, default=0.0
        Weight of the contrastive loss added to the heads' losses when ``y`` is
        given (``0``: none, the patches are drawn one at a time as before). Without
        ``y`` the contrastive loss is the whole objective, whatever this weight.
        Contrastive training draws ``patches_per_track`` *pairs* of patches of every
        track per epoch, passes each patch through random spectrogram augmentations
        (``augment``), the network and a projection head, and scores every pair
        against the other tracks' patches of its batch (``batch_size`` pairs).
    temperature : float, default=0.1
        Temperature of the contrastive (NT-Xent) loss.
    augment : bool, default=True
        Augment the patches in contrastive training: random gain and spectral tilt
        (+-6 dB), a roll of the mel bands by up to 2 bands, another patch of the
        batch mixed in 10-20 dB lower, a time and a frequency mask (see
        ``sklearn_music._contrastive.SpecAugment``).
    max_epochs : int, default=20
        Training epochs. Each epoch draws ``patches_per_track`` new random patches
        from every track; on the real-music benchmark, the number of patches seen
        (20 epochs x 8 patches) mattered more than any other setting.
    validation_fraction : float, default=None
        Fraction of the tracks held out to compute ``valid_loss`` every epoch
        (stratified by the first classification target). ``None``: no validation.
    early_stopping : bool, default=False
        Stop when ``valid_loss`` has not improved for ``n_iter_no_change`` epochs
        and restore the best weights (skorch's ``EarlyStopping``); needs
        ``validation_fraction``.
    n_iter_no_change : int, default=5
        Patience of the early stopping.
    callbacks : list, default=None
        More skorch callbacks (or ``(name, callback)`` pairs); copied at fit.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``. A model trained on a GPU unpickles on a
        machine without one (on the CPU, with a ``DeviceWarning``).
    n_jobs : int, default=None
        Torch threads used in ``fit`` (``None``: torch's setting; ``-1``: all
        cores) and at inference (``transform``, ``predict``; ``None``: one thread,
        which was several times faster than two on a busy 2-core machine, see
        ``benchmarks/bench_e2e.py``).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, dropout, patch positions, shuffling and the validation
        split: the same value gives identical results on the CPU.
    verbose : int, default=0
        ``> 0`` prints skorch's table of epochs.
    init : {"auto", "soundtracks-v1"} or None, default="auto"
        Where training starts. A model name: fine-tune from that pretrained model
        (:mod:`sklearn_music.pretrained`): its trunk (conv layers and fully connected
        layers up to the embedding) starts from the shipped weights, the heads for
        ``y`` are new, and the spectrograms are normalised with the pretrained
        model's band statistics (``mean_``, ``scale_``). The architecture parameters
        (``embedding_dim``, ``n_filters``, ``n_conv``, ``pooling``,
        ``hidden_units``) and the mel bands must be the pretrained model's
        (``soundtracks-v1``: the defaults, 128 mel bands); :meth:`fit` raises
        ValueError naming them otherwise. ``"auto"``: ``"soundtracks-v1"`` when they
        are, random weights when they are not (``init_`` says which). ``None``:
        random initial weights. On the dev set of ``benchmarks/bench_real.py``
        (album labels, 3 seeds) fine-tuning from ``soundtracks-v1`` reached P@1
        0.449 against 0.374 from random weights. ``soundtracks-v1`` was trained on
        ``MelSpectrogramTransformer()``'s default log-mel (16 kHz, 128 bands, hop
        512): spectrograms of 128 bands computed with other settings get its trunk
        too under ``"auto"``; set ``init=None`` for them.
    on_interrupt : {"raise", "keep"}, default="raise"
        What Ctrl-C (SIGINT) during training does. ``"raise"``:
        :meth:`fit` raises it and the estimator is left exactly as it was before
        the call (unfitted, or with its previous fit intact). ``"keep"``: stop
        training and keep the net as it is, like skorch does; :meth:`fit` returns
        normally and warns how many epochs were completed. (A callback that raises
        ``KeyboardInterrupt`` to end training, as skorch's ``EarlyStopping`` does,
        still ends it quietly.)

    Attributes
    ----------
    init_ : str or None
        The pretrained model that training started from (``init``, or what
        ``init="auto"`` chose), or None for random initial weights.
    net_ : skorch.NeuralNet
        The fitted net; ``net_.history`` holds the losses of every epoch and
        ``net_.module_`` the torch module (``sklearn_music._modules.MultiHeadNet``).
    mean_ : ndarray of shape (n_mels,)
        Mean of every mel band over the training frames.
    scale_ : ndarray of shape (n_mels,)
        Standard deviation of every mel band over the training frames (1 where 0).
    targets_ : list of dict
        One entry per target (empty when fitted without ``y``): ``name``,
        ``kind`` (``"class"`` or ``"regression"``), ``classes`` (classification)
        or ``mean``/``scale`` (regression targets are standardised column by
        column for training; predictions are scaled back).
    classes_ : ndarray of shape (n_classes,)
        Classes of the target used by :meth:`predict` (only if it is a
        classification target).
    n_features_in_ : int
        Number of mel bands.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the mel bands, when fitted on a DataFrame of single-frame spectra.

    See Also
    --------
    sklearn_music.MelSpectrogramTransformer : Gives the spectrograms ConvEmbedder
        takes.

    Notes
    -----
    ``X`` is a 3-D array ``(n_tracks, n_mels, n_frames)`` or a list / tuple / 1-D
    object array of 2-D ``(n_mels, n_frames_i)`` arrays (the ragged output of
    :class:`~sklearn_music.MelSpectrogramTransformer`). A 2-D array
    ``(n_tracks, n_mels)`` is read as single-frame spectrograms (e.g. mean spectra).

    ``y`` is a 1-D array of class labels (cross-entropy; strings work), a 1-D
    continuous array or a 2-D float array (mean squared error on standardised
    columns), or a dict / DataFrame of such targets: one output head each, their
    losses summed with ``target_weights``.

    Each training epoch draws ``patches_per_track`` random patches of every track,
    so a long track gives many examples (van den Oord et al., 2013: 3-s windows,
    predictions averaged over consecutive windows).

    References
    ----------
    .. [1] S. Dieleman, "Recommending music on Spotify with deep learning", 2014.
    .. [2] A. van den Oord, S. Dieleman, B. Schrauwen, "Deep content-based music
       recommendation", NIPS 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music import ConvEmbedder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(12, 16, 40)).astype(np.float32)
    >>> y = np.repeat(["rock", "jazz", "folk"], 4)
    >>> X[y == "rock", :4] += 2.0                 # a planted pattern per class
    >>> emb = ConvEmbedder(embedding_dim=8, n_filters=8, patch_frames=16,
    ...                    max_epochs=2, random_state=0)
    >>> emb.fit_transform(X, y).shape
    (12, 8)
    >>> emb.get_feature_names_out()[:2]
    array(['convembedder0', 'convembedder1'], dtype=object)
    >>> emb.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "patch_frames": [Interval(Integral, 1, None, closed="left")],
        "patch_hop": [Interval(Integral, 1, None, closed="left"), None],
        "patches_per_track": [Interval(Integral, 1, None, closed="left")],
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "n_conv": [Interval(Integral, 1, None, closed="left")],
        "pooling": [tuple, list],
        "hidden_units": [tuple, list],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "aggregate": [StrOptions({"mean", "gru"})],
        "sequence_length": [Interval(Integral, 1, None, closed="left")],
        "pad_mode": [StrOptions({"wrap", "constant"})],
        "target_weights": [dict, None],
        "class_weight": [StrOptions({"balanced"}), None],
        "predict_target": [str, None],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), callable],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "contrastive_weight": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "augment": ["boolean"],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "early_stopping": ["boolean"],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "callbacks": [list, None],
        "device": [str],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "init": [StrOptions(set(MODELS) | {"auto"}), None],
        "on_interrupt": [StrOptions({"raise", "keep"})],
    }

    def __init__(
        self,
        *,
        embedding_dim=128,
        patch_frames=96,
        patch_hop=None,
        patches_per_track=8,
        n_filters=64,
        n_conv=3,
        pooling=("mean", "max", "l2"),
        hidden_units=(256,),
        dropout=0.3,
        aggregate="mean",
        sequence_length=4,
        pad_mode="wrap",
        target_weights=None,
        class_weight=None,
        predict_target=None,
        optimizer="adam",
        lr=1e-3,
        weight_decay=1e-4,
        batch_size=32,
        contrastive_weight=0.0,
        temperature=0.1,
        augment=True,
        max_epochs=20,
        validation_fraction=None,
        early_stopping=False,
        n_iter_no_change=5,
        callbacks=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
        init="auto",
        on_interrupt="raise",
    ):
        self.embedding_dim = embedding_dim
        self.patch_frames = patch_frames
        self.patch_hop = patch_hop
        self.patches_per_track = patches_per_track
        self.n_filters = n_filters
        self.n_conv = n_conv
        self.pooling = pooling
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.aggregate = aggregate
        self.sequence_length = sequence_length
        self.pad_mode = pad_mode
        self.target_weights = target_weights
        self.class_weight = class_weight
        self.predict_target = predict_target
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature
        self.augment = augment
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.callbacks = callbacks
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.init = init
        self.on_interrupt = on_interrupt

    # ---------------------------------------------------------------- input checks
    def _check_X(self, X, *, reset):
        """Return a list of float32 (n_mels, n_frames_i) arrays."""
        specs = _ragged_spectrograms(X)
        if specs is not None:
            n_mels = specs[0].shape[0]
            if reset:
                self.n_features_in_ = n_mels
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif n_mels != self.n_features_in_:
                raise ValueError(
                    f"X has {n_mels} features (mel bands), but ConvEmbedder is "
                    f"expecting {self.n_features_in_} features as input."
                )
            return specs
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=[np.float32, np.float64])
        if X.ndim == 2:  # single-frame spectra
            X = X[:, :, None]
        elif X.ndim != 3:
            raise ValueError(
                f"X has shape {X.shape}; expected (n_tracks, n_mels, n_frames), "
                "(n_tracks, n_mels) or a list of (n_mels, n_frames_i) arrays"
            )
        if X.shape[1] == 0 or X.shape[2] == 0:
            raise ValueError(
                f"X has shape {X.shape} (n_tracks, n_mels, n_frames); a spectrogram "
                "needs at least one mel band and one frame"
            )
        X = X.astype(np.float32, copy=False)
        return list(X)

    def _predict_index(self, targets=None):
        """Index of the ``predict_target`` in ``targets`` (default: ``targets_``)."""
        targets = self.targets_ if targets is None else targets
        if not targets:
            raise ValueError(
                "ConvEmbedder was fitted without y (contrastive training): it has no "
                "target to predict; use transform"
            )
        names = [t["name"] for t in targets]
        if self.predict_target is not None:
            if self.predict_target not in names:
                raise ValueError(
                    f"predict_target={self.predict_target!r} is not a target; the "
                    f"targets are {names}"
                )
            return names.index(self.predict_target)
        kinds = [t["kind"] for t in targets]
        return kinds.index("class") if "class" in kinds else 0

    def _hop(self):
        return self.patch_hop if self.patch_hop is not None else max(1, self.patch_frames // 2)

    # ---------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the network on random patches of the tracks.

        Parameters
        ----------
        X : ndarray of shape (n_tracks, n_mels, n_frames) or list of ndarray
            Log-mel spectrograms: a 3-D array, or a list of 2-D
            ``(n_mels, n_frames_i)`` arrays of any lengths.
        y : array-like of shape (n_tracks,) or (n_tracks, n_outputs), default=None
            Class labels or float targets, or a dict / DataFrame of several targets
            by name. ``None``: self-supervised (contrastive) training, no heads.

        Returns
        -------
        self : ConvEmbedder
            The fitted estimator.

        Raises
        ------
        KeyboardInterrupt
            If training is interrupted (Ctrl-C) and ``on_interrupt="raise"``. Then,
            as after any error in ``fit``, the estimator keeps the state it had
            before the call: a new estimator stays unfitted, a fitted one keeps its
            previous fit (no mixture of old and new attributes).
        """
        saved = dict(self.__dict__)
        try:
            return self._fit(X, y)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit(self, X, y):
        from ._modules import MultiHeadNet, MultiTargetLoss
        from ._net import (
            _PatchNet,
            _SigintWatch,
            _torch_context,
            check_fit_params,
            fit_from_trunk,
            net_callbacks,
            net_init_params,
            net_optimizer,
            raise_interrupted,
        )

        check_fit_params(self, y)
        specs = self._check_X(X, reset=True)
        if y is None:
            targets, Y = [], np.zeros((len(specs), 0), dtype=np.float32)
        else:
            targets, Y = _encode_targets(y, len(specs), self.target_weights)
        pred = targets[self._predict_index(targets)] if targets else None
        if self._contrastive_weight(y) > 0:  # last column: the track index
            Y = np.hstack([Y, np.arange(len(specs), dtype=np.float32)[:, None]])
        trunk = self._pretrained_trunk(specs)
        data = _TrackData(self._fit_normalisation(specs, trunk is not None), Y)

        rs = check_random_state(self.random_state)
        torch_seed, patch_seed, split_seed = (int(s) for s in rs.randint(2**31 - 1, size=3))
        # Everything the net needs to be rebuilt for inference, as plain data: it is
        # what pickling stores next to the weights (see __getstate__).
        net_init = net_init_params(self, targets, Y, patch_seed, y is None)
        optimizer, opt_kwargs = net_optimizer(self)
        callbacks = net_callbacks(self)
        net = _PatchNet(
            MultiHeadNet,
            MultiTargetLoss,
            optimizer=optimizer,
            train_split=self._train_split(targets, split_seed),
            callbacks=callbacks or None,
            device=self.device,
            **net_init,
            **opt_kwargs,
        )
        with _torch_context(self.n_jobs, seed=torch_seed, device=self.device):
            with _SigintWatch() as sigint:
                if trunk is None:
                    net.fit(data, y=None)
                else:
                    fit_from_trunk(net, data, trunk)
        if sigint.received:
            raise_interrupted(self, net)
        self.net_ = net
        self._net_init = net_init
        self.targets_ = [
            {k: v for k, v in t.items() if k not in ("start", "stop")} for t in targets
        ]
        if pred is not None and pred["kind"] == "class":
            self.classes_ = pred["classes"]
        elif hasattr(self, "classes_"):
            del self.classes_
        self._n_features_out = self.embedding_dim
        return self

    def _contrastive_weight(self, y):
        """Weight of the contrastive loss: 1 without targets, else the parameter."""
        return 1.0 if y is None else float(self.contrastive_weight)

    def _pretrained_trunk(self, specs):
        """The trunk tensors of ``init`` (checked against ``specs``), or None.

        Sets ``init_`` (the model started from, or None) and, with a model, ``mean_``
        and ``scale_`` to its band statistics.
        """
        from ._pretrained_weights import (
            DEFAULT_MODEL,
            check_architecture,
            fits_architecture,
            read_payload,
            trunk_state,
        )

        self.init_ = None
        if self.init is None:
            return None
        n_mels = specs[0].shape[0]
        payload = read_payload(DEFAULT_MODEL if self.init == "auto" else self.init)
        if self.init == "auto":
            if not fits_architecture(self, payload, n_mels):
                return None
            self.init_ = DEFAULT_MODEL
        else:
            check_architecture(self, payload, n_mels)
            self.init_ = self.init
        self.mean_ = payload["mean"].numpy().astype(np.float32)
        self.scale_ = payload["scale"].numpy().astype(np.float32)
        return trunk_state(payload)

    def _fit_normalisation(self, specs, pretrained=False):
        """Learn ``mean_`` and ``scale_`` of every mel band; return ``specs`` normalised.

        ``pretrained``: keep the ``mean_`` and ``scale_`` of the ``init`` model.
        """
        if pretrained:
            return self._normalise(specs)
        frames = np.concatenate(specs, axis=1).astype(np.float64)
        self.mean_ = frames.mean(axis=1).astype(np.float32)
        scale = frames.std(axis=1)
        scale[scale < 1e-8] = 1.0
        self.scale_ = scale.astype(np.float32)
        del frames
        return self._normalise(specs)

    def _train_split(self, targets, split_seed):
        """skorch ``train_split``: hold out tracks, or None without validation."""
        if self.validation_fraction is None:
            return None
        first_class = next((t["start"] for t in targets if t["kind"] == "class"), None)
        return _TrackSplit(self.validation_fraction, first_class, split_seed)

    def _normalise(self, specs):
        mean, scale = self.mean_[:, None], self.scale_[:, None]
        return [(s - mean) / scale for s in specs]

    # ---------------------------------------------------------------- inference
    def _infer(self, X, *, embeddings_only=False):
        """Embeddings and per-target outputs of each track (patches averaged).

        ``embeddings_only``: the embeddings alone (the heads are not run).
        """
        from ._inference import forward_tracks

        check_is_fitted(self)
        specs = self._normalise(self._check_X(X, reset=False))
        kinds = [t["kind"] for t in self.targets_]
        cols = forward_tracks(self.net_, specs, kinds, self.n_jobs, embeddings_only=embeddings_only)
        if self.aggregate == "mean":
            counts = np.array(
                [len(_fixed_offsets(s.shape[1], self.patch_frames, self._hop())) for s in specs]
            )
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            cols = [np.add.reduceat(c, starts, axis=0) / counts[:, None] for c in cols]
        return cols

    def transform(self, X):
        """Embed tracks: the mean (or GRU aggregate) of their patch embeddings.

        Parameters
        ----------
        X : ndarray of shape (n_tracks, n_mels, n_frames) or list of ndarray
            Log-mel spectrograms, as in :meth:`fit`.

        Returns
        -------
        X_emb : ndarray of shape (n_tracks, embedding_dim), dtype float32
            The track embeddings.
        """
        return self._infer(X, embeddings_only=True)[0].astype(np.float32)

    def predict_proba(self, X):
        """Class probabilities of the ``predict_target``, averaged over patches.

        Parameters
        ----------
        X : ndarray of shape (n_tracks, n_mels, n_frames) or list of ndarray
            Log-mel spectrograms, as in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_tracks, n_classes)
            Probabilities of ``classes_``.
        """
        check_is_fitted(self)
        i = self._predict_index()
        if self.targets_[i]["kind"] != "class":
            raise ValueError(
                f"predict_proba needs a classification target, but target "
                f"{self.targets_[i]['name']!r} is a regression target"
            )
        return self._infer(X)[1 + i]

    def predict(self, X):
        """Predict the ``predict_target``: a class label, or regression values.

        Class labels maximise the patch-averaged probabilities; regression outputs
        are averaged over patches and scaled back to the units of ``y``.

        Parameters
        ----------
        X : ndarray of shape (n_tracks, n_mels, n_frames) or list of ndarray
            Log-mel spectrograms, as in :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_tracks,) or (n_tracks, n_outputs)
            Predicted labels or values.
        """
        check_is_fitted(self)
        i = self._predict_index()
        t = self.targets_[i]
        out = self._infer(X)[1 + i]
        if t["kind"] == "class":
            return t["classes"][out.argmax(axis=1)]
        values = out * t["scale"] + t["mean"]
        return values[:, 0] if t["ndim"] == 1 else values

    # ------------------------------------------------------------- persistence
    _ADDED_PARAMS = {"on_interrupt": "raise", "init": None}  # saved before 0.2

    def _net_from_weights(self, weights, history):
        from ._net import _net_from_state

        return _net_from_state(self._net_init, weights, history, self.device)

    def __setstate__(self, state):
        super().__setstate__(state)
        # a model saved before ``init_`` existed started from ``init``: None or a name
        if "net_" in self.__dict__ and "init_" not in self.__dict__:
            self.init_ = self.init

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
