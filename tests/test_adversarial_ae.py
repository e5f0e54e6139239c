"""The adversarial autoencoder: both updates' losses against their definitions on the same draws, the
discriminator's update training it alone, and the loop training both with the discriminator out of the
published weights."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

import vaezoo
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()

AAE = {"input_shape": [1, 8, 8], "latent_dim": 3, "encoder": {"name": "mlp", "hidden": [16]},
       "decoder": {"name": "mlp", "hidden": [16]},
       "objective": {"name": "aae", "scale": 2.0, "hidden": [8]}}


def _model():
    torch.manual_seed(0)
    return vaezoo.create(AAE)


def test_the_model_update_is_reconstruction_plus_scale_times_minus_log_d_of_the_codes():
    model = _model()
    x = torch.rand(5, 1, 8, 8).round()
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)
    eps = torch.randn(1, 5, 3)
    q = model.encode(x)
    z = q.mean + q.stddev * eps[0]
    recon = -model.decode(z).log_prob(x)
    d = torch.sigmoid(model.objective.discriminator(z))
    torch.testing.assert_close(out.terms["adversarial"], -torch.log(d).mean())
    torch.testing.assert_close(out.loss, recon.mean() + 2.0 * -torch.log(d).mean())
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(q.mean, q.stddev),
                                           torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(out.elbo, -recon - kl)  # reported, not trained on


def test_the_discriminator_update_is_its_cross_entropy_prior_against_codes():
    model = _model()
    x = torch.rand(6, 1, 8, 8).round()
    torch.manual_seed(2)
    out = model.objective.update_loss("discriminator", model, x)
    torch.manual_seed(2)
    q = model.encode(x)
    codes = q.mean + q.stddev * torch.randn(6, 3)
    prior = torch.randn(6, 3)
    critic = model.objective.discriminator
    p_prior, p_codes = torch.sigmoid(critic(prior)), torch.sigmoid(critic(codes))
    expected = -(torch.log(p_prior).sum() + torch.log(1 - p_codes).sum()) / 12
    torch.testing.assert_close(out.loss, expected)
    right = int((p_prior > 0.5).sum() + (p_codes < 0.5).sum())
    assert float(out.terms["accuracy"]) == pytest.approx(right / 12)


def test_the_discriminator_update_reaches_the_discriminator_alone():
    model = _model()
    loss = model.objective.update_loss("discriminator", model, torch.rand(6, 1, 8, 8).round()).loss
    loss.backward()
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("objective."))
    assert all(p.grad is not None for p in model.objective.discriminator.parameters())


def test_the_model_update_moves_the_encoder_toward_what_the_discriminator_calls_prior():
    model = _model()
    x = torch.rand(6, 1, 8, 8).round()
    model.objective.scale = 1.0
    adversarial = model(x).terms["adversarial"]
    grads = torch.autograd.grad(adversarial, list(model.encoder.parameters()))
    assert any(float(g.abs().sum()) > 0 for g in grads)
    # the generator's term is the cross-entropy with the label "prior"
    z = model(x).z
    logits = model.objective.discriminator(z)
    torch.testing.assert_close(F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)),
                               F.softplus(-logits).mean())


def test_an_aae_trains_both_updates_in_the_loop_and_publishes_without_its_discriminator(tmp_path):
    config = tiny_config("aae", epochs=2, select="best_val")
    config["model"] = {**AAE, "input_shape": config["model"]["input_shape"]}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    records = read_metrics(tmp_path / "run")
    assert all(math.isfinite(r["val_neg_elbo"]) for r in records)
    assert all("train_term/discriminator/loss" in r and "train_term/discriminator/accuracy" in r for r in records)
    loaded = vaezoo.load(tmp_path / "run")
    published = loaded.published_state_dict()
    assert published and not any(key.startswith("objective.discriminator") for key in published)


def test_a_deterministic_aae_is_an_autoencoder_without_a_bound(tmp_path):
    config = tiny_config("aae-point", epochs=2, select="best_val")
    config["model"] = {**AAE, "family": "ae", "input_shape": config["model"]["input_shape"],
                       "objective": {**AAE["objective"], "deterministic": True}}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    records = read_metrics(tmp_path / "run")
    assert all(r["val_neg_elbo"] is None and math.isfinite(r["val_loss"]) for r in records)
    model = vaezoo.load(tmp_path / "run")
    x = torch.rand(4, *config["model"]["input_shape"]).round()
    out = model(x)
    z = model.encoder(x)
    recon = -model.decode(z).log_prob(x).mean()
    torch.testing.assert_close(out.loss, recon + 2.0 * F.softplus(-model.objective.discriminator(z)).mean())
    assert out.elbo is None and "kl" not in out.terms
    with pytest.raises(vaezoo.ConfigError, match="points"):
        vaezoo.create({**AAE, "objective": {**AAE["objective"], "deterministic": True}})
