"""The Poincaré ball of curvature -c (radius 1/sqrt(c)) and the wrapped normal on it: the latent
geometry of the Poincaré VAE (Mathieu, Le Lan, Maddison, Tomioka & Teh 2019, "Continuous hierarchical
representations with Poincaré variational auto-encoders").

Points are coordinates in the open ball; lambda_x = 2 / (1 - c |x|^2) is the conformal factor of
the metric. A wrapped normal WN(mu, sigma) draws w ~ N(0, diag sigma^2) in the tangent space at the
origin (in the metric's units), carries it to mu and follows the geodesic:
z = exp_mu(w / lambda_mu). Its density with respect to the ball's Riemannian volume is

    log WN(z; mu, sigma) = log N(w; 0, sigma^2) - (d - 1) log(sinh(sqrt(c) r) / (sqrt(c) r)),
    w = lambda_mu log_mu(z),   r = |w| = the geodesic distance from mu to z

(the Lebesgue density on the coordinates is this times lambda_z^d). The prior and the posterior
are both scored against the Riemannian volume, so log p(z) - log q(z) is what a bound needs.
"""

from __future__ import annotations

import math

import torch

__all__ = ["mobius_add", "conformal_factor", "exp_map", "log_map", "distance", "WrappedNormal",
           "log_volume_to_lebesgue"]

EPS = 1e-7  # keeps points strictly inside the ball and norms away from 0


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=-1, keepdim=True).clamp_min(EPS)


def _artanh(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(-1 + EPS, 1 - EPS)
    return 0.5 * (torch.log1p(x) - torch.log1p(-x))


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    xy = (x * y).sum(-1, keepdim=True)
    x2, y2 = (x * x).sum(-1, keepdim=True), (y * y).sum(-1, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return numerator / (1 + 2 * c * xy + c * c * x2 * y2).clamp_min(EPS)


def conformal_factor(x: torch.Tensor, c: float) -> torch.Tensor:
    """lambda_x = 2 / (1 - c |x|^2), shape x.shape[:-1] + (1,)."""
    return 2 / (1 - c * (x * x).sum(-1, keepdim=True)).clamp_min(EPS)


def exp_map(x: torch.Tensor, v: torch.Tensor, c: float) -> torch.Tensor:
    """The point reached from x along the geodesic with initial velocity v (coordinates)."""
    sc, vn = math.sqrt(c), _norm(v)
    step = torch.tanh(sc * conformal_factor(x, c) * vn / 2) * v / (sc * vn)
    return _project(mobius_add(x, step, c), c)


def log_map(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """The velocity at x of the geodesic reaching y in unit time: the inverse of :func:`exp_map`."""
    sc = math.sqrt(c)
    diff = mobius_add(-x, y, c)
    dn = _norm(diff)
    return 2 / (sc * conformal_factor(x, c)) * _artanh(sc * dn) * diff / dn


def distance(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    sc = math.sqrt(c)
    return 2 / sc * _artanh(sc * mobius_add(-x, y, c).norm(dim=-1))


def _project(x: torch.Tensor, c: float) -> torch.Tensor:
    """x moved just inside the ball where rounding put it on or beyond the boundary."""
    limit = (1 - 1e-5) / math.sqrt(c)
    n = _norm(x)
    return torch.where(n > limit, x / n * limit, x)


def log_volume_to_lebesgue(z: torch.Tensor, c: float) -> torch.Tensor:
    """log lambda_z^d: add it to a density against the Riemannian volume to get one against dz."""
    return z.shape[-1] * torch.log(conformal_factor(z, c)).squeeze(-1)


def _log_sinhc(x: torch.Tensor) -> torch.Tensor:
    """log(sinh(x) / x), stable at 0 (x^2 / 6 there) and for large x."""
    x = x.clamp_min(0)
    small = x < 1e-3
    safe = torch.where(small, torch.ones_like(x), x)
    large = safe + torch.log1p(-torch.exp(-2 * safe)) - math.log(2) - torch.log(safe)
    return torch.where(small, x * x / 6, large)


class WrappedNormal:
    """WN(mu, diag sigma^2) on the Poincaré ball of curvature -``c`` (see the module docs): ``loc``
    (..., d) inside the ball, ``scale`` (..., d) > 0; densities against the Riemannian volume."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, c: float):
        self.loc, self.scale, self.c = loc, scale, c

    @property
    def mean(self) -> torch.Tensor:
        """The location mu (the Fréchet mean of the wrapped normal): what a code is read as."""
        return self.loc

    def rsample_from(self, eps: torch.Tensor) -> torch.Tensor:
        """z = exp_mu(sigma eps / lambda_mu) for standard-normal ``eps`` (..., d), broadcast over mu."""
        w = self.scale * eps
        return exp_map(self.loc.expand_as(w), w / conformal_factor(self.loc, self.c), self.c)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        eps = torch.randn(*sample_shape, *self.loc.shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.rsample_from(eps)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        loc = self.loc.expand_as(z)
        w = conformal_factor(loc, self.c) * log_map(loc, z, self.c)
        r = w.norm(dim=-1)
        gaussian = torch.distributions.Normal(torch.zeros_like(self.scale), self.scale).log_prob(w).sum(-1)
        return gaussian - (z.shape[-1] - 1) * _log_sinhc(math.sqrt(self.c) * r)
