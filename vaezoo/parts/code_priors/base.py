"""The code-prior contract: an autoregressive distribution over an (h, w) grid of K codes.

``logits(indices)`` gives, at every position of the grid, the logits of that position's code
given the codes before it in raster order (row by row, left to right): shape (B, K, h, w).
From it the base gives ``log_prob`` (nats per grid, summed over positions) and ``sample``
(one position at a time, h * w passes).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CodePrior"]


class CodePrior(nn.Module):
    """Base class. Subclasses set ``codebook_size`` and ``grid`` and implement ``logits``."""

    codebook_size: int
    grid: tuple[int, int]

    def logits(self, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, indices: torch.Tensor) -> torch.Tensor:
        """log pi(indices) in nats per grid, shape (B,)."""
        nll = F.cross_entropy(self.logits(indices).float(), indices, reduction="none")
        return -nll.flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` grids of codes, (n, h, w) int64, drawn position by position."""
        device = next(self.parameters()).device
        h, w = self.grid
        codes = torch.zeros(n, h, w, dtype=torch.long, device=device)
        for i in range(h):
            for j in range(w):
                probs = F.softmax(self.logits(codes)[:, :, i, j].float() / temperature, dim=1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return codes
