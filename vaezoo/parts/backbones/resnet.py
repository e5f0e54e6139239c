"""A ResNet-style encoder/decoder pair for any image size.

Encoder: a 3x3 stem, then one stage per entry of ``channels``; each stage is
``blocks_per_stage`` pre-activation residual blocks (norm -> activation -> conv, twice),
the first of which halves the resolution with a stride-2 conv (its shortcut a stride-2 1x1
conv), so 28 -> 14 -> 7 -> 4. Then norm, activation, flatten and a linear head.

Decoder: the mirror image. A linear projection to the encoder's last feature map, then per
stage (last to first) an upsampling residual block (nearest-neighbour resize to the exact
size the encoder had there, which handles odd sizes: 4 -> 7 -> 14 -> 28) and
``blocks_per_stage - 1`` plain blocks; a final norm, activation and 3x3 conv give the
likelihood's parameter maps. Give the decoder the same ``channels`` as the encoder.

With a latent grid (``(C, h, w)``, a VQ-VAE's codes) the encoder's head is a 1x1 convolution to
C channels at the last stage's size and the decoder's projection a 3x3 convolution from them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ..kinds import PartParams, register_backbone
from ._layers import Activation, Norm, activation, conv_out_size, latent_grid, norm2d, spatial

__all__ = ["ResNetParams", "ResNetEncoder", "ResNetDecoder", "ResidualBlock"]


class ResNetParams(PartParams):
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    blocks_per_stage: PositiveInt = 1
    norm: Norm = "group"
    activation: Activation = "silu"


def stage_sizes(channels: list[int], height: int, width: int) -> list[tuple[int, int]]:
    """Spatial size of the input and after each stride-2 stage; fails when a stage would have
    nothing left to halve (the decoder could not grow it back)."""
    sizes = [(height, width)]
    for stage in range(len(channels)):
        h, w = sizes[-1]
        if h < 2 or w < 2:
            trail = " -> ".join(f"{a}x{b}" for a, b in sizes)
            raise ValueError(
                f"resnet backbone: a {height}x{width} image is too small for {len(channels)} stride-2 stages "
                f"(sizes {trail} before stage {stage + 1}); use at most {len(sizes) - 1} entries in channels "
                f"or a larger input"
            )
        sizes.append((conv_out_size(h, 3, 2, 1), conv_out_size(w, 3, 2, 1)))
    return sizes


class ResidualBlock(nn.Module):
    """Pre-activation residual block. ``resample``: ``down`` (stride 2), ``up`` (resize to
    ``size`` first) or ``none``; the shortcut is a 1x1 conv when shape or channels change."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, act: str, resample: str = "none",
                 size: tuple[int, int] | None = None):
        super().__init__()
        self.resample, self.size = resample, size
        stride = 2 if resample == "down" else 1
        self.norm1, self.act1 = norm2d(norm, in_channels), activation(act)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
        self.norm2, self.act2 = norm2d(norm, out_channels), activation(act)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride) if in_channels != out_channels
                         or resample != "none" else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            x = F.interpolate(x, size=self.size, mode="nearest")
        h = self.conv1(self.act1(self.norm1(x)))
        h = self.conv2(self.act2(self.norm2(h)))
        return self.shortcut(x) + h


@register_backbone("resnet", role="encoder", params=ResNetParams)
class ResNetEncoder(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], out_features: int | tuple[int, int, int], **params):
        super().__init__()
        config = ResNetParams(**params)
        in_channels, height, width = spatial(in_shape, "resnet")
        h, w = stage_sizes(config.channels, height, width)[-1]
        self.stem = nn.Conv2d(in_channels, config.channels[0], 3, 1, 1)
        blocks: list[nn.Module] = []
        previous = config.channels[0]
        for channels in config.channels:
            blocks.append(ResidualBlock(previous, channels, config.norm, config.activation, "down"))
            blocks += [ResidualBlock(channels, channels, config.norm, config.activation)
                       for _ in range(config.blocks_per_stage - 1)]
            previous = channels
        self.blocks = nn.Sequential(*blocks, norm2d(config.norm, previous), activation(config.activation))
        grid_channels = latent_grid(out_features, (h, w), "resnet encoder")
        self.on_grid = grid_channels is not None
        self.head = nn.Conv2d(previous, grid_channels, 1) if self.on_grid else nn.Linear(previous * h * w, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        return self.head(h) if self.on_grid else self.head(h.flatten(1))


@register_backbone("resnet", role="decoder", params=ResNetParams)
class ResNetDecoder(nn.Module):
    def __init__(self, in_features: int | tuple[int, int, int], out_shape: tuple[int, ...], **params):
        super().__init__()
        config = ResNetParams(**params)
        out_channels, height, width = spatial(out_shape, "resnet")
        sizes = stage_sizes(config.channels, height, width)
        self.feature_shape = (config.channels[-1], *sizes[-1])
        grid_channels = latent_grid(in_features, sizes[-1], "resnet decoder")
        self.on_grid = grid_channels is not None
        self.project = (nn.Conv2d(grid_channels, config.channels[-1], 3, 1, 1) if self.on_grid
                        else nn.Linear(in_features, math.prod(self.feature_shape)))
        blocks: list[nn.Module] = []
        for i in reversed(range(len(config.channels))):
            channels = config.channels[i]
            target = config.channels[i - 1] if i > 0 else config.channels[0]
            blocks += [ResidualBlock(channels, channels, config.norm, config.activation)
                       for _ in range(config.blocks_per_stage - 1)]
            blocks.append(ResidualBlock(channels, target, config.norm, config.activation, "up", size=sizes[i]))
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Sequential(norm2d(config.norm, config.channels[0]), activation(config.activation),
                                 nn.Conv2d(config.channels[0], out_channels, 3, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z) if self.on_grid else self.project(z).view(-1, *self.feature_shape)
        return self.out(self.blocks(h))
