"""The Gaussian likelihood on each pixel: fixed, learned or predicted variance."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import PositiveFloat
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..kinds import register_likelihood
from .base import Likelihood

__all__ = ["GaussianLikelihood"]


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
