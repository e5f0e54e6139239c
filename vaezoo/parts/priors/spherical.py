"""The uniform prior on the unit sphere S^(m-1) (``spherical-uniform``): the hyperspherical VAE's
p(z) (Davidson et al. 2018), with the closed-form KL from a von Mises-Fisher posterior."""

from __future__ import annotations

import torch
from torch.distributions import Distribution

from ...ops.vmf import VonMisesFisher, kl_vmf_uniform, log_sphere_area, sample_uniform_sphere
from ..kinds import register_prior
from .base import Prior

__all__ = ["SphericalUniformPrior"]


@register_prior("spherical-uniform")
class SphericalUniformPrior(Prior):
    """p(z) = 1 / area(S^(m-1)) on the unit sphere of R^m (m = ``latent_dim``, at least 2). Its
    KL from vMF(mu, kappa) is closed-form (:func:`vaezoo.ops.vmf.kl_vmf_uniform`); from any other
    posterior, the Monte Carlo ``log q(z) - log p(z)``."""

    def __init__(self, latent_dim: int):
        if latent_dim < 2:
            raise ValueError(f"the uniform prior on the sphere needs latent_dim >= 2, got {latent_dim}")
        super().__init__(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # the device and dtype to sample on

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full(z.shape[:-1], -log_sphere_area(self.latent_dim), dtype=z.dtype, device=z.device)

    def sample(self, n: int) -> torch.Tensor:
        return sample_uniform_sphere((n,), self.latent_dim, like=self._anchor)

    def kl(self, posterior: Distribution, z: torch.Tensor) -> torch.Tensor:
        if isinstance(posterior, VonMisesFisher):
            return kl_vmf_uniform(posterior).expand(z.shape[:-1])
        return super().kl(posterior, z)
