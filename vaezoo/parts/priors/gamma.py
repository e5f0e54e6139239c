"""A product of Gamma distributions on the positive orthant (``gamma``): the Gamma VAE's p(z)
(PyTorch-VAE's ``GammaVAE``: shape 2, rate 1), with the closed-form KL from a Gamma posterior."""

from __future__ import annotations

import torch
from pydantic import PositiveFloat
from torch.distributions import Distribution, Gamma, Independent, kl_divergence

from ..kinds import register_prior
from .base import Prior

__all__ = ["GammaPrior", "gamma_factors"]


def gamma_factors(distribution: Distribution) -> Gamma | None:
    """The per-dimension Gamma of a product of Gammas (``Independent(Gamma, 1)``), else None."""
    if isinstance(distribution, Independent) and isinstance(distribution.base_dist, Gamma):
        return distribution.base_dist
    return None


@register_prior("gamma")
class GammaPrior(Prior):
    """p(z) = prod_j Gamma(z_j; concentration, rate), density ``rate^a z^(a-1) e^(-rate z) / Gamma(a)``
    on z_j > 0. Its KL from a product of Gammas is closed-form, dimension by dimension:

        KL(Gamma(a, b) || Gamma(a0, b0)) = (a - a0) digamma(a) - lgamma(a) + lgamma(a0)
                                           + a0 (log b - log b0) + a (b0 - b) / b

    from any other posterior the Monte Carlo ``log q(z) - log p(z)``."""

    def __init__(self, latent_dim: int, concentration: PositiveFloat = 2.0, rate: PositiveFloat = 1.0):
        super().__init__(latent_dim)
        self.register_buffer("concentration", torch.full((latent_dim,), float(concentration)))
        self.register_buffer("rate", torch.full((latent_dim,), float(rate)))

    def factors(self) -> Gamma:
        return Gamma(self.concentration, self.rate)

    def distribution(self) -> Distribution:
        return Independent(self.factors(), 1)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return self.factors().log_prob(z)

    def kl_per_dim(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor | None:
        factors = gamma_factors(posterior)
        return None if factors is None else kl_divergence(factors, self.factors()).expand(z.shape)

    def kl(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor:
        per_dim = self.kl_per_dim(posterior, z)
        return super().kl(posterior, z) if per_dim is None else per_dim.sum(-1)
