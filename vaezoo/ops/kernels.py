"""Kernel two-sample statistics on latent codes: the MMD that a Wasserstein autoencoder minimizes."""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["kernel_matrix", "mmd_squared"]


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: str, bandwidths: Sequence[float]) -> torch.Tensor:
    """sum over bandwidths C of k_C(a_i, b_j), (N, M): ``imq`` C / (C + |a - b|^2) or ``rbf`` exp(-|a - b|^2 / C)."""
    distances = torch.cdist(a, b).pow(2)
    total = torch.zeros_like(distances)
    for c in bandwidths:
        total = total + (c / (c + distances) if kernel == "imq" else torch.exp(-distances / c))
    return total


def mmd_squared(a: torch.Tensor, b: torch.Tensor, kernel: str, bandwidths: Sequence[float]) -> torch.Tensor:
    """The unbiased estimate of MMD^2 between the samples ``a`` (N, D) and ``b`` (M, D) (Gretton et
    al. 2012, eq. 3): the within-sample means leave out the diagonal."""
    n, m = a.shape[0], b.shape[0]
    within_a = kernel_matrix(a, a, kernel, bandwidths)
    within_b = kernel_matrix(b, b, kernel, bandwidths)
    between = kernel_matrix(a, b, kernel, bandwidths)
    return ((within_a.sum() - within_a.diagonal().sum()) / (n * (n - 1))
            + (within_b.sum() - within_b.diagonal().sum()) / (m * (m - 1)) - 2 * between.mean())
