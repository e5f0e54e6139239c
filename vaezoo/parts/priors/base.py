"""The prior contract: sample, score, and KL(q(z|x) || p(z)) per example."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

__all__ = ["Prior"]


class Prior(nn.Module):
    """Base class: subclasses implement ``distribution()`` (or ``log_prob``/``sample``); the KL
    defaults to the single-sample Monte Carlo estimate ``log q(z|x) - log p(z)``."""

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
        """Called by the model once every part is built. Priors that need the model (the VampPrior
        runs its encoder) keep a reference here, outside their submodules, so the model's
        parameters are not registered twice. Default: nothing."""

    def initialize_from_data(self, images: torch.Tensor, generator: torch.Generator) -> str | None:
        """Called once before a fresh run's first step with the training images (uint8, (N, C, H,
        W)): a prior whose parameters start best from data sets them and says what it did.
        Default: nothing (None)."""
        return None

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor | None:
        """``log p(z_j)`` per latent dimension, shape ``z.shape``, for priors that factorize over
        dimensions; ``None`` otherwise (beta-TCVAE needs it)."""
        return None

    def kl_per_dim(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor | None:
        """KL per latent dimension, shape ``z.shape``, where it is defined; ``None`` otherwise
        (free bits clamp it)."""
        return None
