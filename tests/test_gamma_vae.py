"""The Gamma VAE: the Gamma densities against their formula, the closed-form KL against Monte Carlo
and against the formula written out, the bounds on the same draws as a hand computation, gradients
through the draws, and the family's refusals."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch.distributions import Gamma, Independent

import vaezoo
from vaezoo.parts.priors.gamma import GammaPrior
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()

D = 4
GAMMA = {"family": "gamma", "input_shape": [1, 8, 8], "latent_dim": D, "encoder": {"name": "mlp", "hidden": [16]},
         "decoder": {"name": "mlp", "hidden": [16]}, "prior": {"name": "gamma", "concentration": 2.0, "rate": 1.5}}


def _model():
    torch.manual_seed(0)
    return vaezoo.create(GAMMA)


def _log_gamma(z, a, b):
    """log of b^a z^(a-1) e^(-b z) / Gamma(a), written out."""
    return a * torch.log(b) + (a - 1) * torch.log(z) - b * z - torch.lgamma(a)


def test_the_kl_is_the_formula_and_agrees_with_monte_carlo():
    torch.manual_seed(1)
    a, b = torch.rand(3, D) * 4 + 1, torch.rand(3, D) * 3 + 0.2
    prior = GammaPrior(D, concentration=2.0, rate=1.5)
    q = Independent(Gamma(a, b), 1)
    closed = prior.kl(q, q.rsample())
    a0, b0 = torch.tensor(2.0), torch.tensor(1.5)
    formula = ((a - a0) * torch.digamma(a) - torch.lgamma(a) + torch.lgamma(a0) + a0 * (torch.log(b) - torch.log(b0))
               + a * (b0 - b) / b).sum(-1)
    torch.testing.assert_close(closed, formula)
    z = Gamma(a.double(), b.double()).sample((400_000,))
    monte_carlo = (_log_gamma(z, a.double(), b.double()) - _log_gamma(z, a0.double(), b0.double())).sum(-1).mean(0)
    torch.testing.assert_close(closed.double(), monte_carlo, atol=0.02, rtol=0.0)


def test_the_prior_density_and_samples_are_the_gamma_of_its_settings():
    prior = GammaPrior(D, concentration=2.0, rate=1.5)
    z = torch.rand(5, D) * 3 + 0.01
    torch.testing.assert_close(prior.log_prob(z), _log_gamma(z, torch.tensor(2.0), torch.tensor(1.5)).sum(-1))
    torch.manual_seed(2)
    draws = prior.sample(200_000)
    assert draws.shape == (200_000, D) and bool((draws > 0).all())
    assert float(draws.mean()) == pytest.approx(2.0 / 1.5, rel=0.01)  # shape / rate
    assert float(draws.var()) == pytest.approx(2.0 / 1.5 ** 2, rel=0.02)  # shape / rate^2


def test_the_bounds_are_the_gamma_densities_on_the_same_draws():
    model = _model()
    x = torch.rand(3, 1, 8, 8).round()
    torch.manual_seed(3)
    bound = model.iwae(x, k=7, seed=0)  # the seed keys the per-image noise, which here only counts the draws
    torch.manual_seed(3)
    q = model.encode(x)
    a, b = q.base_dist.concentration, q.base_dist.rate
    raw_shape, raw_rate = model.encoder(x).chunk(2, dim=-1)  # the encoder's outputs, mapped by hand
    torch.testing.assert_close(a, 1.0 + torch.nn.functional.softplus(raw_shape))
    torch.testing.assert_close(b, torch.nn.functional.softplus(raw_rate) + 1e-5)
    z = Gamma(a, b).rsample((7,))
    log_w = (model.decode(z).log_prob(x) + _log_gamma(z, torch.tensor(2.0), torch.tensor(1.5)).sum(-1)
             - _log_gamma(z, a, b).sum(-1))
    expected = torch.logsumexp(log_w, 0) - math.log(7)
    torch.testing.assert_close(bound, expected, rtol=1e-5, atol=1e-4)


def test_the_elbo_reaches_the_encoder_through_the_draws():
    model = _model()
    x = torch.rand(4, 1, 8, 8).round()
    out = model(x)
    assert out.terms["kl"] > 0 and torch.isfinite(out.loss)
    # the reconstruction term alone: its gradient reaches the encoder only through z
    grads = torch.autograd.grad(out.terms["recon"], list(model.encoder.parameters()))
    assert all(float(g.abs().sum()) > 0 for g in grads)


def test_the_family_takes_only_the_gamma_prior():
    with pytest.raises(vaezoo.ConfigError, match="gamma"):
        vaezoo.create({**GAMMA, "prior": "normal"})


def test_a_gamma_vae_trains_and_samples_positive_codes(tmp_path):
    config = tiny_config("elbo", epochs=2, select="best_val")
    config["model"] = {**GAMMA, "input_shape": config["model"]["input_shape"]}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    records = read_metrics(tmp_path / "run")
    assert records[-1]["val_neg_elbo"] < records[0]["train_neg_elbo"]
    model = vaezoo.load(tmp_path / "run")
    assert bool((model.sample_latents(16) > 0).all()) and model.sample(4).shape == (4, 1, 8, 8)
