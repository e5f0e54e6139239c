"""Priors p(z). A prior can sample, score, and give KL(q(z|x) || p(z)) per example."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..distributions import DiagonalGaussian, gaussian_kl_to_standard_normal
from .registry import register_prior

__all__ = ["Prior", "StandardNormalPrior"]


class Prior(nn.Module):
    """Base class: subclasses implement ``distribution()``; KL defaults to Monte Carlo."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def distribution(self) -> Distribution:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.distribution().log_prob(z)

    def sample(self, n: int) -> torch.Tensor:
        return self.distribution().sample((n,))

    def kl(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor:
        """KL(q || p) per example: single-sample Monte Carlo ``log q(z|x) - log p(z)`` on ``z``."""
        return posterior.log_prob(z) - self.log_prob(z)

    def bind(self, model: nn.Module) -> None:
        """Called by ``VAE.__init__`` once every part is built. Priors that need the model (the
        VampPrior runs its encoder) keep a reference here, outside their submodules, so the
        model's parameters are not registered twice. Default: nothing."""

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor | None:
        """``log p(z_j)`` per latent dimension, shape ``z.shape``, for priors that factorize over
        dimensions; ``None`` otherwise (beta-TCVAE needs it)."""
        return None

    def kl_per_dim(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor | None:
        """KL per latent dimension, shape ``z.shape``, where it is defined; ``None`` otherwise
        (free bits clamp it)."""
        return None


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

    def kl(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor:
        if isinstance(posterior, DiagonalGaussian):
            kl = gaussian_kl_to_standard_normal(posterior.mu, posterior.logvar)
            return kl.expand(z.shape[:-1])  # one value per sample of z, the same for each
        return super().kl(posterior, z)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z.pow(2) + math.log(2 * math.pi))

    def kl_per_dim(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor | None:
        if isinstance(posterior, DiagonalGaussian):
            mu, logvar = posterior.mu, posterior.logvar
            return (0.5 * (torch.exp(logvar) + mu.pow(2) - 1.0 - logvar)).expand(z.shape)
        return None
