"""The diagonal Gaussian posterior, with the log-variance the encoder outputs kept at hand."""

from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

__all__ = ["DiagonalGaussian", "gaussian_kl_to_standard_normal"]


class DiagonalGaussian(Independent):
    """q(z|x) = N(mu, diag(exp(logvar))), one event over the last dimension.

    ``rsample`` is the reparameterization ``z = mu + sigma * eps`` with ``eps ~ N(0, I)``
    drawn by ``torch.randn`` (the seed notebook drew ``eps`` with ``torch.rand_like``,
    uniform noise on [0, 1): a bug that biases z and breaks the ELBO; vaezoo follows the math).
    """

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor):
        self.mu = mu
        self.logvar = logvar
        super().__init__(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1, validate_args=False)


def gaussian_kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, exp(logvar)) || N(0, I)), summed over the last dimension."""
    return 0.5 * torch.sum(torch.exp(logvar) + mu.pow(2) - 1.0 - logvar, dim=-1)
