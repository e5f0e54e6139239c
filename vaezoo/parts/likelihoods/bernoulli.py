"""The Bernoulli likelihood on each pixel, with logits from the decoder."""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Distribution, Independent

from ..kinds import register_likelihood
from .base import Likelihood

__all__ = ["BernoulliLikelihood"]


@register_likelihood("bernoulli")
class BernoulliLikelihood(Likelihood):
    """Bernoulli on each pixel with logits from the decoder.

    Scores grayscale values in [0, 1] as well as binary ones: ``log p(x|z)`` is then minus
    the binary cross-entropy, the seed notebook's loss (the "grayscale BCE" protocol).
    """

    value_range = (0.0, 1.0)

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        return Independent(Bernoulli(logits=decoder_out, validate_args=False), 3, validate_args=False)
