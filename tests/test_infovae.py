"""InfoVAE (MMD): its loss against the definition, the MMD written as a direct double sum here."""

from __future__ import annotations

import pytest
import torch

import vaezoo

from _tiny_training import _tiny, briefly_train


def tiny_model(objective: dict) -> vaezoo.VAE:
    torch.manual_seed(0)
    return vaezoo.create({"input_shape": [1, 8, 8], "latent_dim": 3, "encoder": {"name": "mlp", "hidden": [16]},
                          "decoder": {"name": "mlp", "hidden": [16]}, "objective": objective})


def mmd_by_double_sum(a: torch.Tensor, b: torch.Tensor, bandwidths) -> torch.Tensor:
    def k(u, v):
        return sum(c / (c + float(((u - v) ** 2).sum())) for c in bandwidths)
    n, m = len(a), len(b)
    within_a = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_b = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    between = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return torch.tensor(within_a + within_b - 2 * between)


@pytest.mark.parametrize("alpha, lam", [(0.0, 1000.0), (0.5, 20.0), (1.0, 1.0)])
def test_the_info_vae_loss_is_recon_plus_weighted_kl_and_mmd(alpha, lam):
    model = tiny_model({"name": "info-vae", "alpha": alpha, "lam": lam, "scales": [0.5, 2.0]})
    x = _tiny().train_images[:10].float() / 255
    torch.manual_seed(5)
    out = model(x)
    torch.manual_seed(5)
    eps, prior = torch.randn(1, 10, 3)[0], torch.randn(10, 3)  # the posterior's noise, then the prior's draws
    q = model.encode(x)
    z = q.mu + torch.exp(0.5 * q.logvar) * eps
    recon = -model.decode(z).log_prob(x).mean()
    kl = (0.5 * (q.logvar.exp() + q.mu ** 2 - 1 - q.logvar)).sum(-1).mean()
    mmd = mmd_by_double_sum(z.detach(), prior, [2 * 3 * 0.5, 2 * 3 * 2.0])
    torch.testing.assert_close(out.terms["mmd"].detach(), mmd.float(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.loss, recon + (1 - alpha) * kl + (alpha + lam - 1) * out.terms["mmd"])
    torch.testing.assert_close(out.kl, kl)


def test_info_vae_refuses_a_negative_divergence_weight():
    with pytest.raises(Exception, match="alpha \\+ lam >= 1"):
        tiny_model({"name": "info-vae", "alpha": 0.0, "lam": 0.5})


def test_a_heavy_mmd_weight_pulls_the_aggregate_posterior_to_the_prior():
    data = _tiny().train_images.float() / 255
    mmds = {}
    for lam in (0.0, 3000.0):  # alpha 1, lambda 0: neither KL nor MMD in the loss
        model = tiny_model({"name": "info-vae", "alpha": 1.0, "lam": lam})
        briefly_train(model, data, steps=300)
        torch.manual_seed(0)
        with torch.no_grad():
            mmds[lam] = float(model(data).terms["mmd"])
    assert mmds[3000.0] < mmds[0.0] / 3
