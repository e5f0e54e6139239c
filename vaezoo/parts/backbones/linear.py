"""Linear encoder/decoder: one affine map each way.

With a Gaussian likelihood of fixed variance and the N(0, I) prior this is probabilistic
PCA (Tipping & Bishop 1999): p(x|z) = N(Wz + b, sigma^2 I), so p(x) = N(b, WW^T + sigma^2 I)
in closed form. That makes it the reference model for testing likelihood estimators and
posterior refinement against exact answers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..kinds import register_backbone

__all__ = ["LinearEncoder", "LinearDecoder"]


@register_backbone("linear", role="encoder")
class LinearEncoder(nn.Module):
    """Flatten the image, one ``nn.Linear`` to the posterior's parameters (mu, logvar)."""

    def __init__(self, in_shape: tuple[int, ...], out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(math.prod(in_shape), out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@register_backbone("linear", role="decoder")
class LinearDecoder(nn.Module):
    """One ``nn.Linear`` from the latent to the likelihood's parameter maps."""

    def __init__(self, in_features: int, out_shape: tuple[int, ...], bias: bool = True):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.linear = nn.Linear(in_features, math.prod(out_shape), bias=bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z).view(-1, *self.out_shape)
