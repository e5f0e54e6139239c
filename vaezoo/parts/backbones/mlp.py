"""Fully connected encoder/decoder: flatten the image, stack Linear layers."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from ..kinds import PartParams, register_backbone
from ._layers import Activation, activation

__all__ = ["MLPParams", "MLPEncoder", "MLPDecoder"]


class MLPParams(PartParams):
    hidden: list[PositiveInt] = Field(default_factory=lambda: [512, 256], min_length=1)
    activation: Activation = "relu"
    norm: Literal["none", "layer"] = "none"


def _stack(sizes: list[int], config: MLPParams) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.LayerNorm(b) if config.norm == "layer" else nn.Identity(),
                   activation(config.activation)]
    return layers


@register_backbone("mlp", role="encoder", params=MLPParams)
class MLPEncoder(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], out_features: int, **params):
        super().__init__()
        config = MLPParams(**params)
        sizes = [math.prod(in_shape), *config.hidden]
        self.net = nn.Sequential(nn.Flatten(), *_stack(sizes, config), nn.Linear(sizes[-1], out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_backbone("mlp", role="decoder", params=MLPParams)
class MLPDecoder(nn.Module):
    def __init__(self, in_features: int, out_shape: tuple[int, ...], **params):
        super().__init__()
        config = MLPParams(**params)
        self.out_shape = tuple(out_shape)
        sizes = [in_features, *reversed(config.hidden)]
        self.net = nn.Sequential(*_stack(sizes, config), nn.Linear(sizes[-1], math.prod(out_shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.out_shape)
