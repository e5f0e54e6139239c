"""The continuous Bernoulli likelihood for images in [0, 1] (Loaiza-Ganem & Cunningham 2019).

Its distribution is a ``torch.distributions.Distribution`` whose event is one image
``(C, H, W)``, so ``log_prob(x)`` is nats per image like the other likelihoods.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints

from ..kinds import register_likelihood
from .base import Likelihood

__all__ = ["ContinuousBernoulliImage", "ContinuousBernoulliLikelihood", "cb_log_normalizer", "cb_mean"]

_EVENT_DIMS = (-3, -2, -1)


def cb_log_normalizer(logits: torch.Tensor) -> torch.Tensor:
    """``log C(lambda)`` of the continuous Bernoulli, lambda = sigmoid(logits).

    ``C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)``; with eta = logits this is
    ``eta / tanh(eta / 2)`` (an even function, 2 at eta = 0). The direct formula is 0/0 at
    lambda = 1/2, so near it (|eta| < 1e-2, i.e. |lambda - 1/2| < 2.5e-3) we use the Taylor
    series ``log 2 + eta^2/12 - 7 eta^4/1440`` (next term O(eta^6) < 1e-12).
    """
    a = logits.abs()
    small = a < 1e-2
    safe = torch.where(small, torch.ones_like(a), a)  # keeps the unused branch (and its gradient) finite
    exact = torch.log(safe / torch.tanh(0.5 * safe))
    a2 = a * a
    taylor = math.log(2.0) + a2 / 12.0 - 7.0 * a2 * a2 / 1440.0
    return torch.where(small, taylor, exact)


def cb_mean(logits: torch.Tensor) -> torch.Tensor:
    """Mean of the continuous Bernoulli: ``lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda))``.

    In eta = logits: ``m(eta) = 1 / (1 - exp(-eta)) - 1 / eta``, with ``m(-eta) = 1 - m(eta)``
    so only exp(-|eta|) is ever formed, and ``1/2 + eta/12 - eta^3/720 + eta^5/30240`` for
    |eta| < 0.1 where the two terms cancel.
    """
    a = logits.abs()
    small = a < 0.1
    safe = torch.where(small, torch.ones_like(a), a)
    exact = 1.0 / (-torch.expm1(-safe)) - 1.0 / safe
    a3 = a * a * a
    taylor = 0.5 + a / 12.0 - a3 / 720.0 + a3 * a * a / 30240.0
    m = torch.where(small, taylor, exact)
    return torch.where(logits >= 0, m, 1.0 - m)


class ContinuousBernoulliImage(Distribution):
    """Independent continuous Bernoulli pixels (Loaiza-Ganem & Cunningham 2019); event = (C, H, W).

    ``p(x | lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x)`` on x in [0, 1]: the Bernoulli
    "likelihood" of grayscale pixels made a proper density by its normalizing constant.
    """

    arg_constraints = {"logits": constraints.real}
    support = constraints.independent(constraints.unit_interval, 3)
    has_rsample = True

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = False):
        self.logits = logits
        super().__init__(logits.shape[:-3], logits.shape[-3:], validate_args=validate_args)

    @property
    def probs(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    @property
    def mean(self) -> torch.Tensor:
        return cb_mean(self.logits)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        # x log(lambda) + (1 - x) log(1 - lambda) = -BCE(logits, x), stable for any logits
        log_p = -F.binary_cross_entropy_with_logits(self.logits, x.expand_as(self.logits), reduction="none")
        return (log_p + cb_log_normalizer(self.logits)).sum(_EVENT_DIMS)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        # Inverse CDF of the density proportional to exp(eta x) on [0, 1], for rate a = |eta| > 0:
        # x = 1 + log(u + (1 - u) exp(-a)) / a; a negative eta mirrors it (x -> 1 - x).
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device).clamp(1e-7, 1 - 1e-7)
        a = self.logits.abs().expand(shape)
        small = a < 1e-4
        safe = torch.where(small, torch.ones_like(a), a)
        x = 1.0 + torch.log(u + (1.0 - u) * torch.exp(-safe)) / safe
        x = torch.where(small, u, x)
        return torch.where(self.logits.expand(shape) >= 0, x, 1.0 - x).clamp(0.0, 1.0)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


@register_likelihood("continuous-bernoulli")
class ContinuousBernoulliLikelihood(Likelihood):
    """Continuous Bernoulli on each pixel with logits from the decoder (Loaiza-Ganem &
    Cunningham 2019, "The continuous Bernoulli: fixing a pervasive error in variational
    autoencoders"). The reconstruction ``x_hat`` is the distribution's mean, not lambda."""

    value_range = (0.0, 1.0)

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        return ContinuousBernoulliImage(decoder_out)
