"""What a forward pass returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import Distribution

__all__ = ["VAEOutput"]


@dataclass
class VAEOutput:
    """``loss``: the training objective (nats per image, batch mean); ``recon``: the batch
    mean of -log p(x|z); ``kl``: the batch mean of KL(q(z|x) || p(z)); ``elbo``: the ELBO
    of each example, shape (B,); ``z``: the latent sample; ``posterior`` and ``likelihood``:
    the distributions q(z|x) and p(x|z)."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    elbo: torch.Tensor
    z: torch.Tensor
    posterior: Distribution
    likelihood: Distribution

    @property
    def x_hat(self) -> torch.Tensor:
        """The reconstruction: the mean of p(x|z) (computed on demand, not on the hot path)."""
        return self.likelihood.mean
