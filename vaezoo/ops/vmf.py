"""The von Mises-Fisher distribution on the unit sphere S^(m-1) in R^m and the uniform distribution
on it: the posterior and prior of the hyperspherical VAE (Davidson, Falorsi, De Cao, Kipf & Tomczak
2018, "Hyperspherical variational auto-encoders").

    vMF(z; mu, kappa) = C_m(kappa) exp(kappa mu.z),
    log C_m(kappa) = (m/2 - 1) log kappa - (m/2) log(2 pi) - log I_(m/2-1)(kappa)

with I the modified Bessel function of the first kind (:func:`vaezoo.ops.bessel.log_bessel_iv`).
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .bessel import log_bessel_iv

__all__ = ["VonMisesFisher", "log_sphere_area", "kl_vmf_uniform", "householder_to", "sample_uniform_sphere"]

MAX_REJECTION_ROUNDS = 1000  # Wood's sampler accepts over half its proposals for any kappa and m


def log_sphere_area(m: int) -> float:
    """log of the area of S^(m-1) in R^m: 2 pi^(m/2) / Gamma(m/2)."""
    return math.log(2.0) + 0.5 * m * math.log(math.pi) - math.lgamma(0.5 * m)


def sample_uniform_sphere(shape: tuple[int, ...], m: int, *, like: torch.Tensor) -> torch.Tensor:
    g = torch.randn(*shape, m, dtype=like.dtype, device=like.device)
    return g / g.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def householder_to(mu: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x reflected by the Householder map that takes e_1 to mu (mu of unit norm, broadcast over x's
    leading dimensions): H = I - 2 u u^T / |u|^2, u = e_1 - mu."""
    e1 = torch.zeros_like(mu)
    e1[..., 0] = 1.0
    u = e1 - mu
    norm2 = (u * u).sum(-1, keepdim=True)
    # mu = e_1 (u = 0): the identity, not 0/0
    scale = torch.where(norm2 > 1e-12, 2.0 / norm2.clamp_min(1e-12), torch.zeros_like(norm2))
    return x - scale * (x * u).sum(-1, keepdim=True) * u


class VonMisesFisher:
    """vMF(mu, kappa) on S^(m-1): ``loc`` (..., m) of unit norm, ``concentration`` (...,) > 0.

    ``rsample`` draws by Wood's (1994) rejection sampler of the component w = mu.z, the rest of z
    uniform on the sphere orthogonal to mu; the draw is reparameterized through the accepted
    proposal, w = h(eps, kappa) = (1 - (1 + b) eps) / (1 - (1 - b) eps), eps ~ Beta((m-1)/2, (m-1)/2)
    held fixed (the g_rep term of Davidson et al.'s gradient; its correction term g_cor, which
    accounts for kappa moving the acceptance, is left out), and through mu by the Householder map."""

    def __init__(self, loc: torch.Tensor, concentration: torch.Tensor):
        self.loc = loc
        self.concentration = concentration
        self.m = loc.shape[-1]

    @property
    def mean_direction(self) -> torch.Tensor:
        return self.loc

    @property
    def mean(self) -> torch.Tensor:
        """E[z] = A_m(kappa) mu: the codes a probe or a mixture is fitted on are the mean directions
        instead (:attr:`mean_direction`), on the sphere itself."""
        return self.mean_resultant_length().unsqueeze(-1) * self.loc

    def log_normalizer(self) -> torch.Tensor:
        k, m = self.concentration, self.m
        return (0.5 * m - 1) * torch.log(k) - 0.5 * m * math.log(2 * math.pi) - log_bessel_iv(0.5 * m - 1, k)

    def mean_resultant_length(self) -> torch.Tensor:
        """A_m(kappa) = I_(m/2)(kappa) / I_(m/2-1)(kappa) = E[mu.z]."""
        k, m = self.concentration, self.m
        return torch.exp(log_bessel_iv(0.5 * m, k) - log_bessel_iv(0.5 * m - 1, k))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_normalizer() + self.concentration * (self.loc * z).sum(-1)

    def entropy(self) -> torch.Tensor:
        return -self.log_normalizer() - self.concentration * self.mean_resultant_length()

    def rsample(self, sample_shape: torch.Size = torch.Size(), tangent: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Draws of shape (*sample_shape, ..., m). ``tangent``: standard-normal noise of that shape
        for the uniform direction orthogonal to mu (its first entry unused), so a caller's keyed
        noise fixes that part of the draw; the rejection sampler draws from torch's global stream."""
        shape = tuple(sample_shape) + tuple(self.concentration.shape)
        w = self._sample_w(shape)
        if tangent is None:
            tangent = torch.randn(*shape, self.m, dtype=self.loc.dtype, device=self.loc.device)
        v = tangent[..., 1:] / tangent[..., 1:].norm(dim=-1, keepdim=True).clamp_min(1e-30)
        w_ = w.unsqueeze(-1)
        z = torch.cat([w_, torch.sqrt((1 - w_ * w_).clamp_min(0.0)) * v], dim=-1)
        return householder_to(self.loc.expand(*shape, self.m), z)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def _sample_w(self, shape: tuple[int, ...]) -> torch.Tensor:
        m1 = self.m - 1.0
        k = self.concentration.expand(shape)
        root = torch.sqrt(4 * k * k + m1 * m1)
        b = m1 / (2 * k + root)  # (-2k + root) / m1 without the cancellation at large kappa
        a = (m1 + 2 * k + root) / 4
        d = 4 * a * b / (1 + b) - m1 * math.log(m1)
        beta = torch.distributions.Beta(torch.tensor(0.5 * m1, dtype=k.dtype, device=k.device),
                                        torch.tensor(0.5 * m1, dtype=k.dtype, device=k.device))
        eps = torch.zeros(shape, dtype=k.dtype, device=k.device)
        done = torch.zeros(shape, dtype=torch.bool, device=k.device)
        with torch.no_grad():
            for _ in range(MAX_REJECTION_ROUNDS):
                proposal = beta.sample(shape)
                t = 2 * a * b / (1 - (1 - b) * proposal)
                u = torch.rand(shape, dtype=k.dtype, device=k.device)
                accept = (m1 * torch.log(t) - t + d >= torch.log(u)) & ~done
                eps = torch.where(accept, proposal, eps)
                done = done | accept
                if bool(done.all()):
                    break
            else:
                raise RuntimeError(f"the vMF rejection sampler accepted no proposal in {MAX_REJECTION_ROUNDS} "
                                   f"rounds for some draws (kappa from {float(k.min()):.3g} to {float(k.max()):.3g})")
        return (1 - (1 + b) * eps) / (1 - (1 - b) * eps)


def kl_vmf_uniform(q: VonMisesFisher) -> torch.Tensor:
    """KL(vMF(mu, kappa) || U(S^(m-1))) = log C_m(kappa) + kappa A_m(kappa) + log area(S^(m-1)):
    minus the entropy, plus the log area; it depends on kappa alone."""
    return -q.entropy() + log_sphere_area(q.m)
