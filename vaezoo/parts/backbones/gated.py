"""Gated backbones, the networks of the VampPrior paper (Tomczak & Welling 2018) and its HVAE.

A gated layer is ``h(x) * sigmoid(g(x))`` with two affine maps h and g (Dauphin et al. 2017's
gated linear unit, without an activation on h, as in the paper's code). Linear layers start
from He initialization, N(0, 2 / fan_in), as there.

- ``gated-mlp``: flatten, ``GatedDense`` per entry of ``hidden``, then a linear head to the output
  (``head: gated`` makes the head a gated layer too: the HVAE's x-path of q(z1|x, z2)). The
  paper's VAE is ``hidden: [300, 300]`` on both sides.
- ``gated-conv`` encoder: ``GatedConv2d`` per ``[channels, kernel, stride]`` row (padding
  kernel // 2), flattened, then a linear head (``head: flatten`` outputs the flattened maps as
  they are, and then needs ``out_features`` to equal their size). The default rows are the
  ConvHVAE's q(z2|x): 28x28 -> 6x7x7.
- ``gated-conv`` decoder: a gated dense projection to ``start_channels`` maps at the output's
  full resolution, ``GatedConv2d`` rows of stride 1, and a 1x1 convolution to the likelihood's
  maps: the ConvHVAE's p(x|z1, z2).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from ..kinds import PartParams, register_backbone
from ._layers import conv_out_size, spatial

__all__ = ["GatedDense", "GatedConv2d", "GatedMLPParams", "GatedConvParams", "GatedConvDecoderParams", "he_init"]


def he_init(module: nn.Module) -> None:
    """N(0, 2 / fan_in) weights for every Linear inside ``module`` (the paper's he_init)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.in_features))


class GatedDense(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.h = nn.Linear(in_features, out_features)
        self.g = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


class GatedConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__()
        self.h = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2)
        self.g = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


class GatedMLPParams(PartParams):
    hidden: list[PositiveInt] = Field(default_factory=lambda: [300, 300], description="gated layer sizes")
    head: Literal["linear", "gated"] = Field("linear", description="the output layer: affine, or gated")


def _gated_stack(sizes: list[int]) -> list[nn.Module]:
    return [GatedDense(a, b) for a, b in zip(sizes, sizes[1:])]


@register_backbone("gated-mlp", role="encoder", params=GatedMLPParams)
class GatedMLPEncoder(nn.Module):
    """Flatten, a gated dense layer per ``hidden`` entry, a linear (or gated) head: the VampPrior paper's MLP."""

    def __init__(self, in_shape: tuple[int, ...], out_features: int, **params):
        super().__init__()
        config = GatedMLPParams(**params)
        sizes = [math.prod(in_shape), *config.hidden]
        head = GatedDense if config.head == "gated" else nn.Linear
        self.net = nn.Sequential(nn.Flatten(), *_gated_stack(sizes), head(sizes[-1], out_features))
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_backbone("gated-mlp", role="decoder", params=GatedMLPParams)
class GatedMLPDecoder(nn.Module):
    """A gated dense layer per ``hidden`` entry, a linear (or gated) head to the likelihood's maps."""

    def __init__(self, in_features: int, out_shape: tuple[int, ...], **params):
        super().__init__()
        config = GatedMLPParams(**params)
        self.out_shape = tuple(out_shape)
        sizes = [in_features, *config.hidden]
        head = GatedDense if config.head == "gated" else nn.Linear
        self.net = nn.Sequential(*_gated_stack(sizes), head(sizes[-1], math.prod(out_shape)))
        he_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.out_shape)


Row = tuple[PositiveInt, PositiveInt, PositiveInt]
# the ConvHVAE's q(z2 | x) (convHVAE_2level.py): 28x28 -> 14x14 -> 7x7, 6 maps
_PAPER_ENCODER: list[Row] = [(32, 7, 1), (32, 3, 2), (64, 5, 1), (64, 3, 2), (6, 3, 1)]


class GatedConvParams(PartParams):
    layers: list[Row] = Field(default_factory=lambda: list(_PAPER_ENCODER), min_length=1,
                              description="[channels, kernel, stride] per gated convolution")
    head: Literal["linear", "flatten"] = Field("linear", description="the output: a linear map, or the "
                                                                     "flattened maps themselves")


class GatedConvDecoderParams(PartParams):
    layers: list[Row] = Field(default_factory=lambda: [(64, 3, 1)] * 4, min_length=1,
                              description="[channels, kernel, stride] per gated convolution (stride 1)")
    start_channels: PositiveInt = Field(1, description="maps of the projection, at the output's resolution")


@register_backbone("gated-conv", role="encoder", params=GatedConvParams)
class GatedConvEncoder(nn.Module):
    """Gated convolutions (``[channels, kernel, stride]`` rows), flattened, a linear head: the ConvHVAE's q(z2|x)."""

    def __init__(self, in_shape: tuple[int, ...], out_features: int, **params):
        super().__init__()
        config = GatedConvParams(**params)
        channels, height, width = spatial(in_shape, "gated-conv")
        blocks = []
        for out_channels, kernel, stride in config.layers:
            blocks.append(GatedConv2d(channels, out_channels, kernel, stride))
            channels = out_channels
            height = conv_out_size(height, kernel, stride, kernel // 2)
            width = conv_out_size(width, kernel, stride, kernel // 2)
            if height < 1 or width < 1:
                raise ValueError(f"gated-conv: the image shrinks to nothing at layer {len(blocks)}; "
                                 f"use fewer stride-2 layers")
        self.features = nn.Sequential(*blocks)
        flat = channels * height * width
        if config.head == "flatten":
            if out_features != flat:
                raise ValueError(f"head 'flatten' outputs the {channels}x{height}x{width} = {flat} feature maps "
                                 f"as they are, but {out_features} outputs are asked for; set the size that "
                                 f"consumes it to {flat}, or use head 'linear'")
            self.head = nn.Identity()
        else:
            self.head = nn.Linear(flat, out_features)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


@register_backbone("gated-conv", role="decoder", params=GatedConvDecoderParams)
class GatedConvDecoder(nn.Module):
    """A gated projection to the output's resolution, stride-1 gated convolutions, a 1x1 convolution."""

    def __init__(self, in_features: int, out_shape: tuple[int, ...], **params):
        super().__init__()
        config = GatedConvDecoderParams(**params)
        out_channels, height, width = spatial(out_shape, "gated-conv")
        if any(stride != 1 for _, _, stride in config.layers):
            raise ValueError("the gated-conv decoder works at the output's resolution: every stride must be 1")
        self.start = (config.start_channels, height, width)
        self.project = GatedDense(in_features, math.prod(self.start))
        blocks, channels = [], config.start_channels
        for maps, kernel, _ in config.layers:
            blocks.append(GatedConv2d(channels, maps, kernel))
            channels = maps
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(channels, out_channels, 1)
        he_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.project(z).view(-1, *self.start)))
