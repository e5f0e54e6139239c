"""The sample-quality metrics on given features: each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from vaezoo.errors import UsageError
from vaezoo.evaluation.feature_metrics import (
    class_coverage, frechet_distance, kernel_distance, precision_recall_density_coverage,
)


def _gaussian_features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=torch.Generator().manual_seed(99)) / math.sqrt(d)  # correlated features
    return (torch.randn(n, d, generator=g) @ mixing) * scale + shift


def _scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def _brute_force_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """Precision, recall, density and coverage from full distance matrices, as the papers define them."""
    def distances(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    real_real, fake_fake, real_fake = distances(real, real), distances(fake, fake), distances(real, fake)
    real_radius = np.sort(real_real, axis=1)[:, k]  # column 0 is the point itself
    fake_radius = np.sort(fake_fake, axis=1)[:, k]
    inside = real_fake < real_radius[:, None]  # (real, fake): fake j inside the ball of real i
    precision = inside.any(axis=0).mean()
    recall = (real_fake < fake_radius[None, :]).any(axis=1).mean()
    density = inside.sum(axis=0).mean() / k
    coverage = (real_fake.min(axis=1) < real_radius).mean()
    return float(precision), float(recall), float(density), float(coverage)


def test_frechet_distance_matches_scipy_sqrtm():
    real, fake = _gaussian_features(3000, 24, 0), _gaussian_features(2500, 24, 1, shift=0.3, scale=1.2)
    expected = _scipy_frechet(real.double().numpy(), fake.double().numpy())
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-8)


def test_precision_recall_density_coverage_match_the_definitions_for_any_chunk():
    real, fake = _gaussian_features(700, 8, 2), _gaussian_features(500, 8, 3, shift=0.5)
    expected = _brute_force_prdc(real.double().numpy(), fake.double().numpy(), k=5)
    for chunk in (64, 1024):  # chunks smaller than either set, and one holding them whole
        got = precision_recall_density_coverage(real, fake, nearest_k=5, chunk=chunk)
        assert (got.precision, got.recall, got.density, got.coverage) == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected[0] < 0.95 and expected[1] < 0.95  # shifted sets: neither metric saturates


def test_kernel_distance_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    real = _gaussian_features(4000, 16, 4)
    same = kernel_distance(real, _gaussian_features(4000, 16, 5), subsets=50, subset_size=500, seed=0)
    shifted = kernel_distance(real, _gaussian_features(4000, 16, 6, shift=0.5), subsets=50, subset_size=500, seed=0)
    assert abs(same.value) < 4 * same.stderr + 1e-3
    assert shifted.value > 20 * max(same.stderr, abs(same.value))
    again = kernel_distance(real, _gaussian_features(4000, 16, 5), subsets=50, subset_size=500, seed=0)
    assert again.value == same.value  # the subsets are drawn from the seed, not the global generator
    assert same.stderr == pytest.approx(same.spread / math.sqrt(4000 // 500))


def test_class_coverage_is_one_for_balanced_classes_and_one_over_k_for_a_single_class():
    balanced = torch.arange(1000) % 10
    value, shares = class_coverage(balanced, 10)
    assert value == pytest.approx(1.0) and shares == pytest.approx([0.1] * 10)
    value, shares = class_coverage(torch.full((500,), 3), 10)
    assert value == pytest.approx(0.1) and shares[3] == 1.0
    half, _ = class_coverage(torch.arange(1000) % 5, 10)
    assert half == pytest.approx(0.5)


def test_metrics_refuse_too_few_samples_and_mismatched_features():
    real = _gaussian_features(100, 24, 0)
    with pytest.raises(UsageError, match="24-d features needs at least 25 images"):
        frechet_distance(real, real[:20])
    with pytest.raises(UsageError, match="one width"):
        precision_recall_density_coverage(real, real[:, :8])
    with pytest.raises(UsageError, match="k = 5"):
        precision_recall_density_coverage(real, real[:5])
