"""Finite scalar quantization (``fsq``): Mentzer, Minnen, Agustsson & Tschannen 2023 ("Finite
scalar quantization: VQ-VAE made simple").

Each of the ``len(levels)`` latent channels is bounded by ``tanh`` to ``levels[j]`` values and
rounded (straight-through); the codebook is the grid of their combinations, of size
``prod(levels)``: nothing to learn, so nothing to collapse. The paper's recommended levels for a
codebook of about 2^10 are [8, 5, 5, 5]; the latent grid's channels must equal ``len(levels)``.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, conint

from ..kinds import PartParams, register_quantizer
from .base import Quantized, Quantizer, code_statistics

__all__ = ["FiniteScalarQuantizer", "FSQParams"]


class FSQParams(PartParams):
    levels: list[conint(ge=2)] = Field(default_factory=lambda: [8, 5, 5, 5], min_length=1,
                                       description="values per latent channel; the codebook size is their product")


@register_quantizer("fsq", params=FSQParams)
class FiniteScalarQuantizer(Quantizer):
    def __init__(self, dim: int, **params):
        super().__init__()
        config = FSQParams(**params)
        if dim != len(config.levels):
            raise ValueError(f"fsq quantizes each latent channel: the latent grid has {dim} channels but levels has "
                             f"{len(config.levels)} entries ({config.levels})")
        self.levels = list(config.levels)
        self.codebook_size = math.prod(self.levels)
        levels = torch.tensor(self.levels, dtype=torch.float32)
        self.register_buffer("_levels", levels, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1]), 0)
        self.register_buffer("_basis", basis, persistent=False)

    def _shape(self, z: torch.Tensor) -> torch.Tensor:
        # (..., dim) levels per channel, broadcast over (B, dim, *grid)
        return self._levels.reshape(1, -1, *([1] * (z.dim() - 2)))

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Each channel squashed to [-(L-1)/2, (L-1)/2] (shifted by 1/2 for even L, so that the
        rounding gives exactly L integers)."""
        levels = self._shape(z)
        half = (levels - 1) * (1 - 1e-3) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor, update: bool | None = None) -> Quantized:  # nothing to update
        bounded = self.bound(z.float())
        rounded = bounded + (bounded.round() - bounded).detach()  # straight-through
        half_width = torch.div(self._shape(z), 2, rounding_mode="floor")
        indices = self.codes_to_indices(rounded.detach())
        return Quantized(z_q=(rounded / half_width).to(z.dtype), indices=indices,
                         stats=code_statistics(indices, self.codebook_size))

    def codes_to_indices(self, rounded: torch.Tensor) -> torch.Tensor:
        levels = self._shape(rounded)
        digits = (rounded + torch.div(levels, 2, rounding_mode="floor")).round().long()  # 0..L-1 per channel
        basis = self._basis.reshape(1, -1, *([1] * (rounded.dim() - 2)))
        return (digits * basis).sum(dim=1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        view = (1, -1, *([1] * (indices.dim() - 1)))
        levels, basis = self._levels.long().reshape(view), self._basis.reshape(view)
        digits = torch.div(indices.unsqueeze(1), basis, rounding_mode="floor") % levels
        half = torch.div(levels, 2, rounding_mode="floor")
        return (digits - half).float() / half
