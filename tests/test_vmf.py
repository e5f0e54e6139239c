"""The hyperspherical VAE's parts checked against independent computations: log I_v against scipy,
the von Mises-Fisher density and its KL to the uniform prior against quadrature on the sphere, the
rejection sampler against the exact law of mu.z, and the svae family's bounds against their parts."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import scipy.special
import torch

import vaezoo
from vaezoo.errors import ConfigError
from vaezoo.ops.bessel import log_bessel_iv
from vaezoo.ops.vmf import VonMisesFisher, householder_to, kl_vmf_uniform, log_sphere_area
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()

KAPPAS = torch.tensor([1e-3, 0.3, 1.0, 7.0, 60.0, 900.0, 1e4, 3e4], dtype=torch.float64)


@pytest.mark.parametrize("order", [0.0, 0.5, 1.0, 1.5, 4.0, 19.5, 31.0, 63.5])
def test_log_bessel_matches_scipy_and_so_does_its_derivative(order):
    k = KAPPAS.clone().requires_grad_(True)
    ours = log_bessel_iv(order, k)
    reference = np.log(scipy.special.ive(order, KAPPAS.numpy())) + KAPPAS.numpy()
    np.testing.assert_allclose(ours.detach().numpy(), reference, rtol=0, atol=1e-10)
    (grad,) = torch.autograd.grad(ours.sum(), k)
    ratio = scipy.special.ive(order + 1, KAPPAS.numpy()) / scipy.special.ive(order, KAPPAS.numpy())
    np.testing.assert_allclose(grad.numpy(), ratio + order / KAPPAS.numpy(), rtol=1e-6)


def _theta_grid(n=200000):
    step = math.pi / n
    return torch.arange(n, dtype=torch.float64) * step + step / 2, step


@pytest.mark.parametrize("kappa", [0.5, 4.0, 80.0])
def test_the_density_integrates_to_one_on_the_sphere_and_the_kl_is_its_quadrature(kappa):
    """On S^2 with mu the pole, the density depends on the polar angle t alone: the area element is
    2 pi sin t dt."""
    q = VonMisesFisher(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor(kappa, dtype=torch.float64))
    t, step = _theta_grid()
    z = torch.stack([torch.sin(t), torch.zeros_like(t), torch.cos(t)], dim=-1)
    log_q = q.log_prob(z)
    area = 2 * math.pi * torch.sin(t) * step
    assert float((log_q.exp() * area).sum()) == pytest.approx(1.0, abs=1e-8)
    kl = float((log_q.exp() * (log_q + log_sphere_area(3)) * area).sum())
    assert float(kl_vmf_uniform(q)) == pytest.approx(kl, rel=1e-6, abs=1e-9)
    assert float(q.mean_resultant_length()) == pytest.approx(1 / math.tanh(kappa) - 1 / kappa, rel=1e-9)


def test_on_the_circle_the_density_is_von_mises():
    mu, kappa = torch.tensor([0.6, 0.8], dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
    angle = torch.linspace(-3, 3, 7, dtype=torch.float64)
    z = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
    expected = 3.0 * torch.cos(angle - math.atan2(0.8, 0.6)) - math.log(2 * math.pi * scipy.special.iv(0, 3.0))
    torch.testing.assert_close(VonMisesFisher(mu, kappa).log_prob(z), expected)


@pytest.mark.parametrize("m,kappa", [(3, 0.5), (3, 30.0), (10, 5.0), (10, 500.0)])
def test_the_sampler_draws_unit_vectors_whose_mean_is_a_m_kappa_mu(m, kappa):
    torch.manual_seed(0)
    mu = torch.nn.functional.normalize(torch.randn(m, dtype=torch.float64), dim=0)
    q = VonMisesFisher(mu, torch.tensor(kappa, dtype=torch.float64))
    z = q.sample((40000,))
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(40000, dtype=torch.float64))
    spread = float((1 - q.mean_resultant_length() ** 2).sqrt()) / math.sqrt(40000)
    torch.testing.assert_close(z.mean(0), q.mean, atol=5 * spread + 1e-4, rtol=0)


def test_on_s2_the_component_along_mu_has_the_exact_law():
    """For m = 3, w = mu.z has density proportional to exp(kappa w) on [-1, 1]."""
    torch.manual_seed(1)
    kappa = 2.5
    q = VonMisesFisher(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), torch.tensor(kappa, dtype=torch.float64))
    w = q.sample((50000,))[:, 1].sort().values
    exact = (torch.exp(kappa * w) - math.exp(-kappa)) / (math.exp(kappa) - math.exp(-kappa))
    empirical = torch.arange(1, 50001, dtype=torch.float64) / 50000
    assert float((exact - empirical).abs().max()) < 1.63 / math.sqrt(50000)  # Kolmogorov-Smirnov at 1%


def test_the_householder_map_takes_e1_to_mu_and_keeps_lengths():
    torch.manual_seed(2)
    mu = torch.nn.functional.normalize(torch.randn(5, 4, dtype=torch.float64), dim=-1)
    e1 = torch.zeros(5, 4, dtype=torch.float64)
    e1[:, 0] = 1
    torch.testing.assert_close(householder_to(mu, e1), mu)
    x = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(householder_to(mu, x).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(householder_to(e1, x), x)  # mu = e1: the identity


def test_draws_carry_gradients_to_the_direction_and_the_concentration():
    mu = torch.nn.functional.normalize(torch.randn(3, 5, dtype=torch.float64), dim=-1).requires_grad_(True)
    kappa = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64, requires_grad=True)
    z = VonMisesFisher(mu, kappa).rsample((4,))
    (z * torch.randn_like(z)).sum().backward()
    assert mu.grad.abs().sum() > 0 and (kappa.grad.abs() > 0).all()


SVAE = {"family": "svae", "input_shape": [1, 8, 8], "latent_dim": 4, "encoder": {"name": "mlp", "hidden": [16]},
        "decoder": {"name": "mlp", "hidden": [16]}}


def test_the_svae_elbo_is_reconstruction_minus_the_closed_form_kl_and_iwae_bounds_it():
    torch.manual_seed(0)
    model = vaezoo.create(SVAE)
    x = (torch.rand(6, 1, 8, 8) > 0.5).float()
    torch.manual_seed(1)
    out = model(x)
    q = model.encode(x)
    kl = kl_vmf_uniform(q)
    torch.testing.assert_close(out.terms["kl"], kl.mean())
    assert out.elbo.shape == (6,)
    torch.testing.assert_close(out.elbo.mean(), -(out.terms["recon"] + out.terms["kl"]))
    with torch.no_grad():
        elbo = model.elbo(x, samples=200).mean()
        bound = model.iwae(x, k=200).mean()
    assert float(bound) >= float(elbo) - 0.05


def test_an_svae_trains_saves_and_loads(tmp_path):
    config = tiny_config("svae", epochs=2, select="best_val")
    config["model"] = {**SVAE, "input_shape": config["model"]["input_shape"]}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    assert all(math.isfinite(r["val_neg_elbo"]) for r in read_metrics(tmp_path / "run"))
    loaded = vaezoo.load(tmp_path / "run")
    assert loaded.config.family == "svae" and loaded.sample(3).shape[0] == 3
    codes = loaded.posterior_means(torch.rand(5, *config["model"]["input_shape"]))["z"]
    torch.testing.assert_close(codes.norm(dim=-1), torch.ones(5))


@pytest.mark.parametrize("change,expected", [({"latent_dim": 1}, "m >= 2"), ({"prior": "normal"}, "spherical-uniform")])
def test_a_latent_off_the_sphere_is_refused_by_name(change, expected):
    with pytest.raises(ConfigError, match=expected):
        vaezoo.create({**SVAE, **change})
