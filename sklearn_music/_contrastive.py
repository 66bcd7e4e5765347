"""Contrastive training parts: spectrogram augmentations, projection head, NT-Xent.

Torch modules and functions only (no scikit-learn code), used by
:class:`~sklearn_music.ConvEmbedder` when it trains without labels (or with
``contrastive_weight > 0``) and by ``benchmarks/research_ssl.py``.

Two random patches of the same track are a positive pair; the patches of the other
tracks of the batch are its negatives (SimCLR's NT-Xent loss, Chen et al. 2020; COLA,
Saeed et al. 2021). Nothing in the loss grows with the number of tracks, unlike a
softmax with one output per track.
"""

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SpecAugment", "ProjectionHead", "nt_xent_loss"]


def nt_xent_loss(z1, z2, temperature=0.1, groups=None):
    """NT-Xent loss of two views: row ``i`` of ``z1`` and of ``z2`` are a positive pair.

    Every view is compared, by cosine similarity divided by ``temperature``, with the
    ``2n - 1`` other views of the batch; the loss is the cross-entropy of picking its
    positive, averaged over the ``2n`` views. With ``groups``, views of rows of the
    same group (e.g. two draws of one track in a batch) are left out of each other's
    negatives.

    Parameters
    ----------
    z1, z2 : tensor of shape (n, dim)
        Projections of the two views (need not be normalised).
    temperature : float, default=0.1
        Softmax temperature.
    groups : tensor of shape (n,), default=None
        Group of each row; rows of a group are not negatives of each other.

    Returns
    -------
    loss : tensor of shape ()
        The mean loss.

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._contrastive import nt_xent_loss
    >>> z = torch.eye(4)
    >>> float(nt_xent_loss(z, z, temperature=0.1)) < 1e-3   # perfect pairs
    True
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    drop = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    if groups is not None:
        g = torch.cat([groups, groups]).to(z.device)
        same = g[:, None] == g[None, :]
        same[torch.arange(2 * n), target] = False  # keep each view's positive
        drop = drop | same
    sim = sim.masked_fill(drop, float("-inf"))
    return F.cross_entropy(sim, target)


class ProjectionHead(nn.Module):
    """The small MLP between the embedding and the contrastive loss (SimCLR).

    Parameters
    ----------
    input_dim : int
        Size of the embedding.
    output_dim : int, default=64
        Size of the projection the loss compares.

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._contrastive import ProjectionHead
    >>> ProjectionHead(8, 4)(torch.randn(3, 8)).shape
    torch.Size([3, 4])
    """

    def __init__(self, input_dim, output_dim=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_dim, input_dim), nn.ReLU(), nn.Linear(input_dim, output_dim)
        )

    def forward(self, x):
        """Project embeddings ``x`` of shape (n, input_dim)."""
        return self.net(x)


class SpecAugment(nn.Module):
    """Random, cheap augmentations of standardised log-mel patches (training only).

    The patches are standardised per band (``(dB - mean) / scale``); every
    augmentation works in decibels, then the patch is standardised again. Each
    augmentation is applied to each patch independently with probability ``p``:

    - gain: add a uniform ``[-gain_db, gain_db]`` dB offset;
    - tilt: add a spectral slope, uniform in ``[-tilt_db, tilt_db]`` dB from the
      lowest to the highest band (a crude EQ);
    - shift: roll the mel bands by an integer in ``[-max_shift, max_shift]``, the edge
      band repeated (a small pitch shift);
    - mix: add, in power, another patch of the batch ``mix_db`` dB lower (uniform in
      ``[mix_db - 10, mix_db]``);
    - masks: one time mask of up to ``mask_frac`` of the frames and one frequency
      mask of up to ``mask_frac`` of the bands, set to the band means.

    In ``eval()`` mode the module returns its input.

    Parameters
    ----------
    mean : array-like of shape (n_mels,)
        Mean of each band (dB).
    scale : array-like of shape (n_mels,)
        Standard deviation of each band (dB).
    p : float, default=0.5
        Probability of each augmentation.
    gain_db, tilt_db : float, default=6.0, 6.0
        Ranges of the gain and of the spectral tilt.
    max_shift : int, default=2
        Largest roll of the mel bands.
    mix_db : float, default=-10.0
        Upper level of the mixed-in patch relative to the patch.
    mask_frac : float, default=0.1
        Largest fraction of frames (bands) one mask covers.
    generator : torch.Generator, default=None
        Source of randomness (``None``: torch's global generator).

    Examples
    --------
    >>> import torch
    >>> from sklearn_music._contrastive import SpecAugment
    >>> aug = SpecAugment(torch.zeros(16), torch.ones(16))
    >>> x = torch.randn(4, 16, 32)
    >>> aug(x).shape, bool((aug.eval()(x) == x).all())
    (torch.Size([4, 16, 32]), True)
    """

    def __init__(
        self,
        mean,
        scale,
        *,
        p=0.5,
        gain_db=6.0,
        tilt_db=6.0,
        max_shift=2,
        mix_db=-10.0,
        mask_frac=0.1,
        generator=None,
    ):
        super().__init__()
        # not in the state_dict: the augmentation is rebuilt from its parameters
        m = torch.as_tensor(mean, dtype=torch.float32)[:, None]
        self.register_buffer("mean", m, persistent=False)
        s = torch.as_tensor(scale, dtype=torch.float32)[:, None]
        self.register_buffer("scale", s, persistent=False)
        self.p = float(p)
        self.gain_db = float(gain_db)
        self.tilt_db = float(tilt_db)
        self.max_shift = int(max_shift)
        self.mix_db = float(mix_db)
        self.mask_frac = float(mask_frac)
        self.generator = generator

    def _rand(self, *shape):
        return torch.rand(*shape, generator=self.generator)

    def _pick(self, n):
        """Which patches get an augmentation: shape (n, 1, 1) in {0., 1.}."""
        return (self._rand(n) < self.p).float()[:, None, None]

    def _shift(self, db):
        n, n_mels, _ = db.shape
        k = self.max_shift
        shifts = torch.randint(-k, k + 1, (n,), generator=self.generator)
        shifts = shifts * (self._rand(n) < self.p).long()
        idx = (torch.arange(n_mels)[None, :] - shifts[:, None]).clamp(0, n_mels - 1)
        return torch.gather(db, 1, idx[:, :, None].expand_as(db).to(db.device))

    def _masks(self, x):
        n, n_mels, n_frames = x.shape
        keep = torch.ones_like(x)
        for axis, size in ((2, n_frames), (1, n_mels)):
            width = (self._rand(n) * self.mask_frac * size).long()
            start = (self._rand(n) * (size - width + 1)).long()
            width = width * (self._rand(n) < self.p).long()
            pos = torch.arange(size)[None, :]
            masked = (pos >= start[:, None]) & (pos < (start + width)[:, None])
            masked = masked[:, None, :] if axis == 2 else masked[:, :, None]
            keep = keep * (~masked).float().to(x.device)
        return x * keep

    def forward(self, x):
        """Augment a batch ``x`` of standardised patches (n, n_mels, n_frames)."""
        if not self.training:
            return x
        n, n_mels, _ = x.shape
        dev = x.device
        db = x * self.scale + self.mean
        gain = (self._rand(n) * 2 - 1)[:, None, None] * self.gain_db
        db = db + (gain * self._pick(n)).to(dev)
        slope = torch.linspace(-0.5, 0.5, n_mels)[None, :, None]
        tilt = (self._rand(n) * 2 - 1)[:, None, None] * self.tilt_db * slope
        db = db + (tilt * self._pick(n)).to(dev)
        if self.max_shift > 0:
            db = self._shift(db)
        if n > 1:
            other = db[torch.roll(torch.arange(n), 1)]
            level = (self.mix_db - 10 * self._rand(n))[:, None, None].to(dev)
            mixed = 10 * torch.log10(
                torch.pow(10.0, db / 10) + torch.pow(10.0, (other + level) / 10) + 1e-10
            )
            pick = self._pick(n).to(dev)
            db = pick * mixed + (1 - pick) * db
        return self._masks((db - self.mean) / self.scale)
