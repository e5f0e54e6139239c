"""Gaussian math used by the posteriors, the priors, the objectives and the evaluation.

Everything is per latent dimension or summed over the last dimension, in nats; variances are
given as log-variances, the encoder heads' output.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, Normal

__all__ = [
    "LOG_2PI", "DiagonalGaussian", "gaussian_log_prob", "standard_normal_log_prob", "kl_to_standard_normal",
    "kl_diagonal_gaussians", "diagonal_gaussian_mixture_log_prob",
]

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian(Independent):
    """N(mu, diag(exp(logvar))), one event over the last dimension, with its parameters at hand.

    ``rsample`` is the reparameterization ``z = mu + sigma * eps`` with ``eps ~ N(0, I)`` drawn
    by ``torch.randn`` (the seed notebook drew ``eps`` with ``torch.rand_like``, uniform noise on
    [0, 1): a bug that biases z and breaks the ELBO; vaezoo follows the math).
    :meth:`reparameterize` applies the same map to noise the caller drew.
    """

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor):
        self.mu = mu
        self.logvar = logvar
        super().__init__(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1, validate_args=False)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        """``mu + sigma * eps``; ``eps`` may carry leading sample dimensions."""
        return self.mu + torch.exp(0.5 * self.logvar) * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(z, self.mu, self.logvar).sum(-1)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) per dimension (broadcasting)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, 1) per dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, exp(logvar)) || N(0, 1)) per dimension:
    ``0.5 * (exp(logvar) + mu^2 - 1 - logvar)``."""
    return 0.5 * (torch.exp(logvar) + mu.pow(2) - 1.0 - logvar)


def kl_diagonal_gaussians(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """Closed-form KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))) per dimension:
    ``0.5 * (logvar_p - logvar_q + (exp(logvar_q) + (mu_q - mu_p)^2) / exp(logvar_p) - 1)``."""
    return 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1.0)


def diagonal_gaussian_mixture_log_prob(
    z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor, log_weights: torch.Tensor
) -> torch.Tensor:
    """``log sum_k w_k N(z; m_k, diag(exp(logvar_k)))`` for z of shape (..., d); returns (...).

    ``means``/``logvars``: (K, d); ``log_weights``: (K,), normalized.

    The squared distances expand into two matrix products, ``z^2 @ (1/s^2)^T - 2 z @ (m/s^2)^T``
    plus a per-component constant, instead of a (..., K, d) difference tensor: the IWAE bound at
    k = 5000 against a 500-component VampPrior went from 0.7 to 7.7 images/s on one CPU thread.
    Computed in float32 at least, outside autocast: the expansion cancels large terms, which
    bf16 matrix products would not survive.
    """
    dtype = torch.promote_types(z.dtype, torch.float32)
    with torch.autocast(z.device.type, enabled=False):
        z, means, logvars = z.to(dtype), means.to(dtype), logvars.to(dtype)
        precision = torch.exp(-logvars)  # (K, d)
        constant = (means.pow(2) * precision + logvars).sum(-1) + means.shape[-1] * LOG_2PI  # (K,)
        squared = z.pow(2) @ precision.T - 2 * (z @ (means * precision).T)  # (..., K)
        log_normal = -0.5 * (squared + constant)
        return torch.logsumexp(log_normal + log_weights.to(dtype), dim=-1)
