"""PyTorch modules of the convolutional embedder (no scikit-learn code here).

The architecture follows Dieleman's content-based music recommendation network
(Spotify, 2014) and van den Oord, Dieleman & Schrauwen (NIPS 2013): 1-D
convolutions over time with the mel bands as input channels, max-pooling in time,
a global temporal pooling layer that concatenates the mean, the maximum and the L2
norm of every feature map, fully connected layers down to an embedding, and one
linear output head per target.

:class:`~sklearn_music.ConvEmbedder` owns these modules through a skorch net; they
are importable here for users who want the bare network.
"""

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "GlobalTemporalPooling",
    "PatchEncoder",
    "RecurrentAggregator",
    "MultiHeadNet",
    "MultiTargetLoss",
    "min_patch_frames",
]

_POOLINGS = ("mean", "max", "l2")


def _pool_sizes(n_conv, pool_sizes):
    """Pool size after each conv layer but the last (global pooling follows it)."""
    if pool_sizes is None:
        pool_sizes = (4, 2) + (2,) * max(0, n_conv - 3)
    pool_sizes = tuple(int(p) for p in pool_sizes)[: n_conv - 1]
    if len(pool_sizes) < n_conv - 1:
        raise ValueError(
            f"pool_sizes={pool_sizes} gives {len(pool_sizes)} sizes, but "
            f"n_conv={n_conv} layers need {n_conv - 1}"
        )
    return pool_sizes


def min_patch_frames(n_conv=3, pool_sizes=None):
    """Smallest patch length whose last conv layer still sees two frames.

    Batch normalisation in training mode needs more than one value per channel, so a
    patch must keep at least two frames after all the max-pooling steps (with a batch
    of one patch).

    Parameters
    ----------
    n_conv : int, default=3
        Number of convolutional layers.
    pool_sizes : sequence of int, default=None
        Max-pool sizes after each conv layer but the last; ``None`` means
        ``(4, 2, 2, ...)``.

    Returns
    -------
    n_frames : int
        The smallest valid ``patch_frames``.

    Examples
    --------
    >>> from sklearn_music._modules import min_patch_frames
    >>> min_patch_frames(n_conv=3)
    9
    """
    n = 2
    for p in reversed(_pool_sizes(n_conv, pool_sizes)):
        # ceil-mode pooling: n_in frames give ceil(n_in / p) frames
        n = (n - 1) * p + 1
    return n


def he_init_convs(module):
    """He initialisation of every ``Conv1d`` weight of ``module`` (each conv of the
    encoder is followed by batch norm and ReLU); returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return module


class GlobalTemporalPooling(nn.Module):
    """Concatenate mean, max and L2 pooling over the time axis.

    Parameters
    ----------
    pooling : sequence of {"mean", "max", "l2"}, default=("mean", "max", "l2")
        Statistics to concatenate, in this order. ``"l2"`` is the root mean square
        of each feature map (the L2 norm divided by the square root of the length).

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._modules import GlobalTemporalPooling
    >>> GlobalTemporalPooling()(torch.ones(2, 5, 7)).shape
    torch.Size([2, 15])
    """

    def __init__(self, pooling=_POOLINGS):
        super().__init__()
        pooling = tuple(pooling)
        bad = [p for p in pooling if p not in _POOLINGS]
        if bad or not pooling or len(set(pooling)) != len(pooling):
            raise ValueError(
                f"pooling={pooling!r} must be a non-empty sequence of distinct "
                f"values among {_POOLINGS}"
            )
        self.pooling = pooling

    def forward(self, x):
        """Pool ``x`` of shape (batch, channels, time) to (batch, k * channels)."""
        out = []
        for p in self.pooling:
            if p == "mean":
                out.append(x.mean(dim=2))
            elif p == "max":
                out.append(x.amax(dim=2))
            else:
                out.append(torch.sqrt(x.pow(2).mean(dim=2) + 1e-8))
        return torch.cat(out, dim=1)


class PatchEncoder(nn.Module):
    """Dieleman-style 1-D convolutional encoder of a spectrogram patch.

    ``input batch norm → [conv(k) → BN → ReLU → max-pool(p)] × (n_conv - 1) →
    conv(k) → BN → ReLU → global pooling → [dropout → linear → ReLU] × len(hidden)
    → dropout → linear(embedding_dim)``. Convolutions keep the length ("same"
    padding) and pooling rounds up, so any patch of at least
    :func:`min_patch_frames` frames works.

    Parameters
    ----------
    n_mels : int
        Number of mel bands (input channels).
    n_filters : int or sequence of int, default=64
        Filters of each conv layer (an int is used for every layer).
    n_conv : int, default=3
        Number of conv layers.
    kernel_size : int, default=4
        Filter length in frames.
    pool_sizes : sequence of int, default=None
        Max-pool sizes after each conv layer but the last; ``None`` means
        ``(4, 2, 2, ...)`` as in Dieleman's network.
    pooling : sequence of {"mean", "max", "l2"}, default=("mean", "max", "l2")
        Global temporal pooling statistics.
    hidden_units : sequence of int, default=(256,)
        Widths of the fully connected layers before the embedding layer.
    embedding_dim : int, default=64
        Size of the (linear) embedding layer.
    dropout : float, default=0.3
        Dropout probability before each fully connected layer.

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._modules import PatchEncoder
    >>> enc = PatchEncoder(n_mels=16, n_filters=8, embedding_dim=4).eval()
    >>> enc(torch.randn(3, 16, 40)).shape
    torch.Size([3, 4])
    """

    def __init__(
        self,
        n_mels,
        *,
        n_filters=64,
        n_conv=3,
        kernel_size=4,
        pool_sizes=None,
        pooling=_POOLINGS,
        hidden_units=(256,),
        embedding_dim=64,
        dropout=0.3,
    ):
        super().__init__()
        if isinstance(n_filters, int):
            n_filters = (n_filters,) * n_conv
        n_filters = tuple(int(f) for f in n_filters)
        if len(n_filters) != n_conv:
            raise ValueError(
                f"n_filters={n_filters} must give one size per conv layer (n_conv={n_conv})"
            )
        pools = _pool_sizes(n_conv, pool_sizes)
        self.input_norm = nn.BatchNorm1d(n_mels)
        layers = []
        in_ch = n_mels
        for i, out_ch in enumerate(n_filters):
            layers += [
                # "same" length: pad (k - 1) // 2 frames before, k // 2 after
                nn.ConstantPad1d(((kernel_size - 1) // 2, kernel_size // 2), 0.0),
                nn.Conv1d(in_ch, out_ch, kernel_size, bias=False),
                nn.BatchNorm1d(out_ch),
                nn.ReLU(),
            ]
            if i < n_conv - 1:
                layers.append(nn.MaxPool1d(pools[i], ceil_mode=True))
            in_ch = out_ch
        self.conv = nn.Sequential(*layers)
        self.pool = GlobalTemporalPooling(pooling)
        fc = []
        width = in_ch * len(self.pool.pooling)
        for units in hidden_units:
            fc += [nn.Dropout(dropout), nn.Linear(width, units), nn.ReLU()]
            width = units
        fc += [nn.Dropout(dropout), nn.Linear(width, embedding_dim)]
        self.fc = nn.Sequential(*fc)
        self.embedding_dim = embedding_dim

    def forward(self, x):
        """Embed patches ``x`` of shape (n_patches, n_mels, n_frames)."""
        return self.fc(self.pool(self.conv(self.input_norm(x))))


class RecurrentAggregator(nn.Module):
    """Aggregate a sequence of patch vectors with a GRU (its last hidden state).

    Parameters
    ----------
    input_dim : int
        Size of each patch vector.
    embedding_dim : int
        Size of the hidden state, which is the track embedding.

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._modules import RecurrentAggregator
    >>> agg = RecurrentAggregator(4, 3)
    >>> agg(torch.randn(2, 5, 4), torch.tensor([5, 2])).shape
    torch.Size([2, 3])
    """

    def __init__(self, input_dim, embedding_dim):
        super().__init__()
        self.gru = nn.GRU(input_dim, embedding_dim, batch_first=True)

    def forward(self, seq, lengths):
        """Run the GRU over ``seq`` (batch, steps, dim); ``lengths`` per row."""
        packed = nn.utils.rnn.pack_padded_sequence(
            seq, lengths.detach().cpu().long(), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)
        return h[-1]


class MultiHeadNet(nn.Module):
    """Patch encoder, optional recurrent aggregation, one linear head per target.

    Parameters
    ----------
    n_mels : int
        Number of mel bands.
    head_sizes : sequence of int
        Output size of each head (number of classes, or of regression outputs).
    aggregate : {"mean", "gru"}, default="mean"
        ``"mean"``: the input is a batch of patches (n, n_mels, n_frames) and every
        patch gets its own embedding and head outputs (tracks are averaged outside).
        ``"gru"``: the input is a batch of patch sequences
        (n, n_steps, n_mels, n_frames) with their ``lengths``; a GRU turns the
        patch embeddings into one embedding per sequence.
    head_dropout : float, default=0.0
        Dropout between the embedding and the heads.
    projection_dim : int, default=None
        Adds a :class:`~sklearn_music._contrastive.ProjectionHead` of this size, whose
        output comes last (contrastive training); ``None``: no projection.
    augment : dict, default=None
        Parameters of a :class:`~sklearn_music._contrastive.SpecAugment` applied to
        the patches in training mode (``mean`` and ``scale`` included); ``None``: no
        augmentation.
    **encoder_params : dict
        Passed to :class:`PatchEncoder`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._modules import MultiHeadNet
    >>> net = MultiHeadNet(16, (3, 2), n_filters=8, embedding_dim=4).eval()
    >>> emb, genre, factors = net(torch.randn(5, 16, 40))
    >>> emb.shape, genre.shape, factors.shape
    (torch.Size([5, 4]), torch.Size([5, 3]), torch.Size([5, 2]))
    """

    def __init__(
        self,
        n_mels,
        head_sizes,
        *,
        aggregate="mean",
        head_dropout=0.0,
        projection_dim=None,
        augment=None,
        **encoder_params,
    ):
        super().__init__()
        if aggregate not in ("mean", "gru"):
            raise ValueError(f"aggregate={aggregate!r} must be 'mean' or 'gru'")
        if aggregate == "gru" and (projection_dim is not None or augment is not None):
            raise ValueError("projection_dim and augment need aggregate='mean'")
        self.encoder = PatchEncoder(n_mels, **encoder_params)
        dim = self.encoder.embedding_dim
        self.aggregate = aggregate
        self.aggregator = RecurrentAggregator(dim, dim) if aggregate == "gru" else None
        self.head_dropout = nn.Dropout(head_dropout)
        self.heads = nn.ModuleDict(
            {f"head{i}": nn.Linear(dim, int(n)) for i, n in enumerate(head_sizes)}
        )
        # created only when asked for: the other modules' initial weights (and the
        # state_dict of models without them) stay as they were
        self.projection = None
        if projection_dim is not None:
            from sklearn_music._contrastive import ProjectionHead

            self.projection = ProjectionHead(dim, int(projection_dim))
        self.augment = None
        if augment is not None:
            from sklearn_music._contrastive import SpecAugment

            self.augment = SpecAugment(**augment)

    def forward(self, x, lengths=None, x2=None):
        """Return ``(embedding, head_0_output, head_1_output, ..., [projection])``.

        ``x2`` (contrastive training) is a second view of every row of ``x``: the
        outputs then cover ``x`` and ``x2`` stacked (``2 n`` rows).
        """
        if x2 is not None:
            x = torch.cat([x, x2])
        if self.augment is not None:
            x = self.augment(x)  # identity in eval mode
        if self.aggregator is None:
            emb = self.encoder(x)
        else:
            n, steps = x.shape[:2]
            patches = self.encoder(x.reshape(n * steps, *x.shape[2:]))
            if lengths is None:
                lengths = torch.full((n,), steps, dtype=torch.long)
            emb = self.aggregator(patches.reshape(n, steps, -1), lengths)
        h = self.head_dropout(emb)
        out = (emb, *(head(h) for head in self.heads.values()))
        if self.projection is not None:
            out = (*out, self.projection(emb))
        return out


class MultiTargetLoss(nn.Module):
    """Weighted sum of per-head losses over a packed target matrix.

    The targets of all heads are packed, column after column, in one float matrix:
    a classification head owns one column of class indices (cross-entropy), a
    regression head owns as many columns as it has outputs (mean squared error).

    Parameters
    ----------
    heads : sequence of (kind, start, stop, weight)
        ``kind`` is ``"class"`` or ``"regression"``; ``start:stop`` are its columns
        in the target matrix; ``weight`` multiplies its loss.
    class_weights : sequence of (tensor or None), default=None
        Per-class weights of each classification head (``None``: equal weights).

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._modules import MultiTargetLoss
    >>> loss = MultiTargetLoss([("class", 0, 1, 1.0), ("regression", 1, 3, 0.5)])
    >>> y = torch.tensor([[0.0, 1.0, -1.0], [1.0, 0.0, 2.0]])
    >>> logits, values = torch.zeros(2, 2), torch.zeros(2, 2)
    >>> round(float(loss((logits, values), y)), 4)  # log 2 + 0.5 * 1.5
    1.4431
    """

    def __init__(self, heads, class_weights=None):
        super().__init__()
        self.heads = [(str(k), int(a), int(b), float(w)) for k, a, b, w in heads]
        if class_weights is None:
            class_weights = [None] * len(self.heads)
        for i, cw in enumerate(class_weights):
            self.register_buffer(
                f"class_weight{i}",
                None if cw is None else torch.as_tensor(cw, dtype=torch.float32),
            )

    def forward(self, outputs, y):
        """Sum the weighted losses of the head ``outputs`` against ``y``."""
        total = 0.0
        for i, ((kind, a, b, w), out) in enumerate(zip(self.heads, outputs)):
            if kind == "class":
                cw = getattr(self, f"class_weight{i}")
                loss = F.cross_entropy(out, y[:, a].long(), weight=cw)
            else:
                loss = F.mse_loss(out, y[:, a:b])
            total = total + w * loss
        return total
