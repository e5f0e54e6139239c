"""SSIM and MS-SSIM against a direct pixel-by-pixel computation, and the MS-SSIM VAE's loss against
its definition."""

from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.ops.ssim import gaussian_window, ms_ssim, scale_weights, ssim


def _direct_ssim(x, y, size):
    """Local means, variances and covariance as explicit window sums over the zero-padded images."""
    g = gaussian_window(size, dtype=torch.float64)
    pad = size // 2
    h, w = x.shape
    xp = torch.zeros(h + 2 * pad, w + 2 * pad, dtype=torch.float64)
    yp = torch.zeros_like(xp)
    xp[pad:pad + h, pad:pad + w], yp[pad:pad + h, pad:pad + w] = x, y
    s_total, cs_total = 0.0, 0.0
    for i in range(h):
        for j in range(w):
            px, py = xp[i:i + size, j:j + size], yp[i:i + size, j:j + size]
            mx, my = float((g * px).sum()), float((g * py).sum())
            vx, vy = float((g * px * px).sum()) - mx * mx, float((g * py * py).sum()) - my * my
            cxy = float((g * px * py).sum()) - mx * my
            cs = (2 * cxy + 0.03 ** 2) / (vx + vy + 0.03 ** 2)
            s_total += (2 * mx * my + 0.01 ** 2) / (mx * mx + my * my + 0.01 ** 2) * cs
            cs_total += cs
    return s_total / (h * w), cs_total / (h * w)


def test_ssim_is_the_window_sums_written_out():
    torch.manual_seed(0)
    x, y = torch.rand(2, 1, 9, 9, dtype=torch.float64), torch.rand(2, 1, 9, 9, dtype=torch.float64)
    y[1] = 0.7 * x[1] + 0.1  # a related pair, besides an unrelated one
    similarity, contrast_structure = ssim(x, y, window_size=5)
    for b in range(2):
        expected_s, expected_cs = _direct_ssim(x[b, 0], y[b, 0], 5)
        assert float(similarity[b]) == pytest.approx(expected_s, abs=1e-12)
        assert float(contrast_structure[b]) == pytest.approx(expected_cs, abs=1e-12)
    assert float(similarity[1]) > float(similarity[0])


def test_ms_ssim_combines_the_scales_with_their_weights():
    torch.manual_seed(1)
    x, y = torch.rand(3, 1, 28, 28, dtype=torch.float64), torch.rand(3, 1, 28, 28, dtype=torch.float64)
    weights = scale_weights(28)
    assert len(weights) == 4
    expected = torch.ones(3, dtype=torch.float64)
    a, b = x, y
    for j, weight in enumerate(weights):
        s, cs = ssim(a, b)
        expected = expected * ((s if j == 3 else cs) + 1).div(2).pow(weight)
        a, b = torch.nn.functional.avg_pool2d(a, 2), torch.nn.functional.avg_pool2d(b, 2)
    torch.testing.assert_close(ms_ssim(x, y), expected)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(ms_ssim(x, y), ms_ssim(y, x))


def test_the_msssim_vae_loss_is_its_definition_and_its_elbo_the_likelihoods():
    torch.manual_seed(0)
    model = vaezoo.create({"input_shape": [1, 28, 28], "latent_dim": 4, "encoder": {"name": "mlp", "hidden": [32]},
                           "decoder": {"name": "mlp", "hidden": [32]},
                           "objective": {"name": "msssim-vae", "scale": 50.0, "beta": 2.0, "window_size": 7}})
    x = torch.rand(5, 1, 28, 28)
    torch.manual_seed(3)
    out = model(x)
    torch.manual_seed(3)
    q = model.encode(x)
    z = q.mean + q.stddev * torch.randn(1, 5, 4)[0]
    p = model.decode(z)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(q.mean, q.stddev),
                                           torch.distributions.Normal(0.0, 1.0)).sum(-1)
    similarity = ms_ssim(p.mean, x, window_size=7)
    torch.testing.assert_close(out.loss, 50.0 * (1 - similarity).mean() + 2.0 * kl.mean())
    torch.testing.assert_close(out.elbo, p.log_prob(x) - kl)
    assert math.isclose(float(out.terms["msssim"].detach()), float(similarity.mean().detach()), rel_tol=1e-6)
