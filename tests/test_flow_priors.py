"""The autoregressive flow priors (maf, iaf): each density against the change of variables through
the Jacobian autograd computes, against quadrature on a grid, the two directions inverting each
other; and the fitting on a model's codes."""

from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.errors import UsageError
from vaezoo.parts.priors.autoregressive import IAFPrior, MAFPrior
from vaezoo.posthoc import fit_flow_prior
from vaezoo.posthoc.codes import code_moments

TINY = {"input_shape": [1, 8, 8], "latent_dim": 3, "encoder": {"name": "mlp", "hidden": [16]},
        "decoder": {"name": "mlp", "hidden": [16]}}


def _flow(kind, dim=3, seed=0):
    torch.manual_seed(seed)
    flow = {"maf": MAFPrior, "iaf": IAFPrior}[kind](dim, blocks=2, hidden=(16, 16)).double()
    with torch.no_grad():  # away from the identity the heads start at
        for block in flow.blocks:
            block.head.weight.normal_(0, 0.3)
            block.head.bias.normal_(0, 0.3)
    return flow


def _maf_to_noise(flow, z):
    for block in flow.blocks:
        m, s = block(z)
        z = (z - m) * torch.exp(-s)
    return z


def _iaf_from_noise(flow, u):
    for block in flow.blocks:
        m, s = block(u)
        u = u * torch.exp(s) + m
    return u


def test_the_maf_density_is_the_change_of_variables_with_the_full_jacobian():
    flow = _flow("maf")
    z = torch.randn(4, 3, dtype=torch.float64)
    for point, log_p in zip(z, flow.log_prob(z)):
        jacobian = torch.autograd.functional.jacobian(lambda v: _maf_to_noise(flow, v[None])[0], point)
        u = _maf_to_noise(flow, point[None])[0].detach()
        expected = -0.5 * float(u @ u) - 1.5 * math.log(2 * math.pi) + float(torch.linalg.slogdet(jacobian)[1])
        assert float(log_p.detach()) == pytest.approx(expected, abs=1e-9)


def test_the_iaf_density_inverts_its_sampling_map_with_the_full_jacobian():
    flow = _flow("iaf")
    u = torch.randn(4, 3, dtype=torch.float64)
    z = _iaf_from_noise(flow, u)
    for point, noise, log_p in zip(z, u, flow.log_prob(z)):
        jacobian = torch.autograd.functional.jacobian(lambda v: _iaf_from_noise(flow, v[None])[0], noise)
        expected = -0.5 * float(noise @ noise) - 1.5 * math.log(2 * math.pi) - float(torch.linalg.slogdet(jacobian)[1])
        assert float(log_p.detach()) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("kind", ["maf", "iaf"])
def test_each_density_integrates_to_one_on_a_grid(kind):
    flow = _flow(kind, dim=2)
    step = 0.04
    axis = torch.arange(-9, 9, step, dtype=torch.float64) + step / 2
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        mass = float(flow.log_prob(grid).exp().sum()) * step ** 2
    assert mass == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("kind", ["maf", "iaf"])
def test_samples_come_from_the_density(kind):
    """The sampler and the density describe one distribution: the samples' mean log-density equals
    minus the entropy, which the density alone gives by importance sampling from a wide Gaussian."""
    flow = _flow(kind, dim=2)
    torch.manual_seed(1)
    with torch.no_grad():
        samples = flow.sample(20000)
        wide = torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), 4.0)
        points = wide.sample((200000,))
        log_p = flow.log_prob(points)
        weights = (log_p - wide.log_prob(points).sum(-1)).exp()
        entropy = -float((weights * log_p).mean())
        assert -float(flow.log_prob(samples).mean()) == pytest.approx(entropy, abs=0.05)


def test_maf_sampling_inverts_its_density_map():
    flow = _flow("maf")
    torch.manual_seed(3)
    with torch.no_grad():
        z = flow.sample(6)
    torch.manual_seed(3)
    torch.testing.assert_close(_maf_to_noise(flow, z), torch.randn(6, 3, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["maf", "iaf"])
def test_a_fitted_flow_scores_the_codes_above_the_standard_normal_and_saves(kind, tmp_path):
    torch.manual_seed(0)
    model = vaezoo.create(TINY)
    last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # codes far from N(0, I)
        last.bias[:3] += 2.0
        last.weight[:3] *= 4.0
    images = (torch.rand(512, 1, 8, 8) > 0.6).float()
    codes, _ = code_moments(model, images)
    before = float(model.prior.log_prob(codes).mean())
    fit_flow_prior(model, images, kind, blocks=2, hidden=(32, 32), epochs=15, batch_size=64, lr=3e-3)
    with torch.no_grad():
        after = float(model.prior.log_prob(codes).mean())
    assert after > before + 1.0
    assert model.config.prior.name == kind and model.config.prior.params == {"blocks": 2, "hidden": (32, 32)}
    loaded = vaezoo.load(model.save_pretrained(tmp_path / kind))
    with torch.no_grad():
        torch.testing.assert_close(loaded.prior.log_prob(codes), model.prior.log_prob(codes))
        assert torch.isfinite(loaded(images[:8]).loss)  # a density: the bounds still work


def test_an_unknown_kind_is_refused():
    torch.manual_seed(0)
    with pytest.raises(UsageError, match="maf, iaf"):
        fit_flow_prior(vaezoo.create(TINY), torch.rand(8, 1, 8, 8), "real-nvp")


def test_fit_prior_writes_a_model_with_its_flow_prior_and_records_how(tmp_path, capsys):
    from vaezoo.cli import main
    from vaezoo.layout.files import read_config

    from _tiny_training import register, tiny_config

    register()
    config = tiny_config("elbo", epochs=1)
    vaezoo.train(config, out=tmp_path / "run", progress=False)
    code = main(["fit-prior", str(tmp_path / "run"), "--prior", "maf", "--epochs", "2", "--batch-size", "32",
                 "--out", str(tmp_path / "maf")])
    assert code == 0 and "with its maf prior" in capsys.readouterr().out
    loaded = vaezoo.load(tmp_path / "maf")
    assert loaded.config.prior.name == "maf"
    record = read_config(tmp_path / "maf" / "config.json").training["posthoc_prior"]
    assert (record["prior"], record["epochs"], record["batch_size"], record["blocks"]) == ("maf", 2, 32, 2)


def test_a_deterministic_autoencoders_codes_take_a_flow_prior():
    torch.manual_seed(0)
    model = vaezoo.create({**TINY, "family": "ae"})
    images = (torch.rand(256, 1, 8, 8) > 0.6).float()
    mean, std = code_moments(model, images)
    assert torch.equal(std, torch.zeros_like(mean))
    fit_flow_prior(model, images, "maf", hidden=(16,), epochs=2)
    assert model.config.prior.name == "maf" and model.sample(3).shape == (3, 1, 8, 8)
