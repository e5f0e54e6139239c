"""Finite scalar quantization (``fsq``): Mentzer, Minnen, Agustsson & Tschannen 2023 ("Finite
scalar quantization: VQ-VAE made simple").

Each of the ``len(levels)`` latent channels is bounded by ``tanh`` onto [0, L_j - 1] and rounded
to one of its L_j digits (straight-through), then mapped onto [-1, 1]; the codebook is the grid
of their combinations, of size ``prod(levels)``: nothing to learn, so nothing to collapse. (The
paper shifts even L by half a step to centre the digits on 0; mapping [-1, 1] onto [0, L - 1]
instead treats odd and even L alike, and L = 2 splits tanh's range in the middle.) The paper's recommended levels for a
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
        # levels per channel, broadcast over (B, dim, *grid)
        return self._levels.reshape(1, -1, *([1] * (z.dim() - 2)))

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Each channel squashed onto [0, L - 1], so that rounding gives exactly its L digits."""
        return (torch.tanh(z) + 1) / 2 * (self._shape(z) - 1)

    def forward(self, z: torch.Tensor, update: bool | None = None) -> Quantized:  # nothing to update
        bounded = self.bound(z.float())
        digits = bounded + (bounded.round() - bounded).detach()  # straight-through
        indices = self._digits_to_indices(digits.detach())
        return Quantized(z_q=self._digits_to_vectors(digits, z).to(z.dtype), indices=indices,
                         stats=code_statistics(indices, self.codebook_size))

    def _digits_to_vectors(self, digits: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return digits * (2 / (self._shape(like) - 1)) - 1  # onto [-1, 1]

    def _digits_to_indices(self, digits: torch.Tensor) -> torch.Tensor:
        basis = self._basis.reshape(1, -1, *([1] * (digits.dim() - 2)))
        return (digits.round().long() * basis).sum(dim=1)

    def vectors_to_indices(self, vectors: torch.Tensor) -> torch.Tensor:
        """The indices of code vectors (B, dim, *grid) as ``lookup`` gives them."""
        return self._digits_to_indices((vectors + 1) / 2 * (self._shape(vectors) - 1))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        view = (1, -1, *([1] * (indices.dim() - 1)))
        levels, basis = self._levels.long().reshape(view), self._basis.reshape(view)
        digits = torch.div(indices.unsqueeze(1), basis, rounding_mode="floor") % levels
        return digits.float() * (2 / (levels.float() - 1)) - 1
