"""The posterior of a deterministic encoder: a point mass at the encoder's output (AE, WAE, RAE)."""

from __future__ import annotations

import torch

from ..errors import UsageError

__all__ = ["PointPosterior", "NO_DENSITY"]

NO_DENSITY = ("a deterministic encoder (a point posterior) has no density q(z|x), so an autoencoder has no ELBO and "
              "no importance-weighted bound: score it by its samples (vaezoo eval --fid, through its prior or a "
              "fitted one), its codes (--probe) or its reconstructions")


class PointPosterior:
    """q(z|x) = delta(z - e(x)): ``mean`` is the code, every draw is the code itself, and asking
    for a density says, in one line, that there is none."""

    def __init__(self, z: torch.Tensor):
        self.z = z

    @property
    def mean(self) -> torch.Tensor:
        return self.z

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return self.z.expand(*sample_shape, *self.z.shape)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return self.rsample(sample_shape).detach()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        raise UsageError(NO_DENSITY)

    def __repr__(self) -> str:
        return f"PointPosterior({tuple(self.z.shape)})"
