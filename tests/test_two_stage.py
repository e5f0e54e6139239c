"""The two-stage VAE's second stage: its loss against the negative ELBO written out, its samples
moving to the first stage's codes, and a model with it saved, loaded and refusing a bound."""

from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.errors import UsageError
from vaezoo.parts.priors.two_stage import TwoStagePrior
from vaezoo.posthoc import fit_two_stage
from vaezoo.posthoc.codes import code_moments

TINY = {"input_shape": [1, 8, 8], "latent_dim": 3, "encoder": {"name": "mlp", "hidden": [16]},
        "decoder": {"name": "mlp", "hidden": [16]}}


def test_the_second_stage_loss_is_its_negative_elbo_written_out():
    torch.manual_seed(0)
    stage = TwoStagePrior(3, depth=2, width=8)
    with torch.no_grad():
        stage.log_gamma.fill_(-0.7)
    z, eps = torch.randn(5, 3), torch.randn(5, 3)
    loss, terms = stage.stage_loss(z, eps)
    mu, log_var = stage.encoder(z).chunk(2, dim=-1)
    u = mu + (0.5 * log_var).exp() * eps
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    nll = -torch.distributions.Normal(stage.decoder(u), math.exp(-0.7)).log_prob(z).sum(-1)
    torch.testing.assert_close(loss, (kl + nll).mean())
    torch.testing.assert_close(terms["kl"], kl.mean())
    assert float(terms["gamma"]) == pytest.approx(math.exp(-0.7))


def test_the_skip_network_sees_its_input_beside_its_hidden_layers():
    stage = TwoStagePrior(4, depth=3, width=8)
    assert stage.decoder.head.in_features == 4 + 8 and len(stage.decoder.body) == 6


def _model_and_images():
    """A tiny VAE whose codes are far from N(0, I): posterior means around 3, standard deviations 0.2."""
    torch.manual_seed(0)
    model = vaezoo.create(TINY)
    last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias[:3] += 3.0
        last.bias[3:] = math.log(0.04)
        last.weight[3:] = 0.0
    images = (torch.rand(512, 1, 8, 8) > 0.6).float()
    return model, images


def test_fitting_brings_the_samples_to_the_first_stages_codes():
    model, images = _model_and_images()
    mean, std = code_moments(model, images)
    codes = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(1))
    before = model.prior.sample(4000)
    fit_two_stage(model, images, depth=2, width=64, epochs=40, batch_size=64, lr=3e-3, seed=0)
    assert model.config.prior.name == "two-stage" and model.config.prior.params == {"depth": 2, "width": 64}
    with torch.no_grad():
        after = model.prior.sample(4000)

    def gap(samples):  # distance of the first two moments from the codes'
        return float((samples.mean(0) - codes.mean(0)).norm() + (samples.std(0) - codes.std(0)).norm())

    assert gap(after) < gap(before) / 3
    assert not any(p.requires_grad for p in model.prior.parameters())


def test_a_two_stage_model_saves_loads_samples_the_same_and_refuses_a_bound(tmp_path):
    model, images = _model_and_images()
    fit_two_stage(model, images, depth=1, width=16, epochs=2, seed=3)
    folder = model.save_pretrained(tmp_path / "two-stage")
    loaded = vaezoo.load(folder)
    assert loaded.config.prior.name == "two-stage"
    torch.manual_seed(5)
    a = model.sample(4, mean=True)
    torch.manual_seed(5)
    b = loaded.sample(4, mean=True)
    torch.testing.assert_close(a, b)
    with pytest.raises(UsageError, match="no density"):
        loaded(images[:4])


def test_fitting_is_deterministic_for_a_seed_and_leaves_the_global_stream_alone():
    model, images = _model_and_images()
    torch.manual_seed(11)
    expected = torch.rand(1)
    torch.manual_seed(11)
    first = fit_two_stage(model, images, depth=1, width=16, epochs=2, seed=4).prior.state_dict()
    assert torch.equal(torch.rand(1), expected)
    model, images = _model_and_images()
    second = fit_two_stage(model, images, depth=1, width=16, epochs=2, seed=4).prior.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_conditional_model_is_refused_by_name():
    config = {**TINY, "family": "cvae", "num_classes": 3}
    torch.manual_seed(0)
    model = vaezoo.create(config)
    with pytest.raises(UsageError, match="'cvae' family"):
        fit_two_stage(model, torch.rand(8, 1, 8, 8), epochs=1)
