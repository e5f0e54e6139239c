"""Likelihoods p(x|z): turn the decoder's output into a distribution over images."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import PositiveFloat
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from .registry import register_likelihood

__all__ = ["Likelihood", "BernoulliLikelihood", "GaussianLikelihood"]


class Likelihood(nn.Module):
    """Base class. ``params_per_channel`` tells the decoder how many maps to output per
    image channel; ``forward`` maps those maps to a distribution whose event is one image."""

    params_per_channel: int = 1

    def __init__(self, in_shape: tuple[int, ...]):
        super().__init__()
        self.in_shape = tuple(in_shape)

    def decoder_shape(self) -> tuple[int, ...]:
        channels, *spatial = self.in_shape
        return (channels * self.params_per_channel, *spatial)

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        raise NotImplementedError


@register_likelihood("bernoulli")
class BernoulliLikelihood(Likelihood):
    """Bernoulli on each pixel with logits from the decoder.

    Scores grayscale values in [0, 1] as well as binary ones: ``log p(x|z)`` is then minus
    the binary cross-entropy, the seed notebook's loss (the "grayscale BCE" protocol).
    """

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        return Independent(Bernoulli(logits=decoder_out, validate_args=False), 3, validate_args=False)


@register_likelihood("gaussian")
class GaussianLikelihood(Likelihood):
    """Gaussian on each pixel, mean from the decoder.

    ``variance``: ``fixed`` keeps sigma at ``sigma``; ``learned`` learns one sigma per image
    channel, starting at ``sigma``; ``predicted`` has the decoder output a log-sigma map too.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        variance: Literal["fixed", "learned", "predicted"] = "fixed",
        sigma: PositiveFloat = 1.0,
    ):
        super().__init__(in_shape)
        self.variance = variance
        self.params_per_channel = 2 if variance == "predicted" else 1
        log_sigma = torch.full((in_shape[0], 1, 1), math.log(sigma))
        if variance == "learned":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma, persistent=False)

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        if self.variance == "predicted":
            mean, log_sigma = decoder_out.chunk(2, dim=1)
        else:
            mean, log_sigma = decoder_out, self.log_sigma
        scale = torch.exp(log_sigma).expand_as(mean)
        return Independent(Normal(mean, scale, validate_args=False), 3, validate_args=False)
