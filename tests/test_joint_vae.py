"""The Joint VAE: its KL, ELBO and importance weights against the two closed forms written out,
Dupont's per-level capacities against their definition, and the family through the training loop."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

import vaezoo
from vaezoo.errors import ConfigError
from vaezoo.passes import StepContext
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()

JOINT = {"family": "joint", "input_shape": [1, 8, 8], "latent_dim": 3, "latents": 2, "categories": 4,
         "encoder": {"name": "mlp", "hidden": [16]}, "decoder": {"name": "mlp", "hidden": [16]}}
CAPACITIES = {"name": "annealed-capacity", "gamma": 30.0,
              "levels": {"z": {"capacity_max": 5.0, "capacity_steps": 100}, "c": {"capacity_max": 2.0,
                                                                                 "capacity_steps": 50}}}


def _model(**change):
    torch.manual_seed(0)
    return vaezoo.create({**JOINT, **change}).eval()


def _by_hand(model, x, eps):
    """The encoder's outputs split by hand, one-hot c from the Gumbel argmax, both KLs written out."""
    out = model.encoder(x)
    mu, logvar, logits = out[:, :3], out[:, 3:6], out[:, 6:].reshape(-1, 2, 4)
    z = mu + torch.exp(0.5 * logvar) * eps[..., :3]
    u = torch.special.ndtr(eps[..., 3:]).clamp(1e-10, 1 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    c = F.one_hot((logits + gumbel.reshape(*eps.shape[:-1], 2, 4)).argmax(-1), 4).float()
    log_px = model.decode(torch.cat([z, c.flatten(-2)], dim=-1)).log_prob(x)
    kl_z = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(-1)
    probs = logits.softmax(-1)
    kl_c = (probs * (probs.log() + math.log(4))).sum((-1, -2))
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - 2 * math.log(4)
    log_q = (torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
             + (c * logits.log_softmax(-1)).sum((-1, -2)))
    return log_px, kl_z, kl_c, log_px + log_p - log_q


def test_the_elbo_and_the_importance_weights_are_the_two_closed_forms_written_out():
    model = _model()
    x = (torch.rand(5, 1, 8, 8) > 0.5).float()
    eps = torch.randn(3, 5, 3 + 8)
    draw = model.latent_pass(x, eps)
    log_px, kl_z, kl_c, log_w = _by_hand(model, x, eps)
    torch.testing.assert_close(draw.log_px, log_px)
    torch.testing.assert_close(draw.kl(), (kl_z + kl_c).expand(3, 5))
    torch.testing.assert_close(draw.log_weights(), log_w)
    assert model.noise_shape == (3 + 8,)


def test_per_level_capacities_hold_each_kl_at_its_own_target():
    model = _model(objective=CAPACITIES)
    model.train()
    x = (torch.rand(5, 1, 8, 8) > 0.5).float()
    torch.manual_seed(4)
    out = model(x, context=StepContext(step=40))
    torch.manual_seed(4)
    draw = model.latent_pass(x, model.draw_noise(x, 1))
    kl_z, kl_c = draw.levels[0].kl()[0].mean(), draw.levels[1].kl()[0].mean()
    expected = -draw.log_px[0].mean() + 30.0 * ((kl_z - 5.0 * 40 / 100).abs() + (kl_c - 2.0 * 40 / 50).abs())
    torch.testing.assert_close(out.loss, expected)
    assert float(out.terms["capacity/c"]) == pytest.approx(1.6) and float(out.terms["capacity/z"]) == pytest.approx(2.0)
    torch.testing.assert_close(out.terms["kl/z"] + out.terms["kl/c"], out.terms["kl"])


def test_a_capacity_for_a_level_the_family_lacks_is_refused_by_name():
    with pytest.raises(ConfigError, match="not latent levels"):
        vaezoo.create({**JOINT, "objective": {**CAPACITIES, "levels": {"z2": {"capacity_max": 1, "capacity_steps": 1}}}})


def test_training_relaxes_c_and_evaluation_decodes_one_hot_codes():
    model = _model()
    x = (torch.rand(4, 1, 8, 8) > 0.5).float()
    eps = torch.randn(1, 4, 11)
    c_eval = model.latent_pass(x, eps).levels[1].z
    model.train()
    c_train = model.latent_pass(x, eps).levels[1].z
    assert set(c_eval.unique().tolist()) <= {0.0, 1.0}
    assert not set(c_train.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(c_train.reshape(1, 4, 2, 4).sum(-1), torch.ones(1, 4, 2))
    assert float(model.temperature) == pytest.approx(0.67)


def test_a_joint_vae_trains_with_its_capacities_saves_and_samples(tmp_path):
    config = tiny_config("joint", epochs=2, select="best_val")
    config["model"] = {**JOINT, "input_shape": config["model"]["input_shape"], "objective": CAPACITIES}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    records = read_metrics(tmp_path / "run")
    assert all(math.isfinite(r["val_neg_elbo"]) for r in records)
    assert "train_term/kl/c" in records[-1] and "train_term/capacity/z" in records[-1]
    loaded = vaezoo.load(tmp_path / "run")
    assert loaded.sample(3).shape[0] == 3
    means = loaded.posterior_means(torch.rand(2, *config["model"]["input_shape"]))
    assert means["z"].shape == (2, 3) and means["c"].shape == (2, 8)
