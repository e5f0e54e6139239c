"""Small building blocks shared by the backbones: activations, norms, size arithmetic."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["relu", "silu", "gelu", "leaky_relu", "elu", "tanh"]
Norm = Literal["none", "batch", "group", "layer"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


def norm2d(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        return nn.GroupNorm(_group_count(channels), channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W), independent of image size
    return nn.Identity()


def _group_count(channels: int, preferred: int = 32) -> int:
    groups = min(preferred, channels)
    while channels % groups:
        groups -= 1
    return groups


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def transposed_output_padding(size_in: int, size_out: int, kernel: int, stride: int, padding: int) -> int | None:
    """The output_padding that makes ConvTranspose2d map size_in to size_out, or None."""
    extra = size_out - ((size_in - 1) * stride - 2 * padding + kernel)
    return extra if 0 <= extra < stride else None


def spatial(shape: tuple[int, ...], backbone: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{backbone} expects an image shape [channels, height, width], got {list(shape)}")
    return tuple(shape)  # type: ignore[return-value]


def latent_grid(shape: int | tuple[int, ...], feature_size: tuple[int, int], backbone: str) -> int | None:
    """The channels of a spatial latent ``(C, h, w)`` (a VQ-VAE's code grid), None for a vector.

    A backbone takes ``out_features`` (encoder) or ``in_features`` (decoder) as an int for a
    latent vector, or as a shape ``(C, h, w)`` for a grid of latent vectors; the grid must be the
    size of the backbone's deepest feature map, ``feature_size``."""
    if isinstance(shape, int):
        return None
    if len(shape) != 3:
        raise ValueError(f"{backbone}: a latent grid is [channels, height, width], got {list(shape)}")
    channels, height, width = shape
    if (height, width) != tuple(feature_size):
        raise ValueError(f"{backbone}: its deepest feature map is {feature_size[0]}x{feature_size[1]} but the latent "
                         f"grid is {height}x{width}; set the grid to [{feature_size[0]}, {feature_size[1]}] or change "
                         f"the backbone's channels / strides")
    return channels


# Channels-last support for the Linear layers around a flatten: a channels-last (N, C, H, W)
# tensor flattened in PyTorch's (C, H, W) order costs a full copy of the activations (127 MB
# per seed-conv batch of 1024). Permuting the (much smaller) weight instead gives the same
# result, with the same parameters, in the order the activations already sit in memory.


def _channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def flatten_linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(h.flatten(1), weight, bias)`` for an (N, C, H, W) ``h`` in either memory format."""
    if not _channels_last(h):
        return F.linear(h.flatten(1), weight, bias)
    n, c, height, width = h.shape
    weight = weight.view(-1, c, height, width).permute(0, 2, 3, 1).reshape(weight.shape[0], -1)
    return F.linear(h.permute(0, 2, 3, 1).reshape(n, -1), weight, bias)


def linear_unflatten(z: torch.Tensor, linear: nn.Linear, shape: tuple[int, int, int], like: torch.Tensor) -> torch.Tensor:
    """``linear(z).view(-1, *shape)``, produced directly in ``like``'s memory format (a conv
    weight that follows), so that the next convolution needs no layout copy."""
    c, height, width = shape
    if not like.is_contiguous(memory_format=torch.channels_last) or like.is_contiguous():
        return linear(z).view(-1, c, height, width)
    weight = linear.weight.view(c, height, width, -1).permute(1, 2, 0, 3).reshape(-1, linear.in_features)
    bias = linear.bias.view(c, height, width).permute(1, 2, 0).reshape(-1)
    return F.linear(z, weight, bias).view(-1, height, width, c).permute(0, 3, 1, 2)
