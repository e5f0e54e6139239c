"""The Hamiltonian VAE (``family: hamiltonian``; Caterini, Doucet & Sejdinovic 2018, "Hamiltonian
variational auto-encoder"; pythae calls it HVAE, not to be confused with the two-level ``hvae``).

A draw z0 ~ q(z0|x) and a momentum rho0 = gamma0 / sqrt(beta0), gamma0 ~ N(0, I), are moved by K
leapfrog steps of Hamiltonian dynamics on the target log p(x, z), with tempering: after step k the
momentum is scaled by sqrt(beta_(k-1) / beta_k), sqrt(beta_k) = 1 / ((1 - 1/sqrt(beta0)) k^2/K^2 +
1/sqrt(beta0)), so beta_K = 1. The leapfrog steps preserve volume and the tempering scales it by
beta0^(d/2), so on the space of (z, rho) the importance weight of the target p(x, z) N(rho; 0, I) is

    log w = log p(x|z_K) + log p(z_K) - |rho_K|^2 / 2 + |gamma0|^2 / 2 - log q(z0|x)

(Caterini et al., Algorithm 1): its mean is the ELBO the model trains on, and its log-mean-exp over
k draws the IWAE bound, both bounds on log p(x) (the momentum integrates out of the target).
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from pydantic import Field, PositiveFloat, PositiveInt

from ..ops.gaussian import DiagonalGaussian
from ..passes import LatentPass, LevelPass
from .base import PartBuildError
from .families import register_family
from .vae import VAE, VAEConfig

__all__ = ["HamiltonianVAEConfig", "HamiltonianVAE"]


class HamiltonianVAEConfig(VAEConfig):
    family: Literal["hamiltonian"] = "hamiltonian"  # type: ignore[assignment]
    leapfrog_steps: PositiveInt = Field(3, description="K: leapfrog steps from z0 (pythae: 3)")
    step_size: PositiveFloat = Field(0.01, description="the leapfrog step size epsilon, one per dimension at start")
    learn_step_size: bool = Field(True, description="train epsilon (per dimension) with the model (the paper does)")
    beta_zero: float = Field(0.3, gt=0.0, le=1.0, description="beta0, the initial inverse temperature (pythae: 0.3)")
    learn_beta_zero: bool = Field(False, description="train beta0 with the model")


@register_family("hamiltonian", config=HamiltonianVAEConfig)
class HamiltonianVAE(VAE):
    """The one-level VAE with K tempered leapfrog steps after its Gaussian draw (see the module
    docs). ``encode(x)`` is q(z0|x); a pass's z is z_K, and its ``log_q_at_draw`` carries
    log q(z0|x) + |rho_K|^2/2 - |gamma0|^2/2, so the generic bounds are the Hamiltonian ones.
    Each pass differentiates log p(x, z) with respect to z K + 1 times (with a graph in training:
    the loss reaches the encoder, the decoder, epsilon and beta0 through the dynamics)."""

    inference_modules = ("encoder",)

    def __init__(self, config: HamiltonianVAEConfig):
        if config.posterior is not None:
            raise PartBuildError("posterior", "the hamiltonian family moves its Gaussian draw by leapfrog steps; "
                                              "a flow posterior is for the vae family")
        super().__init__(config)
        log_step = torch.full((config.latent_dim,), math.log(config.step_size))
        beta_logit = torch.tensor(math.log(config.beta_zero) - math.log1p(-config.beta_zero)
                                  if config.beta_zero < 1 else 20.0)
        if config.learn_step_size:
            self.log_step_size = torch.nn.Parameter(log_step)
        else:
            self.register_buffer("log_step_size", log_step)
        if config.learn_beta_zero:
            self.beta_zero_logit = torch.nn.Parameter(beta_logit)
        else:
            self.register_buffer("beta_zero_logit", beta_logit)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """d numbers for z0 and d for the momentum gamma0."""
        return (2 * self.latent_dim,)

    def _potential_gradient(self, x: torch.Tensor, z: torch.Tensor, graph: bool) -> torch.Tensor:
        """d/dz of U(z) = -log p(x|z) - log p(z), per draw. Under ``torch.inference_mode`` (which
        forbids autograd on its tensors) the gradient is taken on copies made outside it."""
        if torch.is_inference_mode_enabled():
            with torch.inference_mode(False):
                return self._potential_gradient(x.clone(), z.clone(), graph=False).clone()
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            _, log_px = self._score(self.decode, z, x)
            potential = -(log_px + self.prior.log_prob(z)).sum()
            (gradient,) = torch.autograd.grad(potential, z, create_graph=graph)
        return gradient

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior: Optional[DiagonalGaussian] = None) -> LatentPass:
        q = posterior if posterior is not None else self.encode(x, y)
        d = self.latent_dim
        z0 = q.mu + torch.exp(0.5 * q.logvar) * eps[..., :d]
        gamma0 = eps[..., d:]
        graph = torch.is_grad_enabled()  # training (and iwae(grad=True)) differentiates through the dynamics
        root0 = torch.sigmoid(self.beta_zero_logit).sqrt()  # sqrt(beta0)
        step = torch.exp(self.log_step_size)
        z, rho, beta_sqrt = z0, gamma0 / root0, root0
        gradient = self._potential_gradient(x, z, graph)
        steps = self.config.leapfrog_steps
        for k in range(1, steps + 1):
            rho = rho - 0.5 * step * gradient
            z = z + step * rho
            gradient = self._potential_gradient(x, z, graph)
            rho = rho - 0.5 * step * gradient
            beta_sqrt_k = 1 / ((1 - 1 / root0) * (k / steps) ** 2 + 1 / root0)
            rho = (beta_sqrt / beta_sqrt_k) * rho
            beta_sqrt = beta_sqrt_k
        if not graph:
            z, rho = z.detach(), rho.detach()
        likelihood, log_px = self._score(self.decode, z, x)
        log_q = q.log_prob(z0) + 0.5 * rho.pow(2).sum(-1) - 0.5 * gamma0.pow(2).sum(-1)
        return LatentPass([LevelPass("z", z, q, self.prior, log_q)], likelihood, log_px)

    def extra_repr(self) -> str:
        return (f"family={self.family}, latent_dim={self.latent_dim}, leapfrog_steps={self.config.leapfrog_steps}, "
                f"beta_zero={float(torch.sigmoid(self.beta_zero_logit)):.3g}")
