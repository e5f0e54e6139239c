"""The likelihood contract: the decoder's output maps -> a distribution over whole images."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

__all__ = ["Likelihood"]


class Likelihood(nn.Module):
    """Base class. ``params_per_channel`` tells the decoder how many maps to output per
    image channel; ``forward`` maps those maps to a distribution whose event is one image."""

    params_per_channel: int = 1
    float32_params: bool = False  # True: the model runs the decoder in float32 even under autocast
    value_range: tuple[float, float] | None = None  # the pixel values it scores; None: any real number

    def __init__(self, in_shape: tuple[int, ...]):
        super().__init__()
        self.in_shape = tuple(in_shape)

    def decoder_shape(self) -> tuple[int, ...]:
        channels, *spatial = self.in_shape
        return (channels * self.params_per_channel, *spatial)

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        raise NotImplementedError
