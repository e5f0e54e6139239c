"""Two more likelihoods for images in [0, 1]: the continuous Bernoulli and a mixture of
discretized logistics (bits/dim).

Both are ``torch.distributions.Distribution`` subclasses whose event is one image
``(C, H, W)``, so ``log_prob(x)`` is nats per image like the built-in likelihoods.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch.distributions import Distribution, constraints

from .likelihoods import Likelihood
from .registry import register_likelihood

__all__ = [
    "ContinuousBernoulliImage", "DiscretizedLogisticMixture", "ContinuousBernoulliLikelihood",
    "DiscretizedLogisticLikelihood", "cb_log_normalizer", "cb_mean",
]

_EVENT_DIMS = (-3, -2, -1)


# ------------------------------------------------------------------ continuous Bernoulli


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

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        return ContinuousBernoulliImage(decoder_out)


# ------------------------------------------------------------- discretized logistic mix

_BINS = 256
_HALF_BIN = 0.5 / (_BINS - 1)
_MIN_LOG_SCALE = -7.0 - math.log(2.0)  # PixelCNN++'s floor of -7, converted from [-1, 1] to [0, 1] units


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, accurate on both sides of -log 2 (Maechler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_sigmoid_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(a) - sigmoid(b)) for a > b, without cancellation in either tail."""
    flip = (a + b) > 0  # upper tail: sigmoid(a) - sigmoid(b) = sigmoid(-b) - sigmoid(-a)
    hi, lo = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = F.logsigmoid(hi), F.logsigmoid(lo)
    return log_hi + _log1mexp((log_lo - log_hi).clamp(max=-1e-12))


class DiscretizedLogisticMixture(Distribution):
    """Per-pixel, per-channel mixture of M discretized logistics on the 256 levels k/255 of
    [0, 1] (Salimans et al. 2017, PixelCNN++, without the channel autoregression).

    Level k gets ``P(k) = sum_m pi_m [F_m(k/255 + 1/510) - F_m(k/255 - 1/510)]`` with F_m
    the logistic CDF of mean mu_m and scale s_m, the first and last bins taking the tails
    (so the 256 probabilities sum to 1). ``log_prob`` rounds x to the nearest level and
    returns the log-probability of the discrete image in nats; ``-log_prob / (D ln 2)`` is
    bits/dim. Parameter tensors have shape (*batch, M, C, H, W).
    """

    arg_constraints = {"logits": constraints.real, "means": constraints.real, "log_scales": constraints.real}
    support = constraints.independent(constraints.unit_interval, 3)

    def __init__(self, logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                 validate_args: bool | None = False):
        self.logits, self.means = logits, means
        self.log_scales = log_scales.clamp(min=_MIN_LOG_SCALE)
        super().__init__(means.shape[:-4], means.shape[-3:], validate_args=validate_args)

    def _component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log P_m(level of x) per component: shape (..., M, C, H, W)."""
        k = torch.round(x * (_BINS - 1)).clamp(0, _BINS - 1)
        centered = (k / (_BINS - 1)).unsqueeze(-4) - self.means
        inv_scale = torch.exp(-self.log_scales)
        upper, lower = inv_scale * (centered + _HALF_BIN), inv_scale * (centered - _HALF_BIN)
        mid = inv_scale * centered
        # where the bin is narrow against the scale, P ~ pdf(center) * width, to O(width^2)
        log_pdf_mid = mid - self.log_scales - 2.0 * F.softplus(mid) - math.log(_BINS - 1)
        interior = torch.where(upper - lower < 1e-2, log_pdf_mid, _log_sigmoid_difference(upper, lower))
        first, last = F.logsigmoid(upper), F.logsigmoid(-lower)  # F(c + h) and 1 - F(c - h)
        k = k.unsqueeze(-4).expand_as(interior)
        return torch.where(k == 0, first, torch.where(k == _BINS - 1, last, interior))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        log_mix = torch.log_softmax(self.logits, dim=-4)
        per_pixel = torch.logsumexp(log_mix + self._component_log_probs(x), dim=-4)
        return per_pixel.sum(_EVENT_DIMS)

    @property
    def mean(self) -> torch.Tensor:
        # E[clip(X, 0, 1)] = s [softplus(mu / s) - softplus((mu - 1) / s)] per component: the
        # mean of the discretized variable up to the rounding to levels (at most 1/510).
        scale = torch.exp(self.log_scales)
        clipped = scale * (F.softplus(self.means / scale) - F.softplus((self.means - 1.0) / scale))
        return (torch.softmax(self.logits, dim=-4) * clipped).sum(-4)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.means.shape
            gumbel = -torch.log(-torch.log(torch.rand(shape, device=self.means.device).clamp(1e-10, 1 - 1e-7)))
            pick = F.one_hot((self.logits + gumbel).argmax(dim=-4), self.means.shape[-4]).movedim(-1, -4)
            pick = pick.to(self.means.dtype)
            mu, log_s = (self.means * pick).sum(-4), (self.log_scales * pick).sum(-4)
            u = torch.rand_like(mu).clamp(1e-5, 1 - 1e-5)
            x = mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))
            return torch.round(x.clamp(0.0, 1.0) * (_BINS - 1)) / (_BINS - 1)


@register_likelihood("discretized-logistic")
class DiscretizedLogisticLikelihood(Likelihood):
    """Mixture of ``mixtures`` discretized logistics per pixel and channel, data in [0, 1]
    on 256 levels; see :class:`DiscretizedLogisticMixture`. The decoder outputs ``3 *
    mixtures`` maps per image channel: mixture logits, means and log-scales, in that order.
    """

    def __init__(self, in_shape: tuple[int, ...], mixtures: PositiveInt = 5):
        super().__init__(in_shape)
        self.mixtures = mixtures
        self.params_per_channel = 3 * mixtures

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        channels = self.in_shape[0]
        params = decoder_out.unflatten(-3, (3, self.mixtures, channels))  # (..., 3, M, C, H, W)
        logits, means, log_scales = params.unbind(-5)
        return DiscretizedLogisticMixture(logits, means, log_scales)
