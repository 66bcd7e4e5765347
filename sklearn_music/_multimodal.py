"""MultimodalEmbedder: ConvEmbedder's audio branch plus lyrics and metadata branches.

A sibling of :class:`~sklearn_music.ConvEmbedder` rather than new parameters of it:
ConvEmbedder's input is a 3-D array (or a list) of spectrograms, which the
scikit-learn common checks exercise and every pipeline of the package passes on
(``MelSpectrogramTransformer`` → ``ConvEmbedder`` → ``NearestTracks``); a table with
a spectrogram column, a text column and metadata columns is another input contract,
with its own learned state (vocabulary, categories, scaling) and its own network.
What can be shared is: the convolutional branch
(:class:`~sklearn_music._modules.PatchEncoder`), the patch datasets
(``_patches``), the skorch net and its training machinery (``_net``), the target
encoding and the patch averaging of :meth:`ConvEmbedder.transform`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._net_state import NetStateMixin
from ._patches import _encode_targets, _fixed_offsets, _ragged_spectrograms
from ._side import (
    _encode_categories,
    _encode_numbers,
    _encode_texts,
    _fit_categories,
    _fit_numbers,
    _fit_vocabulary,
    _read_table,
)
from .utils._sklearn_compat import Interval, StrOptions, _fit_context

__all__ = ["MultimodalEmbedder"]

_POS_INT = [Interval(Integral, 1, None, closed="left")]


class MultimodalEmbedder(
    NetStateMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Track embeddings from audio, lyrics and metadata, trained on their targets.

    The network is ``Concat(TextRNN(lyrics), Embedding(metadata),
    Conv(spectrogram patch)) → FC → embedding → heads``. The audio branch is
    :class:`ConvEmbedder`'s convolutional network over a spectrogram patch; the
    text branch splits the lyrics with a plain regular expression
    (``sklearn_music._side.tokenize``), maps the tokens to a vocabulary learned
    in :meth:`fit` (unknown words share one id), embeds them and runs a GRU over
    them, mean-pooled; the metadata branch has one embedding table per
    categorical column and takes the numeric columns standardised. Each target
    of ``y`` has a head, as in ConvEmbedder.

    **Missing side inputs are normal.** An instrumental track (lyrics ``None``,
    NaN or empty), a missing category or number each have a learned "missing"
    representation; a category unseen in :meth:`fit` has a learned "unknown" one.
    In training each side input (the text, each metadata column) of a patch is
    replaced by "missing" with probability ``modality_dropout``, and every batch
    also goes through the network with all its side inputs missing (its loss
    weighted by ``audio_only_weight``), so that a model trained with lyrics and
    metadata still embeds a track that has neither (a column absent from ``X`` in
    :meth:`transform` reads as missing).

    :meth:`transform` embeds every patch of a track (taken every ``patch_hop``
    frames, each with the track's side inputs) and averages them, as
    :meth:`ConvEmbedder.transform` does.

    Parameters
    ----------
    spectrogram_column : str, default="spectrogram"
        Column of ``X`` holding each track's ``(n_mels, n_frames)`` log-mel
        spectrogram.
    text_column : str, default=None
        Column of lyrics (str; ``None``, NaN or ``""``: instrumental). ``None``:
        no text branch.
    categorical_columns : list of str, default=None
        Categorical metadata columns (artist, genre, label...), one embedding
        table each.
    numeric_columns : list of str, default=None
        Numeric metadata columns (year...), standardised with the mean and
        standard deviation seen in :meth:`fit`.
    modality_dropout : float, default=0.3
        Probability that a side input of a training patch is dropped (replaced
        by its missing representation), independently for the text and for
        every metadata column.
    audio_only_weight : float, default=1.0
        Every training batch also goes through the network with all its side
        inputs missing; the loss of that copy is added with this weight, so
        that the embedding of a track without side inputs is trained as an
        audio-only model would be (it doubles the audio branch's work in
        training). 0: no such copy. Without side-input columns it has no
        effect.
    min_count : int, default=2
        A word enters the vocabulary if it occurs at least this often in the
        training lyrics.
    max_vocabulary : int, default=5000
        Largest vocabulary (the most frequent words; padding and unknown not
        counted).
    max_tokens : int, default=64
        Tokens of a lyric the GRU reads (the first ones).
    token_dim : int, default=32
        Size of the token embeddings.
    text_dim : int, default=32
        Size of the GRU state (the text branch's output).
    metadata_dim : int, default=8
        Size of each categorical embedding.
    audio_dim : int, default=64
        Output size of the audio branch.
    embedding_dim : int, default=64
        Size of the embedding (the output of :meth:`transform`).
    patch_frames : int, default=96
        Length of a spectrogram patch in frames (at least 9 for ``n_conv=3``).
    patch_hop : int, default=None
        Hop between the patches averaged by :meth:`transform`; ``None`` means
        ``patch_frames // 2``.
    patches_per_track : int, default=8
        Random patches drawn from every track in each training epoch.
    n_filters : int, default=64
        Filters of each conv layer.
    n_conv : int, default=3
        Number of conv layers.
    pooling : tuple of {"mean", "max", "l2"}, default=("mean", "max", "l2")
        Global temporal pooling statistics of the audio branch.
    hidden_units : tuple of int, default=(128,)
        Fully connected layers between the concatenation and the embedding.
    dropout : float, default=0.3
        Dropout before every fully connected layer.
    pad_mode : {"wrap", "constant"}, default="wrap"
        How a track shorter than a patch is padded.
    target_weights : dict, default=None
        Weight of each target's loss, by target name (as in ConvEmbedder).
    class_weight : {"balanced"}, default=None
        ``"balanced"`` weighs each class by the inverse of its frequency.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        The optimizer.
    lr : float, default=1e-3
        Learning rate.
    weight_decay : float, default=1e-4
        L2 penalty of the optimizer.
    batch_size : int, default=32
        Patches per mini-batch.
    max_epochs : int, default=20
        Training epochs.
    device : str, default="cpu"
        Torch device.
    n_jobs : int, default=None
        Torch threads in ``fit`` and ``transform`` (``None``: torch's setting).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, dropout, modality dropout, patch positions and
        shuffling: the same value gives identical results on the CPU.
    verbose : int, default=0
        ``> 0`` prints skorch's table of epochs.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted net (``net_.module_`` is a
        ``sklearn_music._side_modules.MultimodalNet``).
    vocabulary_ : dict of str to int
        Token id of every word of the vocabulary (0 pads, 1 is unknown); empty
        without ``text_column``.
    categories_ : list of list of str
        Categories of every categorical column (as strings).
    numeric_mean_, numeric_scale_ : ndarray of shape (n_numeric,)
        Standardisation of the numeric columns.
    mean_, scale_ : ndarray of shape (n_mels,)
        Mean and standard deviation of every mel band over the training frames.
    targets_ : list of dict
        One entry per target (see :class:`ConvEmbedder`).
    n_features_in_ : int
        Number of mel bands.

    See Also
    --------
    ConvEmbedder : The audio-only embedder; its input is an array of spectrograms.
    sklearn_music.datasets.make_tracks : ``lyrics=True`` gives tracks with lyrics.

    Notes
    -----
    ``X`` is a pandas DataFrame or a dict of columns. A plain array of
    spectrograms (as for ConvEmbedder) is read as tracks without side inputs.
    ``y`` is required: class labels, numbers, or a dict / DataFrame of several
    targets (one head each). The spectrogram column can be computed from a path
    column with :func:`~sklearn_music.add_spectrograms`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_music import MultimodalEmbedder
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({
    ...     "spectrogram": list(rng.normal(size=(8, 16, 24)).astype(np.float32)),
    ...     "lyrics": ["la la love", "night night", None, "love me"] * 2,
    ...     "genre": ["rock", "jazz"] * 4,
    ...     "year": [1990, 2001, np.nan, 1975] * 2,
    ... })
    >>> y = np.repeat(["a", "b"], 4)
    >>> emb = MultimodalEmbedder(text_column="lyrics", categorical_columns=["genre"],
    ...                          numeric_columns=["year"], embedding_dim=4, n_filters=4,
    ...                          patch_frames=12, max_epochs=1, random_state=0)
    >>> emb.fit_transform(X, y).shape
    (8, 4)
    >>> emb.transform(X[["spectrogram"]]).shape      # no side inputs at all
    (8, 4)
    """

    _parameter_constraints: dict = {
        "spectrogram_column": [str],
        "text_column": [str, None],
        "categorical_columns": [list, tuple, None],
        "numeric_columns": [list, tuple, None],
        "modality_dropout": [Interval(Real, 0, 1, closed="left")],
        "audio_only_weight": [Interval(Real, 0, None, closed="left")],
        "min_count": _POS_INT,
        "max_vocabulary": [Interval(Integral, 0, None, closed="left")],
        "max_tokens": _POS_INT,
        "token_dim": _POS_INT,
        "text_dim": _POS_INT,
        "metadata_dim": _POS_INT,
        "audio_dim": _POS_INT,
        "embedding_dim": _POS_INT,
        "patch_frames": _POS_INT,
        "patch_hop": [Interval(Integral, 1, None, closed="left"), None],
        "patches_per_track": _POS_INT,
        "n_filters": _POS_INT,
        "n_conv": _POS_INT,
        "pooling": [tuple, list],
        "hidden_units": [tuple, list],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "pad_mode": [StrOptions({"wrap", "constant"})],
        "target_weights": [dict, None],
        "class_weight": [StrOptions({"balanced"}), None],
        "optimizer": [StrOptions({"adam", "adamw", "sgd"}), callable],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": _POS_INT,
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "device": [str],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        spectrogram_column="spectrogram",
        text_column=None,
        categorical_columns=None,
        numeric_columns=None,
        modality_dropout=0.3,
        audio_only_weight=1.0,
        min_count=2,
        max_vocabulary=5000,
        max_tokens=64,
        token_dim=32,
        text_dim=32,
        metadata_dim=8,
        audio_dim=64,
        embedding_dim=64,
        patch_frames=96,
        patch_hop=None,
        patches_per_track=8,
        n_filters=64,
        n_conv=3,
        pooling=("mean", "max", "l2"),
        hidden_units=(128,),
        dropout=0.3,
        pad_mode="wrap",
        target_weights=None,
        class_weight=None,
        optimizer="adam",
        lr=1e-3,
        weight_decay=1e-4,
        batch_size=32,
        max_epochs=20,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.spectrogram_column = spectrogram_column
        self.text_column = text_column
        self.categorical_columns = categorical_columns
        self.numeric_columns = numeric_columns
        self.modality_dropout = modality_dropout
        self.audio_only_weight = audio_only_weight
        self.min_count = min_count
        self.max_vocabulary = max_vocabulary
        self.max_tokens = max_tokens
        self.token_dim = token_dim
        self.text_dim = text_dim
        self.metadata_dim = metadata_dim
        self.audio_dim = audio_dim
        self.embedding_dim = embedding_dim
        self.patch_frames = patch_frames
        self.patch_hop = patch_hop
        self.patches_per_track = patches_per_track
        self.n_filters = n_filters
        self.n_conv = n_conv
        self.pooling = pooling
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.pad_mode = pad_mode
        self.target_weights = target_weights
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- input
    def _columns(self):
        return list(self.categorical_columns or ()), list(self.numeric_columns or ())

    def _read(self, X, *, reset):
        """Spectrograms (float32 list) and raw side columns of ``X``."""
        cat_cols, num_cols = self._columns()
        table = _read_table(X, self.spectrogram_column, self.text_column, cat_cols, num_cols)
        if table is None:  # an array of spectrograms: no side input
            specs = self._check_arrays(X, reset=reset)
            n = len(specs)
            table = (
                specs,
                [None] * n,
                [[None] * n for _ in cat_cols],
                [[None] * n for _ in num_cols],
            )
        elif reset:
            absent = [c for c in [self.text_column, *cat_cols, *num_cols] if c and c not in X]
            if absent:
                raise ValueError(f"X lacks the side-input columns {absent} named in the parameters")
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        n_mels = table[0][0].shape[0]
        if reset:
            self.n_features_in_ = n_mels
        elif n_mels != self.n_features_in_:
            raise ValueError(
                f"X has {n_mels} features (mel bands), but MultimodalEmbedder is "
                f"expecting {self.n_features_in_} features as input."
            )
        return table

    def _check_arrays(self, X, *, reset):
        """A 3-D array (or list) of spectrograms, as ConvEmbedder reads it."""
        specs = _ragged_spectrograms(X)
        if specs is not None:
            return specs
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=[np.float32, np.float64])
        X = X[:, :, None] if X.ndim == 2 else X
        if X.ndim != 3 or 0 in X.shape[1:]:
            raise ValueError(
                f"X has shape {X.shape}; expected a DataFrame or dict of columns, or "
                "spectrograms (n_tracks, n_mels, n_frames)"
            )
        return list(X.astype(np.float32, copy=False))

    def _side_arrays(self, texts, cats, nums):
        """The per-track arrays the network reads besides the spectrograms."""
        n = len(texts)
        tokens = _encode_texts(texts, self.vocabulary_, self.max_tokens)
        codes = _encode_categories(cats, self.categories_, n)
        names = self._columns()[1]
        values, missing = _encode_numbers(nums, names, self.numeric_mean_, self.numeric_scale_, n)
        return {"tokens": tokens, "codes": codes, "values": values, "missing": missing}

    def _hop(self):
        return self.patch_hop if self.patch_hop is not None else max(1, self.patch_frames // 2)

    # ---------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the vocabulary, categories and scaling; train the network.

        Parameters
        ----------
        X : DataFrame or dict of columns
            The spectrogram column and the side-input columns named in the
            parameters (or an array of spectrograms: no side input).
        y : array-like of shape (n_tracks,) or (n_tracks, n_outputs), dict or DataFrame
            Class labels or float targets, or several targets by name (one head
            each).

        Returns
        -------
        self : MultimodalEmbedder
            The fitted estimator.
        """
        from ._modules import MultiTargetLoss
        from ._net import _torch_context, net_heads, net_optimizer
        from ._side_modules import MultimodalNet
        from ._side_net import _SideNet, _SideTrackData

        self._check_params()
        specs, texts, cats, nums = self._read(X, reset=True)
        targets, Y = _encode_targets(y, len(specs), self.target_weights)
        self.vocabulary_ = {}
        if self.text_column is not None:
            self.vocabulary_ = _fit_vocabulary(
                texts, min_count=self.min_count, max_size=self.max_vocabulary
            )
        self.categories_ = _fit_categories(cats)
        self.numeric_mean_, self.numeric_scale_ = _fit_numbers(nums, self._columns()[1])
        data = _SideTrackData(
            self._fit_normalisation(specs), self._side_arrays(texts, cats, nums), Y
        )
        rs = check_random_state(self.random_state)
        torch_seed, patch_seed = (int(s) for s in rs.randint(2**31 - 1, size=2))
        head_sizes, loss_heads, class_weights = net_heads(self, targets, Y)
        net_init = self._net_init_params(head_sizes, loss_heads, class_weights, patch_seed)
        optimizer, opt_kwargs = net_optimizer(self)
        net = _SideNet(
            MultimodalNet, MultiTargetLoss, optimizer=optimizer, train_split=None,
            device=self.device, **net_init, **opt_kwargs,
        )  # fmt: skip
        with _torch_context(self.n_jobs, seed=torch_seed, device=self.device):
            net.fit(data, y=None)
        self.net_ = net
        self._net_init = net_init
        self.targets_ = [
            {k: v for k, v in t.items() if k not in ("start", "stop")} for t in targets
        ]
        self._n_features_out = self.embedding_dim
        return self

    def _check_params(self):
        """Checks between parameters that ``_parameter_constraints`` cannot express."""
        from ._modules import min_patch_frames

        if not self.pooling or not set(self.pooling) <= {"mean", "max", "l2"}:
            raise ValueError(f"pooling={self.pooling!r} must hold 'mean', 'max' and/or 'l2'")
        if any(int(u) < 1 for u in self.hidden_units):
            raise ValueError(f"hidden_units={self.hidden_units!r} must be positive ints")
        if self.patch_frames < min_patch_frames(self.n_conv):
            raise ValueError(
                f"patch_frames={self.patch_frames} is too short for n_conv={self.n_conv} "
                f"conv layers: it must be at least {min_patch_frames(self.n_conv)}"
            )
        cat_cols, num_cols = self._columns()
        names = [self.text_column, *cat_cols, *num_cols]
        names = [c for c in names if c is not None]
        if self.spectrogram_column in names or len(set(names)) != len(names):
            raise ValueError(f"the columns {names} must be distinct from each other and "
                             f"from spectrogram_column={self.spectrogram_column!r}")  # fmt: skip

    def _net_init_params(self, head_sizes, loss_heads, class_weights, patch_seed):
        """The ``_SideNet`` parameters, as plain data (saved next to the weights)."""
        text = self.text_column is not None
        return dict(
            module__n_mels=int(self.n_features_in_),
            module__head_sizes=[int(h) for h in head_sizes],
            module__vocabulary_size=len(self.vocabulary_) + 2 if text else 0,
            module__n_levels=[len(c) for c in self.categories_],
            module__n_numeric=len(self.numeric_mean_),
            module__audio_dim=int(self.audio_dim),
            module__token_dim=int(self.token_dim),
            module__text_dim=int(self.text_dim),
            module__metadata_dim=int(self.metadata_dim),
            module__embedding_dim=int(self.embedding_dim),
            module__n_filters=int(self.n_filters),
            module__n_conv=int(self.n_conv),
            module__pooling=tuple(self.pooling),
            module__hidden_units=tuple(int(u) for u in self.hidden_units),
            module__dropout=float(self.dropout),
            module__modality_dropout=float(self.modality_dropout),
            module__audio_only_weight=float(self.audio_only_weight),
            criterion__heads=loss_heads,
            criterion__class_weights=class_weights,
            lr=float(self.lr),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            predict_nonlinearity=None,
            verbose=self.verbose,
            patch_frames=int(self.patch_frames),
            patch_hop=int(self._hop()),
            patches_per_track=int(self.patches_per_track),
            pad_mode=self.pad_mode,
            patch_seed=patch_seed,
        )

    def _fit_normalisation(self, specs):
        """Learn ``mean_`` and ``scale_`` of every mel band; return ``specs`` normalised."""
        frames = np.concatenate(specs, axis=1).astype(np.float64)
        self.mean_ = frames.mean(axis=1).astype(np.float32)
        scale = frames.std(axis=1)
        scale[scale < 1e-8] = 1.0
        self.scale_ = scale.astype(np.float32)
        return self._normalise(specs)

    def _normalise(self, specs):
        return [(s - self.mean_[:, None]) / self.scale_[:, None] for s in specs]

    # ---------------------------------------------------------------- inference
    def transform(self, X):
        """Embed tracks: the mean of the embeddings of their patches.

        Parameters
        ----------
        X : DataFrame or dict of columns
            As in :meth:`fit`; a side-input column that is absent reads as
            missing for every track.

        Returns
        -------
        X_emb : ndarray of shape (n_tracks, embedding_dim), dtype float32
            The track embeddings.
        """
        from ._net import _forward_patches
        from ._side_net import _SideTrackData

        check_is_fitted(self)
        specs, texts, cats, nums = self._read(X, reset=False)
        specs = self._normalise(specs)
        data = _SideTrackData(specs, self._side_arrays(texts, cats, nums))
        emb = _forward_patches(self.net_, data, [], self.n_jobs)[0]
        counts = np.array(
            [len(_fixed_offsets(s.shape[1], self.patch_frames, self._hop())) for s in specs]
        )
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return (np.add.reduceat(emb, starts, axis=0) / counts[:, None]).astype(np.float32)

    # ------------------------------------------------------------- persistence
    def _net_from_weights(self, weights, history):
        from ._side_net import _side_net_from_state

        return _side_net_from_state(self._net_init, weights, history, self.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.dict = True
        return tags
