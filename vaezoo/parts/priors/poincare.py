"""The wrapped normal prior at the origin of the Poincaré ball (``poincare-normal``): the Poincaré
VAE's p(z) (Mathieu et al. 2019), WN(0, sigma^2 I) of :class:`vaezoo.ops.poincare.WrappedNormal`."""

from __future__ import annotations

import torch
from pydantic import PositiveFloat

from ...ops.poincare import WrappedNormal
from ..kinds import register_prior
from .base import Prior

__all__ = ["PoincareNormalPrior"]


@register_prior("poincare-normal")
class PoincareNormalPrior(Prior):
    """p(z) = WN(0, ``scale``^2 I) on the Poincaré ball whose curvature the model sets (``bind``:
    the family's ``curvature``); the density is against the ball's Riemannian volume, as the
    posterior's, and the KL the Monte Carlo ``log q(z) - log p(z)``."""

    def __init__(self, latent_dim: int, scale: PositiveFloat = 1.0):
        super().__init__(latent_dim)
        self.scale = scale
        self.curvature = 1.0
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # the device and dtype to sample on

    def bind(self, model) -> None:
        self.curvature = float(getattr(model.config, "curvature", 1.0))

    def distribution(self) -> WrappedNormal:
        zeros = self._anchor.expand(self.latent_dim)
        return WrappedNormal(zeros, torch.full_like(zeros, self.scale), self.curvature)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.distribution().log_prob(z)

    def sample(self, n: int) -> torch.Tensor:
        return self.distribution().sample((n,))
