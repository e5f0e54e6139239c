"""The Hamiltonian VAE: its importance weights against Caterini et al.'s Algorithm 1 written out,
against the plain VAE's when the dynamics stand still, and, averaged, against log p(x) computed by
quadrature over a 2-d latent (the extended-space weights must be unbiased for p(x))."""

from __future__ import annotations

import io
import math

import pytest
import torch

import vaezoo
from vaezoo.errors import ConfigError
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()

HAM = {"family": "hamiltonian", "input_shape": [1, 8, 8], "latent_dim": 2, "leapfrog_steps": 3, "step_size": 0.2,
       "beta_zero": 0.3, "encoder": {"name": "mlp", "hidden": [16]}, "decoder": {"name": "mlp", "hidden": [16]}}


def _model(**change):
    torch.manual_seed(0)
    return vaezoo.create({**HAM, **change}).double().eval()


def _algorithm_one(model, x, eps, steps, step, beta0):
    """Caterini, Doucet & Sejdinovic (2018), Algorithm 1, one image at a time."""
    q = model.encode(x)
    weights = []
    for s in range(eps.shape[0]):
        row = []
        for b in range(x.shape[0]):
            xb = x[b:b + 1]

            def potential(z):
                return -(model.decode(z[None]).log_prob(xb)[0] + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum())

            def gradient(z):
                z = z.detach().requires_grad_(True)
                return torch.autograd.grad(potential(z), z)[0]

            mu, std = q.mu[b].detach(), torch.exp(0.5 * q.logvar[b]).detach()
            z0 = mu + std * eps[s, b, :2]
            gamma = eps[s, b, 2:]
            z, rho, root = z0, gamma / math.sqrt(beta0), math.sqrt(beta0)
            for k in range(1, steps + 1):
                rho = rho - step / 2 * gradient(z)
                z = z + step * rho
                rho = rho - step / 2 * gradient(z)
                root_k = 1 / ((1 - 1 / math.sqrt(beta0)) * k * k / steps ** 2 + 1 / math.sqrt(beta0))
                rho = root / root_k * rho
                root = root_k
            log_q0 = torch.distributions.Normal(mu, std).log_prob(z0).sum()
            row.append(float((-potential(z) - 0.5 * rho @ rho + 0.5 * gamma @ gamma - log_q0).detach()))
        weights.append(row)
    return torch.tensor(weights, dtype=torch.float64)


def test_the_weights_are_algorithm_one_written_out():
    model = _model()
    x = (torch.rand(3, 1, 8, 8) > 0.5).double()
    eps = torch.randn(2, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        ours = model.latent_pass(x, eps).log_weights()
    torch.testing.assert_close(ours, _algorithm_one(model, x, eps, 3, 0.2, 0.3))


def test_with_a_standing_still_dynamics_the_weights_are_the_plain_vaes():
    model = _model(step_size=1e-9)
    x = (torch.rand(3, 1, 8, 8) > 0.5).double()
    eps = torch.randn(5, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        ours = model.latent_pass(x, eps).log_weights()
        q = model.encode(x)
        z = q.mu + torch.exp(0.5 * q.logvar) * eps[..., :2]
        plain = model.decode(z).log_prob(x) + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z)
    torch.testing.assert_close(ours, plain, atol=1e-6, rtol=0)


def test_the_mean_weight_is_p_of_x_by_quadrature_over_the_latent():
    model = _model(step_size=0.3)
    torch.manual_seed(1)
    x = (torch.rand(2, 1, 8, 8) > 0.5).double()
    step = 0.02
    axis = torch.arange(-7, 7, step, dtype=torch.float64) + step / 2
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        joint = model.decode(grid[:, None]).log_prob(x) + torch.distributions.Normal(0.0, 1.0).log_prob(grid).sum(-1)[:, None]
        exact = torch.logsumexp(joint, dim=0) + 2 * math.log(step)
        torch.manual_seed(2)
        log_w = model.latent_pass(x, torch.randn(40000, 2, 4, dtype=torch.float64)).log_weights()
    estimate = torch.logsumexp(log_w, dim=0) - math.log(40000)
    spread = (log_w - log_w.max(0).values).exp().std(0) / (log_w - log_w.max(0).values).exp().mean(0) / math.sqrt(40000)
    torch.testing.assert_close(estimate, exact, atol=float(4 * spread.max()) + 1e-3, rtol=0)


def test_the_step_sizes_learn_and_the_loop_trains_it(tmp_path):
    model = _model()
    model.train()
    model(torch.rand(4, 1, 8, 8).round().double()).loss.backward()
    assert model.log_step_size.grad is not None and model.log_step_size.grad.abs().sum() > 0
    config = tiny_config("hamiltonian", epochs=2, select="best_val")
    config["model"] = {**HAM, "input_shape": config["model"]["input_shape"]}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    assert all(math.isfinite(r["val_neg_elbo"]) for r in read_metrics(tmp_path / "run"))
    assert vaezoo.load(tmp_path / "run").config.leapfrog_steps == 3


def test_a_flow_posterior_is_refused_by_name():
    with pytest.raises(ConfigError, match="flow posterior"):
        vaezoo.create({**HAM, "posterior": {"name": "planar"}})
