"""A learnable mixture of diagonal Gaussians (``mog``).

It has no closed-form KL to a Gaussian posterior, so it uses the base class's single-sample
Monte Carlo estimate ``KL ~ log q(z|x) - log p(z)`` on the sampled z.
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveInt
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ...ops.gaussian import diagonal_gaussian_mixture_log_prob
from ..kinds import register_prior
from .base import Prior

__all__ = ["MixturePrior"]


@register_prior("mog")
class MixturePrior(Prior):
    """p(z) = sum_k pi_k N(z; m_k, diag(s_k^2)), K = ``components``.

    Means start at ``init_spread * N(0, I)``, variances at 1, weights uniform (softmax of
    logits). ``learnable: false`` keeps the three as buffers: frozen, but still saved in the
    checkpoint (this is what :func:`vaezoo.fit_prior` writes).
    """

    def __init__(
        self, latent_dim: int, components: PositiveInt = 10, init_spread: NonNegativeFloat = 1.0,
        learnable: bool = True,
    ):
        super().__init__(latent_dim)
        self.components = components
        tensors = {
            "means": init_spread * torch.randn(components, latent_dim),
            "logvars": torch.zeros(components, latent_dim),
            "logits": torch.zeros(components),
        }
        for name, value in tensors.items():
            if learnable:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)  # persistent: a fitted prior's values are its weights

    @property
    def log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, dim=-1)

    def distribution(self) -> Distribution:
        components = Independent(Normal(self.means, torch.exp(0.5 * self.logvars), validate_args=False), 1,
                                 validate_args=False)
        return MixtureSameFamily(Categorical(logits=self.logits, validate_args=False), components,
                                 validate_args=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return diagonal_gaussian_mixture_log_prob(z, self.means, self.logvars, self.log_weights)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, components={self.components}"
