"""The annealed-capacity β-VAE and DIP-VAE: each loss against an independent calculation, and what
each is for (the KL held at C; the covariance pulled to the identity) on a briefly trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaezoo
from vaezoo.errors import UsageError
from vaezoo.parts.objectives.disentangling import capacity_at, dip_covariance, dip_penalty
from vaezoo.passes import StepContext

from _tiny_training import _tiny, briefly_train, register, tiny_config


def tiny_model(objective: dict, **model) -> vaezoo.VAE:
    return vaezoo.create({"input_shape": [1, 8, 8], "latent_dim": 4, "encoder": {"name": "mlp", "hidden": [32]},
                          "decoder": {"name": "mlp", "hidden": [32]}, "objective": objective, **model})


def blobs() -> torch.Tensor:
    return _tiny().train_images.float() / 255


def test_the_capacity_grows_linearly_then_holds():
    assert [capacity_at(step, 25.0, 100) for step in (0, 10, 50, 100, 1000)] == [0.0, 2.5, 12.5, 25.0, 25.0]
    assert capacity_at(0, 7.0, 0) == 7.0  # no annealing: the capacity from the first step


def test_the_annealed_capacity_loss_is_gamma_times_the_kl_distance_from_c():
    torch.manual_seed(0)
    model = tiny_model({"name": "annealed-capacity", "gamma": 30.0, "capacity_max": 20.0, "capacity_steps": 100})
    x = blobs()[:16]
    for step in (0, 40, 500):
        torch.manual_seed(3)
        out = model(x, context=StepContext(1.0, step, 192))
        torch.manual_seed(3)  # the same draw through the plain ELBO: its recon and KL
        posterior = model.encode(x)
        z = posterior.rsample()
        recon = -model.decode(z).log_prob(x).mean()
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(posterior.mu, (0.5 * posterior.logvar).exp()),
                                               torch.distributions.Normal(0.0, 1.0)).sum(-1).mean()
        c = 20.0 * min(step, 100) / 100
        torch.testing.assert_close(out.loss, recon + 30.0 * (kl - c).abs())
        torch.testing.assert_close(out.kl, kl)
        assert float(out.terms["capacity"]) == pytest.approx(c)


def test_the_per_image_penalty_holds_each_images_kl_where_the_batch_form_holds_their_mean():
    """pythae's form, mean_i |KL_i - C|, against the batch form |mean_i KL_i - C|, at a C between the images'
    KLs: there the two differ, and each is its own hand computation."""
    x = blobs()[:16]
    losses = {}
    for per_image in (False, True):
        torch.manual_seed(0)
        model = tiny_model({"name": "annealed-capacity", "gamma": 30.0, "capacity_max": 2.0, "capacity_steps": 0,
                            "per_image": per_image})
        with torch.no_grad():
            for p in model.encoder.parameters():  # images with KLs of a few nats, spread across C
                p.mul_(3.0)
            torch.manual_seed(3)
            out = model(x)
            torch.manual_seed(3)
            posterior = model.encode(x)
            recon = -model.decode(posterior.rsample()).log_prob(x).mean()
            kl = (0.5 * (posterior.mu.pow(2) + posterior.logvar.exp() - 1 - posterior.logvar)).sum(-1)
        assert float(kl.min()) < 2.0 < float(kl.max())  # the images' KLs on both sides of C
        expected = (kl - 2.0).abs().mean() if per_image else (kl.mean() - 2.0).abs()
        torch.testing.assert_close(out.loss, recon + 30.0 * expected)
        losses[per_image] = float(out.loss)
    assert losses[True] > losses[False] + 1.0  # |mean| < mean |.| when the KLs straddle C


def test_a_large_gamma_holds_the_kl_at_the_capacity():
    torch.manual_seed(0)
    images = blobs()
    for target in (2.0, 6.0):
        model = tiny_model({"name": "annealed-capacity", "gamma": 50.0, "capacity_max": target, "capacity_steps": 0})
        briefly_train(model, images, steps=300)
        with torch.no_grad():
            kl = float(model(images).kl)
        assert kl == pytest.approx(target, abs=0.5)


def test_dip_covariances_match_the_moments_of_the_batch():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(500, 3, generator=gen, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 2.0]], dtype=torch.float64)
    logvar = torch.randn(500, 3, generator=gen, dtype=torch.float64) - 1
    # I: numpy's biased covariance of the means
    np.testing.assert_allclose(dip_covariance(mu, logvar, "i").numpy(), np.cov(mu.numpy().T, bias=True), atol=1e-12)
    # II: the covariance of samples of the aggregate posterior, by Monte Carlo with many draws per posterior
    draws = mu + (0.5 * logvar).exp() * torch.randn(400, 500, 3, generator=gen, dtype=torch.float64)
    sampled = np.cov(draws.reshape(-1, 3).numpy().T, bias=True)
    np.testing.assert_allclose(dip_covariance(mu, logvar, "ii").numpy(), sampled, atol=0.02)


def test_the_dip_penalty_weighs_the_off_diagonal_and_the_diagonal_apart():
    c = torch.tensor([[2.0, 0.5, -1.0], [0.5, 1.0, 0.0], [-1.0, 0.0, 0.5]])
    off = 0.5 ** 2 * 2 + 1.0 ** 2 * 2
    diag = (2.0 - 1) ** 2 + 0 + (0.5 - 1) ** 2
    assert float(dip_penalty(c, 3.0, 7.0)) == pytest.approx(3 * off + 7 * diag)
    assert float(dip_penalty(torch.eye(4), 3.0, 7.0)) == 0.0


@pytest.mark.parametrize("kind", ["i", "ii"])
def test_the_dip_vae_loss_is_the_negative_elbo_plus_the_penalty(kind):
    torch.manual_seed(0)
    model = tiny_model({"name": "dip-vae", "kind": kind, "lambda_od": 4.0, "lambda_d": 9.0})
    elbo_model = tiny_model("elbo")
    elbo_model.load_state_dict(model.state_dict())
    x = blobs()[:32]
    torch.manual_seed(5)
    out = model(x)
    torch.manual_seed(5)
    plain = elbo_model(x)
    posterior = model.encode(x)
    mu, var = posterior.mu.detach().double().numpy(), posterior.logvar.exp().detach().double().numpy()
    covariance = np.cov(mu.T, bias=True) + (np.diag(var.mean(0)) if kind == "ii" else 0)
    penalty = 4.0 * (covariance ** 2).sum() - 4.0 * (np.diag(covariance) ** 2).sum() \
        + 9.0 * ((np.diag(covariance) - 1) ** 2).sum()
    assert float(out.terms["dip"].detach()) == pytest.approx(penalty, rel=1e-4)
    torch.testing.assert_close(out.loss, plain.loss + out.terms["dip"])


def test_dip_vae_pulls_the_covariance_of_the_means_to_the_identity():
    images = blobs()

    def distance_from_identity(objective) -> float:
        torch.manual_seed(0)
        model = briefly_train(tiny_model(objective), images, steps=300)
        with torch.no_grad():
            q = model.encode(images)
        return float((dip_covariance(q.mu, q.logvar, "i") - torch.eye(4)).pow(2).sum())

    plain, dip = distance_from_identity("elbo"), distance_from_identity({"name": "dip-vae", "lambda_od": 20.0,
                                                                         "lambda_d": 20.0})
    assert dip < 0.25 * plain


def test_dip_vae_needs_one_gaussian_level():
    register()
    config = tiny_config({"name": "dip-vae"}, family="hvae")
    model = vaezoo.create(config)
    with pytest.raises(UsageError, match="dip-vae needs one diagonal Gaussian latent level.*'hvae' model has 2"):
        model(torch.rand(4, 1, 8, 8))


def test_both_objectives_train_through_the_loop(tmp_path):
    register()
    for objective in ({"name": "annealed-capacity", "gamma": 10.0, "capacity_max": 5.0, "capacity_steps": 12},
                      {"name": "dip-vae", "kind": "ii", "lambda_od": 1.0, "lambda_d": 1.0}):
        model, metrics = vaezoo.train(tiny_config(objective), out=tmp_path / objective["name"], progress=False)
        assert np.isfinite(metrics["val_neg_elbo"])
