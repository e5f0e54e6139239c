"""Small building blocks shared by the backbones: activations, norms, size arithmetic."""

from __future__ import annotations

from typing import Literal

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
