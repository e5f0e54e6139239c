"""Planar and radial flows (Rezende & Mohamed 2015, "Variational inference with normalizing flows")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import nn

from ..kinds import register_posterior
from .base import Flow, FlowSteps

__all__ = ["PlanarStep", "RadialStep", "planar", "radial"]


class PlanarStep(Flow):
    """``f(z) = z + u_hat * tanh(w.z + b)``, ``log|det| = log|1 + u_hat . psi(z)|`` with
    ``psi(z) = (1 - tanh^2(w.z + b)) w`` (eqs. 10-12). ``u_hat = u + (m(w.u) - w.u) w / |w|^2`` with
    ``m(a) = -1 + softplus(a)`` keeps ``w.u_hat >= -1``, which makes the step invertible (appendix A.1)."""

    def __init__(self, dim: int):
        super().__init__()
        self.u = nn.Parameter(torch.randn(dim) * 0.01)
        self.w = nn.Parameter(torch.randn(dim) * 0.01)
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        wu = self.w @ self.u
        return self.u + (F.softplus(wu) - 1.0 - wu) * self.w / (self.w @ self.w)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.u_hat()
        activation = torch.tanh(z @ self.w + self.b)
        psi = (1.0 - activation.pow(2)).unsqueeze(-1) * self.w
        log_det = torch.log((1.0 + psi @ u).abs() + 1e-12)
        return z + activation.unsqueeze(-1) * u, log_det


class RadialStep(Flow):
    """``f(z) = z + beta h(alpha, r) (z - z0)``, ``h = 1 / (alpha + r)``, ``r = |z - z0|`` (eq. 14), with
    ``log|det| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h' r)``. ``alpha = softplus(.) > 0``
    and ``beta = -alpha + softplus(.) >= -alpha`` keep the step invertible (appendix A.2)."""

    def __init__(self, dim: int):
        super().__init__()
        self.z0 = nn.Parameter(torch.randn(dim) * 0.01)
        self.raw_alpha = nn.Parameter(torch.zeros(()))
        self.raw_beta = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = F.softplus(self.raw_alpha)
        beta = -alpha + F.softplus(self.raw_beta)
        diff = z - self.z0
        r = diff.norm(dim=-1)
        h = 1.0 / (alpha + r)
        h_prime = -h.pow(2)
        log_det = (z.shape[-1] - 1) * torch.log1p(beta * h) + torch.log1p(beta * h + beta * h_prime * r)
        return z + (beta * h).unsqueeze(-1) * diff, log_det


@register_posterior("planar")
def planar(latent_dim: int, steps: PositiveInt = 10) -> FlowSteps:
    """A planar flow of ``steps`` steps over the encoder's Gaussian (Rezende & Mohamed 2015;
    pythae's VAE_LinNF), its parameters shared by every image."""
    return FlowSteps([PlanarStep(latent_dim) for _ in range(steps)])


@register_posterior("radial")
def radial(latent_dim: int, steps: PositiveInt = 10) -> FlowSteps:
    """A radial flow of ``steps`` steps over the encoder's Gaussian (Rezende & Mohamed 2015;
    pythae's VAE_LinNF), its parameters shared by every image."""
    return FlowSteps([RadialStep(latent_dim) for _ in range(steps)])
