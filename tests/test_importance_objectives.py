"""MIWAE, CIWAE and the DReG estimator of IWAE: each bound against its definition computed here
from the model's public encode/decode, and DReG's gradients against the estimator's formula and,
in expectation, against the standard IWAE gradient."""

from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.errors import UsageError

from _tiny_training import _tiny, briefly_train

B, D = 12, 3


def tiny_model(objective: dict, **model) -> vaezoo.VAE:
    torch.manual_seed(0)
    return vaezoo.create({"input_shape": [1, 8, 8], "latent_dim": D, "encoder": {"name": "mlp", "hidden": [16]},
                          "decoder": {"name": "mlp", "hidden": [16]}, "objective": objective, **model})


def images(n: int = B) -> torch.Tensor:
    return _tiny().train_images[:n].float() / 255


def log_weights_by_hand(model, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log p(x|z) + log N(z; 0, I) - log q(z|x) for z = mu + sigma * eps, (S, B), written out."""
    q = model.encode(x)
    z = q.mu + torch.exp(0.5 * q.logvar) * eps
    log_q = (-0.5 * (eps ** 2 + q.logvar + math.log(2 * math.pi))).sum(-1)
    log_prior = (-0.5 * (z ** 2 + math.log(2 * math.pi))).sum(-1)
    log_px = torch.stack([model.decode(z[s]).log_prob(x) for s in range(z.shape[0])])
    return log_px + log_prior - log_q


def loss_and_noise(model, x: torch.Tensor, draws: int, seed: int = 3):
    torch.manual_seed(seed)
    loss = model(x).loss
    torch.manual_seed(seed)
    return loss, torch.randn(draws, x.shape[0], D)


def test_miwae_is_the_mean_of_m_iwae_bounds_of_k_draws():
    model, x = tiny_model({"name": "miwae", "m": 3, "k": 4}), images()
    loss, eps = loss_and_noise(model, x, 12)
    log_w = log_weights_by_hand(model, x, eps)
    bounds = [torch.logsumexp(log_w[4 * m:4 * m + 4], dim=0) - math.log(4) for m in range(3)]
    torch.testing.assert_close(loss, -(sum(bounds) / 3).mean())


def test_miwae_with_one_group_is_iwae_and_with_one_draw_per_group_the_elbo():
    x = images()
    iwae = tiny_model({"name": "iwae", "k": 6})
    for m, k in ((1, 6), (6, 1)):
        miwae = tiny_model({"name": "miwae", "m": m, "k": k})
        loss, eps = loss_and_noise(miwae, x, 6)
        if k == 6:
            torch.testing.assert_close(loss, loss_and_noise(iwae, x, 6)[0])
        else:
            torch.testing.assert_close(loss, -log_weights_by_hand(miwae, x, eps).mean())


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_ciwae_is_the_convex_combination_of_the_elbo_and_iwae(beta):
    model, x = tiny_model({"name": "ciwae", "k": 5, "beta": beta}), images()
    loss, eps = loss_and_noise(model, x, 5)
    log_w = log_weights_by_hand(model, x, eps)
    expected = beta * log_w.mean(0) + (1 - beta) * (torch.logsumexp(log_w, 0) - math.log(5))
    torch.testing.assert_close(loss, -expected.mean())


def test_ciwae_refuses_a_beta_outside_zero_one():
    with pytest.raises(Exception, match="beta"):
        tiny_model({"name": "ciwae", "k": 5, "beta": 1.5})


def grads(model, loss, params):
    return torch.autograd.grad(loss, params)


def test_dreg_keeps_the_iwae_loss_and_the_decoders_gradient():
    x = images()
    standard, dreg = tiny_model({"name": "iwae", "k": 5}), tiny_model({"name": "iwae", "k": 5, "estimator": "dreg"})
    dreg.load_state_dict(standard.state_dict())
    loss_s, _ = loss_and_noise(standard, x, 5)
    loss_d, _ = loss_and_noise(dreg, x, 5)
    torch.testing.assert_close(loss_d, loss_s)
    decoder_s = grads(standard, loss_s, list(standard.decoder.parameters()))
    decoder_d = grads(dreg, loss_d, list(dreg.decoder.parameters()))
    for a, b in zip(decoder_s, decoder_d):
        torch.testing.assert_close(a, b)


def test_dreg_gives_the_encoder_the_squared_weight_path_derivative():
    """sum_k w_k^2 d log w_k / d z_k d z_k / d phi (Tucker et al. 2019, eq. 5), written out: the
    derivative in z with q's parameters held, then carried to the encoder through z = mu + sigma eps."""
    model, x = tiny_model({"name": "iwae", "k": 5, "estimator": "dreg"}), images()
    encoder = list(model.encoder.parameters())
    loss, eps = loss_and_noise(model, x, 5)
    estimate = grads(model, loss, encoder)

    q = model.encode(x)
    z = q.mu + torch.exp(0.5 * q.logvar) * eps
    z_held = z.detach().requires_grad_(True)
    log_q_held = (-0.5 * ((z_held - q.mu.detach()) ** 2 * torch.exp(-q.logvar.detach()) + q.logvar.detach()
                          + math.log(2 * math.pi))).sum(-1)
    log_w = (torch.stack([model.decode(z_held[s]).log_prob(x) for s in range(5)])
             - 0.5 * (z_held ** 2 + math.log(2 * math.pi)).sum(-1) - log_q_held)
    dlogw_dz, = torch.autograd.grad(log_w.sum(), z_held)
    w = torch.softmax(log_w.detach(), dim=0)
    per_image = -(w ** 2).unsqueeze(-1) * dlogw_dz / x.shape[0]  # the loss is minus the batch mean
    expected = torch.autograd.grad(z, encoder, grad_outputs=per_image)
    for a, b in zip(estimate, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_dreg_and_the_standard_estimator_agree_in_expectation():
    """Both are unbiased for the encoder's gradient of the same bound: averaged over many
    draws of one image they agree within their Monte Carlo error, and DReG's spread is smaller."""
    x = images(1)
    standard, dreg = tiny_model({"name": "iwae", "k": 8}), tiny_model({"name": "iwae", "k": 8, "estimator": "dreg"})
    briefly_train(standard, images(256), steps=150)
    dreg.load_state_dict(standard.state_dict())
    weight_s, weight_d = standard.encoder.net[4].weight, dreg.encoder.net[4].weight  # the head to (mu, logvar)
    torch.manual_seed(1)
    samples = {"standard": [], "dreg": []}
    for _ in range(40):  # 40 batches of 500 copies: each batch's gradient is the mean of 500 estimates
        for name, model, weight in (("standard", standard, weight_s), ("dreg", dreg, weight_d)):
            samples[name].append(torch.autograd.grad(model(x.expand(500, -1, -1, -1)).loss, weight)[0])
    mean_s, mean_d = (torch.stack(samples[n]).mean(0) for n in ("standard", "dreg"))
    error = torch.sqrt(torch.stack(samples["standard"]).var(0) / 40 + torch.stack(samples["dreg"]).var(0) / 40)
    z_scores = ((mean_s - mean_d) / error.clamp_min(1e-12)).flatten()
    assert z_scores.abs().mean() < 1.2  # ~0.8 for two estimates of one mean; a biased one is far out
    assert z_scores.abs().quantile(0.99) < 4.5
    assert torch.stack(samples["dreg"]).var(0).sum() < torch.stack(samples["standard"]).var(0).sum()


def test_dreg_needs_one_gaussian_level():
    x = images()
    hvae = vaezoo.create({"family": "hvae", "input_shape": [1, 8, 8], "latent_dims": [3, 2], "hidden": 16,
                          "features": 16, "objective": {"name": "iwae", "k": 3, "estimator": "dreg"}})
    with pytest.raises(UsageError, match="estimator: standard"):
        hvae(x)
    flow = tiny_model({"name": "iwae", "k": 3, "estimator": "dreg"}, posterior={"name": "planar", "steps": 2})
    with pytest.raises(UsageError, match="without a flow"):
        flow(x)


@pytest.mark.parametrize("objective", [{"name": "miwae", "m": 2, "k": 3}, {"name": "ciwae", "k": 6},
                                       {"name": "iwae", "k": 6, "estimator": "dreg"}])
def test_each_importance_objective_trains_its_bound_up(objective):
    model, data = tiny_model(objective), images(256).round()  # binary blobs: grey ones leave little to learn
    before = float(-model.iwae(data[:64], 50, seed=0).mean())
    briefly_train(model, data, steps=200)
    after = float(-model.iwae(data[:64], 50, seed=0).mean())
    assert after < before - 3  # 44.8 -> 39.8 to 40.5 nats in 200 steps; an ELBO-trained model: 41.8


# ------------------------------------------------------------------ PIWAE: two bounds, two optimizers


def test_piwae_splits_the_model_into_the_encoders_group_and_the_rest():
    model = tiny_model({"name": "piwae", "m": 2, "k": 3}, posterior={"name": "planar", "steps": 1})
    groups = model.optimizer_groups()
    assert model.training_updates() == ("model", "encoder")
    encoder = {id(p) for module in (model.encoder, model.flow) for p in module.parameters()}
    assert {id(p) for p in groups["encoder"]} == encoder
    assert {id(p) for p in groups["model"]} == {id(p) for p in model.parameters()} - encoder
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())  # the encoder is published


def test_a_piwae_step_moves_the_decoder_by_iwae_and_the_encoder_by_miwae():
    from vaezoo.passes import StepContext
    from vaezoo.training.step import train_step

    x = images()
    model = tiny_model({"name": "piwae", "m": 2, "k": 3})
    by_hand = tiny_model({"name": "piwae", "m": 2, "k": 3})
    groups = model.optimizer_groups()
    optimizers = {name: torch.optim.SGD(groups[name], lr=0.1) for name in model.training_updates()}
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(o, lambda _: 1.0) for name, o in optimizers.items()}
    torch.manual_seed(7)
    train_step(model, optimizers, schedulers, (x, None), StepContext(), micro_batch_size=None, grad_clip=None,
               autocast_dtype=None, device_type="cpu")

    torch.manual_seed(7)  # the same draws in the same order: IWAE(6) for the decoder, then MIWAE(2, 3)
    decoder = [p for p in by_hand.parameters() if all(p is not q for q in by_hand.encoder.parameters())]
    eps = torch.randn(6, B, D)
    iwae = -(torch.logsumexp(log_weights_by_hand(by_hand, x, eps), 0) - math.log(6)).mean()
    with torch.no_grad():
        for p, g in zip(decoder, torch.autograd.grad(iwae, decoder)):
            p -= 0.1 * g
    eps = torch.randn(6, B, D)
    log_w = log_weights_by_hand(by_hand, x, eps).reshape(2, 3, B)
    miwae = -(torch.logsumexp(log_w, 1) - math.log(3)).mean(0).mean()
    encoder = list(by_hand.encoder.parameters())
    with torch.no_grad():
        for p, g in zip(encoder, torch.autograd.grad(miwae, encoder)):
            p -= 0.1 * g
    for (name, a), b in zip(model.state_dict().items(), by_hand.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_piwae_trains_end_to_end_with_the_encoder_optimizer_in_its_checkpoint(tmp_path):
    import io

    from vaezoo.layout.checkpoint import load_checkpoint

    from _tiny_training import register, tiny_config

    register()
    config = tiny_config({"name": "piwae", "m": 2, "k": 2}, epochs=1, optimizer={"lr": 3e-3})
    printed = io.StringIO()
    model, _ = vaezoo.train(config, out=tmp_path / "run", stream=printed)
    checkpoint = load_checkpoint(tmp_path / "run")
    assert sorted(checkpoint.optimizers) == ["encoder", "model"]
    # the encoder's optimizer takes the model's settings when the recipe gives it none
    assert checkpoint.optimizers["encoder"]["param_groups"][0]["lr"] == pytest.approx(3e-3)
    assert "encoder/loss" in printed.getvalue()
    assert vaezoo.load(tmp_path / "run").num_parameters() == model.num_parameters()


def test_piwae_needs_an_inference_network_of_its_own():
    with pytest.raises(Exception, match="piwae trains the inference network"):
        vaezoo.create({"family": "ladder", "input_shape": [1, 8, 8], "latent_dims": [3, 2], "hidden": [16, 8],
                       "encoder": {"name": "mlp", "hidden": [16]}, "decoder": {"name": "mlp", "hidden": [16]},
                       "objective": "piwae"})
