"""The log-cosh likelihood: a normalized density (its constant against quadrature), its log-density
against the formula, its sampler against the CDF by quadrature, and a LogCosh VAE that trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import vaezoo
from vaezoo.parts.likelihoods.logcosh import LogCoshImage, logcosh_log_normalizer

from _tiny_training import _tiny, briefly_train


def density(t: float, alpha: float) -> float:
    u = abs(alpha * t)
    return 0.0 if u > 700 else math.cosh(u) ** (-1 / alpha)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 10.0])
def test_the_density_integrates_to_one(alpha):
    z, _ = integrate.quad(density, -math.inf, math.inf, args=(alpha,), limit=400)
    assert logcosh_log_normalizer(alpha) == pytest.approx(math.log(z), abs=1e-7)


def test_log_prob_is_the_sum_of_the_pixels_log_cosh_cost_and_constant():
    loc = torch.randn(2, 1, 3, 3)
    x = torch.rand(2, 1, 3, 3)
    alpha = 10.0
    expected = -(torch.log(torch.cosh(alpha * (x - loc))) / alpha).sum((-3, -2, -1)) - 9 * logcosh_log_normalizer(alpha)
    torch.testing.assert_close(LogCoshImage(loc, alpha).log_prob(x), expected)
    far = LogCoshImage(torch.zeros(1, 1, 1, 1), alpha).log_prob(torch.full((1, 1, 1, 1), 200.0))  # cosh overflows
    assert torch.isfinite(far).all() and float(far) == pytest.approx(-(200 - math.log(2) / alpha)
                                                                     - logcosh_log_normalizer(alpha), rel=1e-6)


@pytest.mark.parametrize("alpha", [1.0, 10.0])
def test_samples_follow_the_density(alpha):
    torch.manual_seed(0)
    draws = LogCoshImage(torch.full((1, 1, 1), 0.25), alpha).sample((4000,)).flatten().double().numpy() - 0.25
    log_z = logcosh_log_normalizer(alpha)

    def cdf(t):
        return np.array([0.5 + math.copysign(integrate.quad(density, 0, abs(v), args=(alpha,))[0], v) / math.exp(log_z)
                         for v in np.atleast_1d(t)])

    assert stats.kstest(draws, cdf).pvalue > 0.01
    assert LogCoshImage(torch.full((1, 1, 1), 0.25), alpha).mean.item() == 0.25


def test_a_logcosh_vae_trains_its_elbo_up():
    torch.manual_seed(0)
    model = vaezoo.create({"input_shape": [1, 8, 8], "latent_dim": 3, "encoder": {"name": "mlp", "hidden": [16]},
                           "decoder": {"name": "mlp", "hidden": [16]}, "likelihood": {"name": "logcosh", "alpha": 10}})
    data = _tiny().train_images.float() / 255
    before = float(-model.elbo(data).detach().mean())
    briefly_train(model, data, steps=200)
    after = float(-model.elbo(data).detach().mean())
    assert after < before - 5
