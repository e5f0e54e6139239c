"""A gated PixelCNN over the code grid (``pixelcnn``): van den Oord, Kalchbrenner, Vinyals,
Espeholt, Graves & Kavukcuoglu 2016 ("Conditional image generation with PixelCNN decoders"),
the prior that van den Oord et al. 2017 fit on a VQ-VAE's codes.

The layers (two stacks, no blind spot) are :mod:`vaezoo.parts.gated_pixelcnn`'s. A learned
embedding per position joins after the first layer (positions are not data, so this leaks nothing).
"""

from __future__ import annotations

import torch
from pydantic import Field, PositiveInt
from torch import nn

from ..gated_pixelcnn import GatedLayer, OddKernelSize
from ..kinds import PartParams, register_code_prior
from .base import CodePrior

__all__ = ["GatedPixelCNN", "PixelCNNParams"]


class PixelCNNParams(PartParams):
    channels: PositiveInt = Field(128, description="channels of both stacks")
    layers: PositiveInt = Field(8, description="gated layers")
    kernel_size: OddKernelSize = Field(3, description="odd kernel width of the stacks")
    embedding_dim: PositiveInt = Field(64, description="size of each code's input embedding")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the output head's hidden layer")


@register_code_prior("pixelcnn", params=PixelCNNParams)
class GatedPixelCNN(CodePrior):
    def __init__(self, codebook_size: int, grid: tuple[int, int], **params):
        super().__init__()
        config = PixelCNNParams(**params)
        self.codebook_size, self.grid = int(codebook_size), (int(grid[0]), int(grid[1]))
        self.embedding = nn.Embedding(self.codebook_size, config.embedding_dim)
        self.position = nn.Parameter(torch.zeros(1, config.channels, *self.grid))
        self.layers = nn.ModuleList(
            GatedLayer(config.embedding_dim if i == 0 else config.channels, config.channels, config.kernel_size, i == 0)
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
