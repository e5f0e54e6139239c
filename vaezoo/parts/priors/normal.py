"""The standard normal prior N(0, I), with the closed-form KL for a diagonal Gaussian posterior."""

from __future__ import annotations

import torch
from torch.distributions import Distribution, Independent, Normal

from ...ops.gaussian import DiagonalGaussian, kl_to_standard_normal, standard_normal_log_prob
from ..kinds import register_prior
from .base import Prior

__all__ = ["StandardNormalPrior"]


@register_prior("normal")
class StandardNormalPrior(Prior):
    """p(z) = N(0, I), with the closed-form KL for a diagonal Gaussian posterior."""

    def __init__(self, latent_dim: int):
        super().__init__(latent_dim)
        # Buffers follow the model to its device; not persistent, so checkpoints hold weights only.
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    def distribution(self) -> Distribution:
        return Independent(Normal(self.loc, self.scale, validate_args=False), 1, validate_args=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z).sum(-1)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.loc.device, dtype=self.loc.dtype)

    def kl(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor:
        if isinstance(posterior, DiagonalGaussian):
            kl = kl_to_standard_normal(posterior.mu, posterior.logvar).sum(-1)
            return kl.expand(z.shape[:-1])  # one value per sample of z, the same for each
        return super().kl(posterior, z)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def kl_per_dim(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor | None:
        if isinstance(posterior, DiagonalGaussian):
            return kl_to_standard_normal(posterior.mu, posterior.logvar).expand(z.shape)
        return None
