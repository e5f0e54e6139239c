"""A mixture of discretized logistics per pixel for 8-bit images in [0, 1] (bits/dim).

Its distribution is a ``torch.distributions.Distribution`` whose event is one image
``(C, H, W)``, so ``log_prob(x)`` is nats per image like the other likelihoods.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch.distributions import Distribution, constraints

from ..kinds import register_likelihood
from .base import Likelihood

__all__ = ["DiscretizedLogisticMixture", "DiscretizedLogisticLikelihood"]

_EVENT_DIMS = (-3, -2, -1)
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

    value_range = (0.0, 1.0)

    # bf16 rounds the decoder's means by about one 1/255 level in [0.5, 1): sharp components then
    # miss their bin (+19.7 nats per image at log-scale -6, emulated on CPU), so the decoder runs in float32
    float32_params = True

    def __init__(self, in_shape: tuple[int, ...], mixtures: PositiveInt = 5):
        super().__init__(in_shape)
        self.mixtures = mixtures
        self.params_per_channel = 3 * mixtures

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        channels = self.in_shape[0]
        params = decoder_out.unflatten(-3, (3, self.mixtures, channels))  # (..., 3, M, C, H, W)
        logits, means, log_scales = params.unbind(-5)
        return DiscretizedLogisticMixture(logits, means, log_scales)
