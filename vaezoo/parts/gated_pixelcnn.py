"""The gated PixelCNN layer (van den Oord et al. 2016, "Conditional image generation with
PixelCNN decoders"), shared by the code prior over a VQ-VAE's codes and the autoregressive
pixel likelihood.

Two stacks remove the original PixelCNN's blind spot. The vertical stack sees the rows up to
the current one (a (k//2 + 1) x k convolution over rows above and this one); it reaches the
horizontal stack shifted down by a row, so that it only tells it about rows strictly above.
The horizontal stack sees the current row up to the current position; the first layer's is
shifted right by one, so that a position never sees its own value. Each layer is gated,
``tanh(a) * sigmoid(b)``, and the horizontal stack is residual after the first layer.

Nothing pads below a row, so the outputs of rows 0..i depend on the input's rows 0..i only:
a sampler may run the stack on the rows drawn so far.
"""

from __future__ import annotations

from typing import Annotated, Optional

import torch
import torch.nn.functional as F
from pydantic import AfterValidator, Field
from torch import nn

__all__ = ["GatedLayer", "OddKernelSize", "gate"]


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError(f"kernel_size must be odd (a centred kernel), got {value}")
    return value


OddKernelSize = Annotated[int, Field(gt=0), AfterValidator(_odd)]  # a stack's kernel width


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _down_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def _right_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class GatedLayer(nn.Module):
    """One layer of both stacks. With ``condition_channels``, maps of that many channels at the
    grid's size (which may see everything: they are not the modelled values) join both gates
    through a 1x1 convolution, as the conditional gated PixelCNN's ``V * h`` term."""

    def __init__(self, in_channels: int, channels: int, k: int, first: bool, condition_channels: int = 0):
        super().__init__()
        self.first, self.k = first, k
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (k // 2 + 1, k))
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, k // 2 + 1))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.condition = nn.Conv2d(condition_channels, 4 * channels, 1) if condition_channels else None

    def forward(self, v: torch.Tensor, h: torch.Tensor,
                condition: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.k // 2
        v_pre = self.vertical(F.pad(v, (half, half, half, 0)))  # rows i - k//2 .. i
        h_pre = self.horizontal(F.pad(h, (half, 0, 0, 0)))  # columns j - k//2 .. j of row i
        if self.first:
            h_pre = _right_shift(h_pre)  # the input holds the values themselves: never see your own
        if self.condition is not None:
            on_v, on_h = self.condition(condition).chunk(2, dim=1)
            v_pre, h_pre = v_pre + on_v, h_pre + on_h
        h_out = self.out(gate(h_pre + self.link(_down_shift(v_pre))))
        return gate(v_pre), h_out if self.first else h + h_out
