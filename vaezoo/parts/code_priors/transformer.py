"""A small causal transformer over the code grid (``transformer``), read in raster order: the
codes become a sequence of h * w tokens, shifted right behind a learned start token, with a
learned position embedding and a causal mask (the second stage of VQGAN, Esser et al. 2021,
at the size of a 7 x 7 grid)."""

from __future__ import annotations

import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn

from ..kinds import PartParams, register_code_prior
from .base import CodePrior

__all__ = ["CausalTransformer", "TransformerParams"]


class TransformerParams(PartParams):
    width: PositiveInt = Field(128, description="token embedding size")
    depth: PositiveInt = Field(4, description="transformer layers")
    heads: PositiveInt = Field(4, description="attention heads; must divide width")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
        return self


@register_code_prior("transformer", params=TransformerParams)
class CausalTransformer(CodePrior):
    def __init__(self, codebook_size: int, grid: tuple[int, int], **params):
        super().__init__()
        config = TransformerParams(**params)
        self.codebook_size, self.grid = int(codebook_size), (int(grid[0]), int(grid[1]))
        length = self.grid[0] * self.grid[1]
        self.tokens = nn.Embedding(self.codebook_size, config.width)
        self.start = nn.Parameter(torch.zeros(1, 1, config.width))
        self.position = nn.Parameter(torch.randn(1, length, config.width) * 0.02)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, self.codebook_size)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(length), persistent=False)

    def logits(self, indices: torch.Tensor) -> torch.Tensor:
        b, (h, w) = indices.shape[0], self.grid
        tokens = self.tokens(indices.reshape(b, h * w))
        sequence = torch.cat([self.start.expand(b, 1, -1), tokens[:, :-1]], dim=1) + self.position
        out = self.head(self.norm(self.blocks(sequence, mask=self.mask, is_causal=True)))
        return out.transpose(1, 2).reshape(b, self.codebook_size, h, w)
