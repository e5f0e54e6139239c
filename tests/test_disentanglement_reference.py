"""Our disentanglement scores beside the reference implementation, disent (nmichlo/disent, the
maintained PyTorch port of disentanglement_lib), on the same codes and factors: the mutual
information gap and the Gaussian total correlation agree to rounding (the same discretization and
the same contingency-table mutual information)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from disent.metrics._mig import _compute_mig
from disent.metrics._unsupervised import _gaussian_total_correlation

from vaezoo.evaluation.disentanglement import gaussian_total_correlation, mig


def _codes_and_factors(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes that carry the factors partly, mixed and noisy: a case neither 0 nor 1."""
    generator = torch.Generator().manual_seed(seed)
    factors = torch.stack([torch.randint(size, (3000,), generator=generator) for size in (3, 6, 10, 8)], dim=1)
    mixing = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    codes = factors.double() @ mixing + 2.0 * torch.randn(3000, 6, generator=generator, dtype=torch.float64)
    codes[:, 5] = 1.5  # a dead code: a constant
    return codes, factors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mig_agrees_with_disent(seed):
    codes, factors = _codes_and_factors(seed)
    reference = _compute_mig(codes.T.numpy(), factors.T.numpy())["mig.discrete_score"]
    assert 0.01 < reference < 0.99  # a case that tells implementations apart
    assert mig(codes, factors) == pytest.approx(reference, abs=1e-12)


def test_gaussian_total_correlation_agrees_with_disent():
    codes, _ = _codes_and_factors(3)
    codes = codes[:, :5]  # the dead code has no variance: no covariance to invert
    reference = _gaussian_total_correlation(np.cov(codes.T.numpy()))
    assert gaussian_total_correlation(codes) == pytest.approx(reference, rel=1e-10)
