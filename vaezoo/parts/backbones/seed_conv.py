"""The seed notebook's conv VAE, layer for layer, with sizes computed from the input.

Encoder: Conv 1->16 5x5, ReLU, Conv 16->64 3x3, ReLU, flatten, two Linear heads (mu, logvar).
Decoder: Linear -> 64x(H-6)x(W-6), ReLU, ConvTranspose 64->16 3x3, ReLU, ConvTranspose 16->1 5x5.
On 28x28 Fashion-MNIST with a 64-d latent that is 5,997,825 parameters, as in the notebook.
The decoder outputs logits: the notebook's final sigmoid lives in the Bernoulli likelihood,
where the loss can be computed stably from logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..kinds import register_backbone
from ._layers import flatten_linear, linear_unflatten, spatial

__all__ = ["SeedConvEncoder", "SeedConvDecoder"]

_SHRINK = 6  # two unpadded convolutions (5x5 then 3x3) remove 4 + 2 pixels per side pair
_FEATURES = 64


def _feature_size(shape: tuple[int, ...]) -> tuple[int, int, int]:
    channels, height, width = spatial(shape, "seed-conv")
    if height <= _SHRINK or width <= _SHRINK:
        raise ValueError(
            f"seed-conv needs images larger than {_SHRINK}x{_SHRINK} (its two unpadded convolutions "
            f"remove {_SHRINK} pixels), got {height}x{width}"
        )
    return channels, height - _SHRINK, width - _SHRINK


@register_backbone("seed-conv", role="encoder")
class SeedConvEncoder(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], out_features: int):
        super().__init__()
        channels, h, w = _feature_size(in_shape)
        if out_features % 2:
            raise ValueError(f"seed-conv's two heads split out_features evenly, got {out_features}")
        self.conv1 = nn.Conv2d(channels, 16, 5)
        self.conv2 = nn.Conv2d(16, _FEATURES, 3)
        self.mu_head = nn.Linear(_FEATURES * h * w, out_features // 2)
        self.logvar_head = nn.Linear(_FEATURES * h * w, out_features // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        # The two heads as one matrix product: the same parameters, one pass over h.
        weight = torch.cat([self.mu_head.weight, self.logvar_head.weight])
        bias = torch.cat([self.mu_head.bias, self.logvar_head.bias])
        return flatten_linear(h, weight, bias)


@register_backbone("seed-conv", role="decoder")
class SeedConvDecoder(nn.Module):
    def __init__(self, in_features: int, out_shape: tuple[int, ...]):
        super().__init__()
        channels, h, w = _feature_size(out_shape)
        self.feature_shape = (_FEATURES, h, w)
        self.fc = nn.Linear(in_features, _FEATURES * h * w)
        self.deconv1 = nn.ConvTranspose2d(_FEATURES, 16, 3)
        self.deconv2 = nn.ConvTranspose2d(16, channels, 5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(linear_unflatten(z, self.fc, self.feature_shape, like=self.deconv1.weight))
        return self.deconv2(F.relu(self.deconv1(h)))
