"""A configurable strided conv encoder/decoder pair for any image size.

The encoder stacks ``Conv -> norm -> activation`` blocks, flattens and projects to the
posterior's parameters. The decoder mirrors it: a projection to the encoder's last feature
map, then transposed convolutions whose output padding is solved per layer so that the
image comes back at exactly the input size (28 -> 14 -> 7 -> 4 -> 7 -> 14 -> 28).

With a latent grid (``out_features`` / ``in_features`` given as ``(C, h, w)``, a VQ-VAE's codes)
the flatten and the projections become a 1x1 convolution to C channels (encoder) and a 3x3
convolution from them (decoder), at the deepest feature map's size.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn

from ..kinds import PartParams, register_backbone
from ._layers import (
    Activation, Norm, activation, conv_out_size, flatten_linear, latent_grid, linear_unflatten, norm2d, spatial,
    transposed_output_padding,
)

__all__ = ["ConvParams", "ConvEncoder", "ConvDecoder"]


class ConvParams(PartParams):
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    kernel_size: PositiveInt | list[PositiveInt] = 4
    stride: PositiveInt | list[PositiveInt] = 2
    norm: Norm = "none"
    activation: Activation = "relu"

    @model_validator(mode="after")
    def _lengths_match(self):
        for field in ("kernel_size", "stride"):
            value = getattr(self, field)
            if isinstance(value, list) and len(value) != len(self.channels):
                raise ValueError(
                    f"{field} has {len(value)} entries but channels has {len(self.channels)}; "
                    f"give one per layer or a single int"
                )
        return self

    def layers(self) -> list[tuple[int, int, int]]:
        """(channels, kernel, stride) per layer."""
        n = len(self.channels)
        kernels = self.kernel_size if isinstance(self.kernel_size, list) else [self.kernel_size] * n
        strides = self.stride if isinstance(self.stride, list) else [self.stride] * n
        return list(zip(self.channels, kernels, strides))


def _feature_sizes(params: ConvParams, height: int, width: int) -> list[tuple[int, int]]:
    """Spatial size before each layer and after the last one."""
    sizes = [(height, width)]
    for _, k, s in params.layers():
        h, w = sizes[-1]
        p = (k - 1) // 2
        nh, nw = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
        if nh < 1 or nw < 1:
            raise ValueError(
                f"conv backbone: a {height}x{width} image shrinks to nothing at layer {len(sizes)} "
                f"(kernel {k}, stride {s}); use fewer layers or smaller strides"
            )
        sizes.append((nh, nw))
    return sizes


@register_backbone("conv", role="encoder", params=ConvParams)
class ConvEncoder(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], out_features: int | tuple[int, int, int], **params):
        super().__init__()
        config = ConvParams(**params)
        in_channels, height, width = spatial(in_shape, "conv")
        blocks: list[nn.Module] = []
        for channels, k, s in config.layers():
            blocks += [nn.Conv2d(in_channels, channels, k, s, (k - 1) // 2), norm2d(config.norm, channels),
                       activation(config.activation)]
            in_channels = channels
        self.features = nn.Sequential(*blocks)
        h, w = _feature_sizes(config, height, width)[-1]
        grid_channels = latent_grid(out_features, (h, w), "conv encoder")
        self.on_grid = grid_channels is not None
        self.head = (nn.Conv2d(in_channels, grid_channels, 1) if self.on_grid
                     else nn.Linear(in_channels * h * w, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.on_grid:
            return self.head(self.features(x))
        return flatten_linear(self.features(x), self.head.weight, self.head.bias)


@register_backbone("conv", role="decoder", params=ConvParams)
class ConvDecoder(nn.Module):
    def __init__(self, in_features: int | tuple[int, int, int], out_shape: tuple[int, ...], **params):
        super().__init__()
        config = ConvParams(**params)
        out_channels, height, width = spatial(out_shape, "conv")
        sizes = _feature_sizes(config, height, width)
        layers = config.layers()
        self.feature_shape = (layers[-1][0], *sizes[-1])
        grid_channels = latent_grid(in_features, sizes[-1], "conv decoder")
        self.on_grid = grid_channels is not None
        self.project = (nn.Conv2d(grid_channels, layers[-1][0], 3, 1, 1) if self.on_grid
                        else nn.Linear(in_features, math.prod(self.feature_shape)))
        self.project_activation = activation(config.activation)
        blocks: list[nn.Module] = []
        for i in reversed(range(len(layers))):
            channels, k, s = layers[i]
            target_channels = layers[i - 1][0] if i > 0 else out_channels
            (h_in, w_in), (h_out, w_out) = sizes[i + 1], sizes[i]
            p = (k - 1) // 2
            pads = [transposed_output_padding(a, b, k, s, p) for a, b in ((h_in, h_out), (w_in, w_out))]
            if None in pads:
                raise ValueError(
                    f"conv decoder cannot grow {h_in}x{w_in} back to {h_out}x{w_out} with kernel {k}, "
                    f"stride {s}; choose a kernel >= stride"
                )
            blocks.append(nn.ConvTranspose2d(channels, target_channels, k, s, p, output_padding=tuple(pads)))
            if i > 0:
                blocks += [norm2d(config.norm, target_channels), activation(config.activation)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.on_grid:
            h = self.project(z)
        else:
            h = linear_unflatten(z, self.project, self.feature_shape, like=self.blocks[0].weight)
        return self.blocks(self.project_activation(h))
