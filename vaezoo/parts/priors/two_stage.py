"""The second stage of the two-stage VAE (``two-stage``): a small VAE over a trained model's codes,
used as a prior to sample from (Dai & Wipf 2019, "Diagnosing and enhancing VAE models").

The first stage's aggregate posterior q(z) is rarely N(0, I); a second VAE, trained on codes
z ~ q(z|x) of the training images, learns to map N(0, I) onto it. Its p(z) = int p(z|u) p(u) du
has no closed form, so this prior samples but has no density: bounds (-ELBO, IWAE) are for the
training prior. It is fitted after training by :func:`vaezoo.posthoc.fit_two_stage`.
"""

from __future__ import annotations

import math

import torch
from pydantic import PositiveInt
from torch import nn

from ...errors import UsageError
from ..kinds import register_prior
from .base import Prior

__all__ = ["TwoStagePrior", "SkipMLP"]


class SkipMLP(nn.Module):
    """``depth`` ReLU layers of ``width``, their output concatenated with the input before the last
    linear map: the second stage's encoder and decoder in Dai & Wipf's code."""

    def __init__(self, features: int, width: int, depth: int, out: int):
        super().__init__()
        layers: list[nn.Module] = []
        size = features
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(features + size, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([x, self.body(x)], dim=-1))


@register_prior("two-stage")
class TwoStagePrior(Prior):
    """A VAE over codes z (``latent_dim``): q(u|z) = N(mu(z), diag sigma(z)^2), u of the same size,
    p(u) = N(0, I), p(z|u) = N(zhat(u), gamma^2 I) with one learned gamma, encoder and decoder
    :class:`SkipMLP` of ``depth`` layers of ``width`` (the paper's: 3 of 1024). Sampling draws
    u ~ N(0, I) and returns zhat(u), the decoder's mean (gamma goes to a small value as the second
    stage fits: the paper samples its mean)."""

    def __init__(self, latent_dim: int, depth: PositiveInt = 3, width: PositiveInt = 1024):
        super().__init__(latent_dim)
        self.encoder = SkipMLP(latent_dim, width, depth, 2 * latent_dim)
        self.decoder = SkipMLP(latent_dim, width, depth, latent_dim)
        self.log_gamma = nn.Parameter(torch.zeros(()))

    def stage_loss(self, z: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The second stage's negative ELBO per code, batch mean, with its reparameterization noise
        ``eps`` (shaped like z): KL(q(u|z) || N(0, I)) + sum_j [(z_j - zhat_j)^2 / (2 gamma^2)
        + log gamma + log(2 pi) / 2]."""
        mu, log_var = self.encoder(z).chunk(2, dim=-1)
        u = mu + torch.exp(0.5 * log_var) * eps
        zhat = self.decoder(u)
        kl = 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1).sum(-1)
        nll = (0.5 * (z - zhat).pow(2) * torch.exp(-2 * self.log_gamma)
               + self.log_gamma + 0.5 * math.log(2 * math.pi)).sum(-1)
        return (kl + nll).mean(), {"kl": kl.mean(), "nll": nll.mean(), "gamma": self.log_gamma.exp().detach()}

    def sample(self, n: int) -> torch.Tensor:
        u = torch.randn(n, self.latent_dim, device=self.log_gamma.device, dtype=self.log_gamma.dtype)
        return self.decoder(u)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise UsageError("the two-stage prior samples but has no density (p(z) = int p(z|u) p(u) du): a bound "
                         "(-ELBO, IWAE NLL) needs the training prior; load the model without the fitted prior, "
                         "or fit a Gaussian mixture (--prior gmm), which has one")
