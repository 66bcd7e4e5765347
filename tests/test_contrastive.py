"""Tests of the contrastive training parts (sklearn_music._contrastive)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn_music._contrastive import ProjectionHead, SpecAugment, nt_xent_loss  # noqa: E402


def _nt_xent_reference(z1, z2, tau, groups=None):
    """Loop-by-loop NT-Xent in numpy (SimCLR's definition)."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    g = None if groups is None else np.concatenate([groups, groups])
    losses = []
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        logits = []
        for j in range(2 * n):
            if j == i or (g is not None and j != pos and g[j] == g[i]):
                continue
            logits.append((j == pos, z[i] @ z[j] / tau))
        vals = np.array([v for _, v in logits])
        pos_val = next(v for p, v in logits if p)
        losses.append(np.log(np.exp(vals).sum()) - pos_val)
    return np.mean(losses)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_nt_xent_matches_reference(tau):
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    got = nt_xent_loss(torch.tensor(z1), torch.tensor(z2), tau)
    assert float(got) == pytest.approx(_nt_xent_reference(z1, z2, tau), rel=1e-6)


def test_nt_xent_groups_drop_same_group_negatives():
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    groups = np.array([0, 1, 0, 2, 3, 1])
    got = nt_xent_loss(torch.tensor(z1), torch.tensor(z2), 0.2, groups=torch.tensor(groups))
    ref = _nt_xent_reference(z1, z2, 0.2, groups)
    assert float(got) == pytest.approx(ref, rel=1e-6)
    assert float(got) != pytest.approx(_nt_xent_reference(z1, z2, 0.2), rel=1e-3)


def test_projection_head_shape():
    assert ProjectionHead(8, 3)(torch.randn(5, 8)).shape == (5, 3)


def test_spec_augment_gain_only_shifts_decibels():
    mean, scale = torch.linspace(-20, 0, 8), torch.full((8,), 10.0)
    aug = SpecAugment(
        mean, scale, p=1.0, gain_db=6.0, tilt_db=0.0, max_shift=0, mix_db=-200, mask_frac=0
    )
    x = torch.randn(4, 8, 10)
    torch.manual_seed(0)
    y = aug(x)
    # every patch moved by one constant number of dB, at most 6 dB
    diff_db = (y - x) * scale[:, None]
    per_patch = diff_db.reshape(4, -1)
    assert torch.allclose(per_patch, per_patch[:, :1].expand_as(per_patch), atol=1e-3)
    assert float(per_patch.abs().max()) <= 6.0 + 1e-4


def test_spec_augment_shift_rolls_bands_and_eval_is_identity():
    mean, scale = torch.zeros(6), torch.ones(6)
    aug = SpecAugment(
        mean, scale, p=1.0, gain_db=0, tilt_db=0, max_shift=1, mix_db=-300, mask_frac=0
    )
    x = torch.arange(6.0)[None, :, None].repeat(20, 1, 3)
    torch.manual_seed(0)
    y = aug(x)
    shifts = (y[:, 3, 0] - x[:, 3, 0]).round()
    assert set(shifts.tolist()) <= {-1.0, 0.0, 1.0} and len(set(shifts.tolist())) > 1
    assert torch.equal(aug.eval()(x), x)


def test_spec_augment_is_reproducible_with_a_generator():
    x = torch.randn(3, 8, 12)
    outs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(3)
        outs.append(SpecAugment(torch.zeros(8), torch.ones(8), p=1.0, generator=gen)(x))
    assert torch.equal(outs[0], outs[1])
