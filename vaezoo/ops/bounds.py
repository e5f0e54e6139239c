"""Reductions behind the bounds on log p(x), and the definitions their reports cite."""

from __future__ import annotations

import math

import torch

__all__ = ["logmeanexp", "ACTIVE_UNIT_THRESHOLD"]

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda, Grosse & Salakhutdinov (2016), section 5.2: Cov_x(E_q[z_j]) above it


def logmeanexp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log mean exp`` along ``dim``, stable for any magnitude (the max is taken out by logsumexp)."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])
