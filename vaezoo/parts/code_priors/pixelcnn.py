"""A gated PixelCNN over the code grid (``pixelcnn``): van den Oord, Kalchbrenner, Vinyals,
Espeholt, Graves & Kavukcuoglu 2016 ("Conditional image generation with PixelCNN decoders"),
the prior that van den Oord et al. 2017 fit on a VQ-VAE's codes.

Two stacks remove the original PixelCNN's blind spot. The vertical stack sees the rows up to
the current one (a (k//2 + 1) x k convolution over rows above and this one); it reaches the
horizontal stack shifted down by a row, so that it only tells it about rows strictly above.
The horizontal stack sees the current row up to the current position; its first layer is
shifted right by one, so that a position never sees its own code. Each layer is gated,
``tanh(a) * sigmoid(b)``, and the horizontal stack is residual. A learned embedding per
position joins after the first layer (positions are not data, so this leaks nothing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt, field_validator
from torch import nn

from ..kinds import PartParams, register_code_prior
from .base import CodePrior

__all__ = ["GatedPixelCNN", "PixelCNNParams"]


class PixelCNNParams(PartParams):
    channels: PositiveInt = Field(128, description="channels of both stacks")
    layers: PositiveInt = Field(8, description="gated layers")
    kernel_size: PositiveInt = Field(3, description="odd kernel width of the stacks")
    embedding_dim: PositiveInt = Field(64, description="size of each code's input embedding")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the output head's hidden layer")

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a centred kernel), got {value}")
        return value


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _down_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def _right_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class _GatedLayer(nn.Module):
    def __init__(self, in_channels: int, channels: int, k: int, first: bool):
        super().__init__()
        self.first, self.k = first, k
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (k // 2 + 1, k))
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, k // 2 + 1))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.k // 2
        v_pre = self.vertical(F.pad(v, (half, half, half, 0)))  # rows i - k//2 .. i
        h_pre = self.horizontal(F.pad(h, (half, 0, 0, 0)))  # columns j - k//2 .. j of row i
        if self.first:
            h_pre = _right_shift(h_pre)  # the input holds the codes themselves: never see your own
        h_out = self.out(_gate(h_pre + self.link(_down_shift(v_pre))))
        return _gate(v_pre), h_out if self.first else h + h_out


@register_code_prior("pixelcnn", params=PixelCNNParams)
class GatedPixelCNN(CodePrior):
    def __init__(self, codebook_size: int, grid: tuple[int, int], **params):
        super().__init__()
        config = PixelCNNParams(**params)
        self.codebook_size, self.grid = int(codebook_size), (int(grid[0]), int(grid[1]))
        self.embedding = nn.Embedding(self.codebook_size, config.embedding_dim)
        self.position = nn.Parameter(torch.zeros(1, config.channels, *self.grid))
        self.layers = nn.ModuleList(
            _GatedLayer(config.embedding_dim if i == 0 else config.channels, config.channels, config.kernel_size, i == 0)
            for i in range(config.layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(config.channels, 4 * config.channels, 1), nn.ReLU(),
                                  nn.Dropout(config.dropout), nn.Conv2d(4 * config.channels, self.codebook_size, 1))

    def network(self, embedded: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, h, w) from embedded codes (B, E, h, w); position (i, j) depends only on
        the positions before it in raster order."""
        v = h = embedded
        for i, layer in enumerate(self.layers):
            v, h = layer(v, h)
            if i == 0:
                h = h + self.position
        return self.head(h)

    def logits(self, indices: torch.Tensor) -> torch.Tensor:
        return self.network(self.embedding(indices).permute(0, 3, 1, 2))
