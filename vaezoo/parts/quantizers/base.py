"""The quantizer contract: latent vectors in, their codes out, with a gradient that passes.

A quantizer maps ``z`` of shape ``(B, dim, *grid)`` (a grid of latent vectors, channels first,
as a conv encoder gives them; ``(B, dim)`` for one vector) to :class:`Quantized`: the quantized
tensor with a straight-through estimator applied (the forward value is the code; the gradient
reaches ``z`` unchanged, or through the quantizer's relaxation where its method has one), the integer indices ``(B, *grid)``, named loss terms (per image:
sums over the image's latent elements, means over the batch) and the batch's code statistics.

``forward(z, update=...)``: a quantizer with state learned outside the optimizer (the EMA
codebook) changes it only when ``update`` is true; by default when the module is training.
Encoding images with a trained model never moves its codebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Quantizer", "Quantized", "channels_last_flat", "code_statistics"]


@dataclass
class Quantized:
    z_q: torch.Tensor  # (B, dim, *grid): the codes' vectors, straight-through to z
    indices: torch.Tensor  # (B, *grid) int64
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # loss terms, batch means
    stats: dict[str, torch.Tensor] = field(default_factory=dict)  # codebook usage and perplexity of the batch


class Quantizer(nn.Module):
    """Base class. ``codebook_size``: the number of distinct codes."""

    codebook_size: int

    def forward(self, z: torch.Tensor, update: bool | None = None) -> Quantized:
        raise NotImplementedError

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The vectors of ``indices`` (B, *grid) as (B, dim, *grid): what the decoder takes."""
        raise NotImplementedError


def channels_last_flat(z: torch.Tensor) -> torch.Tensor:
    """(B, dim, *grid) -> (B * prod(grid), dim): one row per latent vector."""
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def code_statistics(indices: torch.Tensor, codebook_size: int) -> dict[str, torch.Tensor]:
    """The batch's codebook ``usage`` (fraction of codes used) and ``perplexity`` (exp of the
    entropy of the code frequencies: K when every code is equally used), on the device."""
    counts = torch.bincount(indices.reshape(-1), minlength=codebook_size).float()
    p = counts / counts.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"usage": (counts > 0).float().mean(), "perplexity": entropy.exp()}
