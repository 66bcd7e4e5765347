"""PyTorch modules of the multimodal embedder (no scikit-learn code here).

``Concat(TextRNN(lyrics), MetadataEmbedding(metadata), PatchEncoder(spectrogram))
→ FC → embedding → heads``: the audio branch is the convolutional
:class:`~sklearn_music._modules.PatchEncoder` of
:class:`~sklearn_music.ConvEmbedder`; the text branch a GRU over token
embeddings, mean-pooled; the metadata branch one embedding table per categorical
column and the scaled numbers with their missing flags. Every side input has a
learned representation of "missing"; in training, side inputs are replaced by
"missing" at random (``modality_dropout``), and every batch also goes through the
network without any side input (``audio_only_weight``).
"""

import torch
from torch import nn

from ._modules import PatchEncoder

__all__ = ["TextRNN", "MetadataEmbedding", "MultimodalNet"]


class TextRNN(nn.Module):
    """Token embeddings, a GRU over them, the mean of its outputs.

    Token id 0 is padding (ignored), 1 the unknown word. A text without any
    token (an instrumental track) gets a learned ``missing`` vector instead.

    Parameters
    ----------
    vocabulary_size : int
        Number of token ids (padding and unknown included).
    token_dim : int, default=32
        Size of the token embeddings.
    text_dim : int, default=32
        Size of the GRU state, which is the text vector.

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._side_modules import TextRNN
    >>> rnn = TextRNN(10, token_dim=4, text_dim=3)
    >>> rnn(torch.tensor([[2, 3, 1, 0], [0, 0, 0, 0]])).shape
    torch.Size([2, 3])
    """

    def __init__(self, vocabulary_size, *, token_dim=32, text_dim=32):
        super().__init__()
        self.embedding = nn.Embedding(int(vocabulary_size), int(token_dim), padding_idx=0)
        self.gru = nn.GRU(int(token_dim), int(text_dim), batch_first=True)
        self.missing = nn.Parameter(torch.zeros(int(text_dim)))
        self.text_dim = int(text_dim)

    def forward(self, tokens):
        """Text vectors of ``tokens`` (batch, max_tokens) of ids, 0-padded at the end."""
        mask = (tokens > 0).float()
        lengths = mask.sum(dim=1, keepdim=True)
        # the GRU runs forward only: padding after a text does not change its outputs
        out, _ = self.gru(self.embedding(tokens))
        pooled = (out * mask[:, :, None]).sum(dim=1) / lengths.clamp(min=1)
        return torch.where(lengths > 0, pooled, self.missing.expand_as(pooled))


class MetadataEmbedding(nn.Module):
    """One embedding table per categorical column; scaled numbers and missing flags.

    Category code 0 is "missing" and 1 "unknown" (unseen in training), each a
    learned row of its column's table. A missing number enters as 0 with its
    missing flag at 1 (the layers after it learn what a missing value means).

    Parameters
    ----------
    n_levels : sequence of int
        Number of categories of every categorical column (missing and unknown
        not included).
    n_numeric : int, default=0
        Number of numeric columns.
    metadata_dim : int, default=8
        Size of every categorical embedding.

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._side_modules import MetadataEmbedding
    >>> meta = MetadataEmbedding([3, 5], n_numeric=1, metadata_dim=4)
    >>> codes = torch.tensor([[2, 6], [0, 1]])
    >>> meta(codes, torch.tensor([[0.5], [0.0]]), torch.tensor([[0.0], [1.0]])).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_levels, *, n_numeric=0, metadata_dim=8):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(int(n) + 2, int(metadata_dim)) for n in n_levels)
        self.n_numeric = int(n_numeric)
        self.output_dim = len(self.tables) * int(metadata_dim) + 2 * self.n_numeric

    def forward(self, codes, values, missing):
        """Concatenated embeddings, values and flags (batch, ``output_dim``)."""
        parts = [table(codes[:, j]) for j, table in enumerate(self.tables)]
        if self.n_numeric:
            parts += [values * (1 - missing), missing]
        return torch.cat(parts, dim=1)


class MultimodalNet(nn.Module):
    """Audio, text and metadata branches, concatenated, fully connected, heads.

    Parameters
    ----------
    n_mels : int
        Number of mel bands.
    head_sizes : sequence of int
        Output size of each head.
    vocabulary_size : int, default=0
        Token ids of the text branch; 0: no text branch.
    n_levels : sequence of int, default=()
        Categories of every categorical column (see :class:`MetadataEmbedding`).
    n_numeric : int, default=0
        Number of numeric columns.
    audio_dim : int, default=64
        Output size of the audio branch.
    token_dim, text_dim : int, default=32
        Sizes of the text branch (see :class:`TextRNN`).
    metadata_dim : int, default=8
        Size of every categorical embedding.
    hidden_units : sequence of int, default=(128,)
        Fully connected layers after the concatenation.
    embedding_dim : int, default=64
        Size of the embedding layer.
    dropout : float, default=0.3
        Dropout before every fully connected layer.
    modality_dropout : float, default=0.3
        In training, probability that a side input (the text, each metadata
        column) of a patch is replaced by its "missing" representation,
        independently.
    audio_only_weight : float, default=1.0
        In training, every batch also goes through the network with all its
        side inputs missing; the loss of that copy is weighted by this (the
        net's ``get_loss``). 0: no such copy.
    **encoder_params : dict
        Passed to :class:`~sklearn_music._modules.PatchEncoder` (``n_filters``,
        ``n_conv``, ``pooling``).

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._side_modules import MultimodalNet
    >>> net = MultimodalNet(8, (3,), vocabulary_size=10, n_levels=(4,), n_numeric=1,
    ...                     n_filters=4, embedding_dim=5).eval()
    >>> emb, logits = net(torch.randn(2, 8, 16), tokens=torch.tensor([[2, 3], [0, 0]]),
    ...                   codes=torch.tensor([[2], [0]]), values=torch.zeros(2, 1),
    ...                   missing=torch.tensor([[0.0], [1.0]]))
    >>> emb.shape, logits.shape
    (torch.Size([2, 5]), torch.Size([2, 3]))
    """

    def __init__(
        self,
        n_mels,
        head_sizes,
        *,
        vocabulary_size=0,
        n_levels=(),
        n_numeric=0,
        audio_dim=64,
        token_dim=32,
        text_dim=32,
        metadata_dim=8,
        hidden_units=(128,),
        embedding_dim=64,
        dropout=0.3,
        modality_dropout=0.3,
        audio_only_weight=1.0,
        **encoder_params,
    ):
        super().__init__()
        self.audio = PatchEncoder(
            n_mels, hidden_units=(), embedding_dim=audio_dim, dropout=dropout, **encoder_params
        )
        self.text = None
        if vocabulary_size:
            self.text = TextRNN(vocabulary_size, token_dim=token_dim, text_dim=text_dim)
        self.metadata = MetadataEmbedding(n_levels, n_numeric=n_numeric, metadata_dim=metadata_dim)
        self.modality_dropout = float(modality_dropout)
        self.audio_only_weight = float(audio_only_weight)
        width = int(audio_dim) + self.metadata.output_dim
        width += self.text.text_dim if self.text is not None else 0
        fc = []
        for units in hidden_units:
            fc += [nn.Dropout(dropout), nn.Linear(width, int(units)), nn.ReLU()]
            width = int(units)
        fc += [nn.Dropout(dropout), nn.Linear(width, int(embedding_dim))]
        self.fc = nn.Sequential(*fc)
        self.heads = nn.ModuleDict(
            {f"head{i}": nn.Linear(int(embedding_dim), int(n)) for i, n in enumerate(head_sizes)}
        )

    def _drop(self, n, like):
        """Rows whose side input is dropped in this training step (bool, shape n)."""
        p = self.modality_dropout
        if not self.training or p <= 0:
            return torch.zeros(n, dtype=torch.bool, device=like.device)
        return torch.rand(n, device=like.device) < p

    def forward(self, x, tokens=None, codes=None, values=None, missing=None):
        """Return ``(embedding, head_0_output, head_1_output, ...)``.

        ``x`` is a batch of patches (n, n_mels, n_frames); ``tokens`` (n, max_tokens)
        token ids; ``codes`` (n, n_categorical) category codes; ``values`` and
        ``missing`` (n, n_numeric) scaled numbers and missing flags. In training
        with ``audio_only_weight > 0`` and side inputs, the outputs have ``2 n``
        rows: the batch with its side inputs (after modality dropout), then the
        same patches with every side input missing.
        """
        n = x.shape[0]
        side = self.text is not None or self.metadata.output_dim > 0
        twin = self.training and side and self.audio_only_weight > 0
        audio = self.audio(torch.cat([x, x]) if twin else x)
        keep = torch.ones(n, dtype=torch.bool, device=x.device)
        if twin:  # the second copy: no side input at all
            keep = torch.cat([keep, torch.zeros_like(keep)])
        parts = [audio]
        if self.text is not None:
            tokens = torch.cat([tokens, tokens]) if twin else tokens
            drop = ~keep | self._drop(len(keep), x)
            parts.append(self.text(tokens.masked_fill(drop[:, None], 0)))
        if self.metadata.output_dim:
            codes = (torch.cat([codes, codes]) if twin else codes).clone()
            values = torch.cat([values, values]) if twin else values
            flags = (torch.cat([missing, missing]) if twin else missing).clone()
            for j in range(codes.shape[1]):
                codes[:, j] = codes[:, j].masked_fill(~keep | self._drop(len(keep), x), 0)
            for j in range(flags.shape[1]):
                flags[:, j] = flags[:, j].masked_fill(~keep | self._drop(len(keep), x), 1.0)
            parts.append(self.metadata(codes, values, flags))
        emb = self.fc(torch.cat(parts, dim=1))
        return (emb, *(head(emb) for head in self.heads.values()))
