"""The sliced Wasserstein distance between two samples: what a sliced-Wasserstein autoencoder
minimizes between its codes and draws of the prior."""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["random_directions", "sliced_wasserstein"]


def random_directions(dim: int, count: int, like: torch.Tensor, generator: Optional[torch.Generator] = None):
    """``count`` directions uniform on the unit sphere of R^dim, as the columns of a (dim, count) matrix."""
    theta = torch.randn(dim, count, generator=generator, device=like.device, dtype=like.dtype)
    return theta / theta.norm(dim=0, keepdim=True)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """``SW_p^p``, the mean over ``directions`` (D, L) of the p-th power Wasserstein distance between
    the projections of the samples ``a`` and ``b`` (N, D), both of N points: in one dimension the
    optimal coupling of two equal-sized samples pairs them in sorted order, so each projection's
    W_p^p is ``mean_i |a_(i) - b_(i)|^p`` (Kolouri et al. 2019, eq. 11)."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs two samples of the same size; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    projected_a = torch.sort(a @ directions, dim=0).values
    projected_b = torch.sort(b @ directions, dim=0).values
    return (projected_a - projected_b).abs().pow(p).mean()
