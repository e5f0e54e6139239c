"""The categorical family: the closed-form KL, Gumbel noise from the zoo's normal streams, the
relaxation and its annealed temperature in training, exact one-hot draws outside it."""

from __future__ import annotations

import io
import math

import pytest
import torch
import yaml
from torch.distributions import Categorical, kl_divergence

import vaezoo
from vaezoo.errors import ConfigError
from vaezoo.ops.categorical import CategoricalPosterior
from vaezoo.passes import StepContext
from vaezoo.training.records import read_metrics

from _tiny_training import TINY_FAMILIES, register, tiny_config

register()


def tiny(**model):
    torch.manual_seed(0)
    return vaezoo.create({"model": {"family": "categorical", "input_shape": [1, 8, 8], **TINY_FAMILIES["categorical"],
                                    "likelihood": "bernoulli", **model}})


def test_the_kl_to_the_uniform_prior_is_the_closed_form():
    logits = torch.randn(5, 3, 4)
    q = CategoricalPosterior(logits)
    uniform = Categorical(probs=torch.full((4,), 0.25))
    expected = kl_divergence(Categorical(logits=logits), uniform).sum(-1)
    torch.testing.assert_close(q.kl_uniform(), expected)


def test_gumbel_noise_from_normal_streams_draws_the_right_categories():
    logits = torch.tensor([[[2.0, 0.0, -1.0, 0.5]]])
    q = CategoricalPosterior(logits)
    draws = q.draw(torch.randn(40000, 1, 4, generator=torch.Generator().manual_seed(0)), temperature=None)
    assert set(draws.unique().tolist()) == {0.0, 1.0} and torch.all(draws.sum(-1) == 1)  # exact one-hot
    frequencies = draws.mean(dim=(0, 1))
    torch.testing.assert_close(frequencies, torch.softmax(logits, -1)[0, 0], atol=0.01, rtol=0)
    log_q = q.log_prob(draws[:3])
    torch.testing.assert_close(log_q, (draws[:3].reshape(3, 1, 1, 4) * q.log_probs).sum((-1, -2)))


def test_training_anneals_the_temperature_and_relaxes_the_draws():
    model = tiny().train()
    x = torch.rand(6, 1, 8, 8).round()
    out = model(x, context=StepContext(step=20))
    assert float(model.temperature) == pytest.approx(max(0.5, math.exp(-0.05 * 20)))
    z = out.z
    assert not torch.all((z == 0) | (z == 1))  # relaxed: between the corners of the simplex
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    model.eval()
    draw = model.latent_pass(x, model.draw_noise(x, 2))
    assert torch.all((draw.z == 0) | (draw.z == 1)) and torch.all(draw.z.reshape(2, 6, 3, 4).sum(-1) == 1)
    assert out.terms["kl"].item() == pytest.approx(float(model.encode(x).kl_uniform().mean()), rel=1e-5)
    nll = -model.iwae(x, k=200, seed=0)
    assert torch.all(nll <= -model.elbo(x, samples=50) + 0.5)  # the bound tightens with k
    assert model.sample(5).shape == (5, 1, 8, 8)


def test_straight_through_decodes_one_hot_in_training():
    model = tiny(hard=True).train()
    out = model(torch.rand(4, 1, 8, 8).round(), context=StepContext(step=0))
    assert torch.all((out.z == 0) | (out.z == 1))
    out.loss.backward()
    assert next(model.encoder.parameters()).grad.abs().sum() > 0


def test_bad_categorical_configs_name_the_field():
    with pytest.raises(ConfigError, match="model.categories: expected an int >= 2"):
        tiny(categories=1)
    with pytest.raises(ConfigError, match="model.temperature.min"):
        tiny(temperature={"min": 0})


def test_it_trains_saves_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    config = tiny_config(family="categorical", epochs=2)
    config["model"]["likelihood"] = "bernoulli"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    model, _ = vaezoo.train(path, out=tmp_path / "run", stream=io.StringIO())
    records = read_metrics(tmp_path / "run")
    assert len(records) == 2 and all(math.isfinite(r["val_neg_elbo"]) for r in records)
    loaded = vaezoo.load(tmp_path / "run")
    x = torch.rand(4, 1, 8, 8).round()
    torch.testing.assert_close(loaded.reconstruct(x), model.eval().reconstruct(x))
    report = vaezoo.evaluation.evaluate(loaded, x, iw_samples=4, elbo_samples=1, progress=False)
    config = loaded.config
    assert report.protocol["prior"] == f"uniform over {config.categories} categories for each of {config.latents} variables"
