"""The log-cosh likelihood: the reconstruction cost of the LogCosh VAE made a normalized density."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import PositiveFloat
from torch.distributions import Distribution, constraints

from ..kinds import register_likelihood
from .base import Likelihood

__all__ = ["LogCoshImage", "LogCoshLikelihood", "log_cosh", "logcosh_log_normalizer"]

_EVENT_DIMS = (-3, -2, -1)


def log_cosh(u: torch.Tensor) -> torch.Tensor:
    """``log cosh(u) = |u| + log(1 + exp(-2|u|)) - log 2``, finite for any u."""
    a = u.abs()
    return a + F.softplus(-2.0 * a) - math.log(2.0)


def logcosh_log_normalizer(alpha: float) -> float:
    """``log Z`` of the density proportional to ``cosh(alpha t)^(-1/alpha)`` on the real line:
    with u = alpha t and c = 1/alpha, Z = (1/alpha) * integral sech(u)^c du = (1/alpha) * B(c/2, 1/2)."""
    c = 1.0 / alpha
    return -math.log(alpha) + math.lgamma(c / 2) + math.lgamma(0.5) - math.lgamma(c / 2 + 0.5)


def _log_gamma_draws(shape: float, size: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """log of Gamma(shape, 1) draws, stable for a small shape: G(a) = G(a + 1) * U^(1/a)."""
    boosted = torch.distributions.Gamma(torch.tensor(shape + 1.0, dtype=torch.float64),
                                        torch.tensor(1.0, dtype=torch.float64)).sample(size)
    u = torch.rand(size, dtype=torch.float64).clamp_min(1e-300)
    return (boosted.log() + u.log() / shape).to(device=like.device, dtype=like.dtype)


class LogCoshImage(Distribution):
    """Independent pixels with density ``exp(-(1/alpha) log cosh(alpha (x - mu))) / Z(alpha)``;
    event = (C, H, W). Near mu it is a Gaussian of variance 1/alpha, far from it a Laplace of
    scale 1: a robust reconstruction cost. Symmetric about mu, so its mean is mu."""

    arg_constraints = {"loc": constraints.real}
    support = constraints.independent(constraints.real, 3)

    def __init__(self, loc: torch.Tensor, alpha: float, validate_args: bool | None = False):
        self.loc, self.alpha = loc, float(alpha)
        super().__init__(loc.shape[:-3], loc.shape[-3:], validate_args=validate_args)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        cost = log_cosh(self.alpha * (x - self.loc)) / self.alpha
        return -(cost + logcosh_log_normalizer(self.alpha)).sum(_EVENT_DIMS)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        # u = alpha t has density proportional to sech(u)^c, c = 1/alpha: u = (log G1 - log G2) / 2
        # with G1, G2 ~ Gamma(c/2) (half the logit of a Beta(c/2, c/2) draw)
        shape = self._extended_shape(sample_shape)
        c = 1.0 / self.alpha
        u = 0.5 * (_log_gamma_draws(c / 2, shape, self.loc) - _log_gamma_draws(c / 2, shape, self.loc))
        with torch.no_grad():
            return self.loc.expand(shape) + u / self.alpha


@register_likelihood("logcosh")
class LogCoshLikelihood(Likelihood):
    """Log-cosh on each pixel, mean from the decoder: the LogCosh VAE's reconstruction cost
    ``(1/alpha) log cosh(alpha (x - mu))`` (PyTorch-VAE's ``LogCoshVAE``, alpha 10), here with its
    normalizing constant (:func:`logcosh_log_normalizer`), so that the ELBO is a bound on a
    density of real-valued pixels like the Gaussian's and not a cost with a hidden scale."""

    def __init__(self, in_shape: tuple[int, ...], alpha: PositiveFloat = 10.0):
        super().__init__(in_shape)
        self.alpha = alpha

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        return LogCoshImage(decoder_out, self.alpha)
