"""VAE-GAN: the three updates' losses against a hand computation on the same draws (the features
taken layer by layer from the discriminator's weights), the balance rule, held updates that move
nothing in a real training step, and the loop training all three with the discriminator out of the
published weights."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

import vaezoo
from vaezoo.passes import StepContext
from vaezoo.training.records import read_metrics
from vaezoo.training.step import train_step

from _tiny_training import register, tiny_config

register()

B, D = 5, 3
VAEGAN = {"input_shape": [1, 8, 8], "latent_dim": D, "encoder": {"name": "mlp", "hidden": [16]},
          "decoder": {"name": "mlp", "hidden": [16]},
          "objective": {"name": "vae-gan", "scale": 0.3, "hidden": [12, 10], "feature_layer": 1,
                        "pixel_weight": 0.5}}


def _model(**objective):
    torch.manual_seed(0)
    return vaezoo.create({**VAEGAN, "objective": {**VAEGAN["objective"], **objective}})


def _by_hand(critic, images):
    """(layer-1 features, logit) from the discriminator's weights, one matrix product at a time."""
    h = images.reshape(images.shape[0], -1)
    first, second = critic.layers[0][0], critic.layers[1][0]
    features = torch.relu(h @ first.weight.T + first.bias)
    top = torch.relu(features @ second.weight.T + second.bias)
    return features, (top @ critic.head.weight.T + critic.head.bias).squeeze(-1)


def _draws(model, x, seed):
    """The posterior draw's and the prior draw's decoded means, in the order the objective draws them."""
    torch.manual_seed(seed)
    eps = torch.randn(1, x.shape[0], D)
    q = model.encode(x)
    z = q.mean + q.stddev * eps[0]
    z_prior = torch.randn(x.shape[0], D)
    return q, z, model.decode(z), model.decode(z_prior).mean


def test_the_decoder_and_encoder_losses_are_their_definitions_on_the_same_draws():
    model = _model()
    x = torch.rand(B, 1, 8, 8).round()
    torch.manual_seed(3)
    out = model(x)
    q, z, p_x, prior_mean = _draws(model, x, 3)
    critic = model.objective.discriminator
    real_features, _ = _by_hand(critic, x)
    recon_features, recon_logit = _by_hand(critic, p_x.mean)
    _, prior_logit = _by_hand(critic, prior_mean)
    feature = 0.5 * ((real_features - recon_features) ** 2).sum(-1)
    generator = -(torch.log(torch.sigmoid(recon_logit)) + torch.log(torch.sigmoid(prior_logit))).mean()
    pixel = -p_x.log_prob(x)
    torch.testing.assert_close(out.terms["feature"], feature.mean())
    torch.testing.assert_close(out.terms["generator"], generator)
    torch.testing.assert_close(out.loss, 0.7 * feature.mean() + 0.3 * generator + 0.5 * pixel.mean())
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(q.mean, q.stddev),
                                           torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(out.elbo, -pixel - kl)  # reported for selection and scoring

    torch.manual_seed(4)
    encoder = model.objective.update_loss("encoder", model, x)
    q, z, p_x, _ = _draws(model, x, 4)
    feature = 0.5 * ((real_features - _by_hand(critic, p_x.mean)[0]) ** 2).sum(-1)
    torch.testing.assert_close(encoder.loss, kl.mean() + feature.mean() + 0.5 * -p_x.log_prob(x).mean())


def test_the_discriminator_loss_is_the_cross_entropy_of_data_against_reconstructions_and_prior_images():
    model = _model()
    x = torch.rand(6, 1, 8, 8).round()
    torch.manual_seed(5)
    out = model.objective.update_loss("discriminator", model, x)
    _, _, p_x, prior_mean = _draws(model, x, 5)
    critic = model.objective.discriminator
    probs = [torch.sigmoid(_by_hand(critic, images)[1]) for images in (x, p_x.mean, prior_mean)]
    expected = (F.binary_cross_entropy(probs[0], torch.ones(6)) + F.binary_cross_entropy(probs[1], torch.zeros(6))
                + F.binary_cross_entropy(probs[2], torch.zeros(6))) / 3
    torch.testing.assert_close(out.loss, expected)
    right = int((probs[0] > 0.5).sum() + (probs[1] < 0.5).sum() + (probs[2] < 0.5).sum())
    assert float(out.terms["accuracy"]) == pytest.approx(right / 18)
    out.loss.backward()  # the discriminator's update reaches the discriminator alone
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("objective."))
    assert all(p.grad is not None for p in critic.parameters())


def test_the_groups_are_encoder_decoder_and_discriminator_and_the_discriminator_is_not_published():
    model = _model()
    groups = model.optimizer_groups()
    assert model.training_updates() == ("model", "encoder", "discriminator")
    encoder = {id(p) for p in model.encoder.parameters()}
    critic = {id(p) for p in model.objective.discriminator.parameters()}
    assert {id(p) for p in groups["encoder"]} == encoder
    assert {id(p) for p in groups["discriminator"]} == critic
    assert {id(p) for p in groups["model"]} == {id(p) for p in model.parameters()} - encoder - critic
    assert not any(key.startswith("objective.") for key in model.published_state_dict())


@pytest.mark.parametrize(("real", "fake", "decoder_held", "discriminator_held"), [
    (0.5, 0.9, False, False),   # both inside 0.68 +- 0.4
    (0.2, 0.9, False, True),    # the discriminator wins on the data: it waits
    (0.5, 1.2, True, False),    # it loses on the prior's images: the decoder waits
    (0.2, 1.2, False, False),   # both at once: neither waits
])
def test_the_balance_holds_the_side_that_runs_away(real, fake, decoder_held, discriminator_held):
    objective = _model().objective
    assert objective._held(torch.tensor(real), torch.tensor(fake), "model") is decoder_held
    assert objective._held(torch.tensor(real), torch.tensor(fake), "discriminator") is discriminator_held
    objective.balance = False
    assert not objective._held(torch.tensor(real), torch.tensor(fake), "model")


@pytest.mark.parametrize(("equilibrium", "margin", "still"), [(10.0, 0.1, "discriminator"), (0.01, 0.0, "decoder")])
def test_a_held_update_moves_nothing_in_a_training_step(equilibrium, margin, still):
    # equilibrium 10: every cross-entropy is "winning", the discriminator waits; 0.01: "losing", the decoder waits
    model = _model(equilibrium=equilibrium, margin=margin)
    groups = model.optimizer_groups()
    optimizers = {name: torch.optim.Adam(groups[name], lr=1e-2) for name in model.training_updates()}
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(o, lambda _: 1.0) for name, o in optimizers.items()}
    before = {name: [p.detach().clone() for p in params] for name, params in groups.items()}
    x = torch.rand(8, 1, 8, 8).round()
    row, names = train_step(model, optimizers, schedulers, (x, None), StepContext(), micro_batch_size=None,
                            grad_clip=None, autocast_dtype=None, device_type="cpu")
    held = dict(zip(["loss", *names], row.tolist()))
    assert held["held"] == float(still == "decoder") and held["discriminator/held"] == float(still == "discriminator")
    group = "model" if still == "decoder" else "discriminator"
    for name, params in groups.items():
        moved = any(not torch.equal(p, b) for p, b in zip(params, before[name]))
        assert moved is (name != group), name
    assert all(not optimizers[group].state.get(p) for p in groups[group])  # no Adam state either


def test_a_vaegan_trains_all_three_updates_in_the_loop(tmp_path):
    config = tiny_config("vae-gan", epochs=2, select="best_val")
    config["model"] = {**VAEGAN, "input_shape": config["model"]["input_shape"]}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    records = read_metrics(tmp_path / "run")
    assert all(math.isfinite(r["val_neg_elbo"]) for r in records)
    assert all(f"train_term/{name}" in r for r in records
               for name in ("encoder/loss", "encoder/feature", "discriminator/accuracy", "discriminator/held"))
    loaded = vaezoo.load(tmp_path / "run")
    assert not any(key.startswith("objective.") for key in loaded.published_state_dict())


def test_a_feature_layer_past_the_discriminator_is_refused():
    with pytest.raises(vaezoo.ConfigError, match="feature_layer"):
        _model(feature_layer=3)
