"""Training objectives: given the model and a batch, the loss and the terms users report."""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat
from torch import nn

from ..output import VAEOutput
from .registry import register_objective

__all__ = ["Objective", "ELBO", "free_bits_kl"]


class Objective(nn.Module):
    """Base class: ``forward(model, x, kl_scale=1.0) -> VAEOutput``.

    ``kl_scale`` multiplies the objective's own KL weight; the trainer uses it for KL warm-up.
    """

    def forward(self, model, x: torch.Tensor, kl_scale: float = 1.0) -> VAEOutput:
        raise NotImplementedError


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """``sum_j max(free_bits, mean_batch KL_j)`` for a KL of shape (..., latent_dim)."""
    per_dim = kl_per_dim.reshape(-1, kl_per_dim.shape[-1]).mean(dim=0)
    return per_dim.clamp(min=free_bits).sum()


@register_objective("elbo")
class ELBO(Objective):
    """Negative ELBO with a KL weight: ``loss = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))``.

    One reparameterized sample per example, nats per image, averaged over the batch. With
    ``beta = 1`` (the default) the loss is exactly the negative ELBO (Kingma & Welling 2014);
    other values give the beta-VAE (Higgins et al. 2017).

    ``free_bits = lambda > 0`` (Kingma et al. 2016, "Improved variational inference with
    inverse autoregressive flow", eq. 15) optimizes ``sum_j max(lambda, E_batch[KL_j])``
    instead of the KL, KL_j the KL of latent dimension j averaged over the batch: a dimension
    already below lambda nats gets no gradient from the KL, so it is not pushed to collapse.
    Priors without a per-dimension KL (``mog``, ``vamp``) clamp the batch-mean total KL at
    ``lambda * latent_dim`` instead. The reported ``kl`` and ``elbo`` stay the true ones.
    """

    def __init__(self, beta: NonNegativeFloat = 1.0, free_bits: NonNegativeFloat = 0.0):
        super().__init__()
        self.beta = beta
        self.free_bits = free_bits

    def forward(self, model, x: torch.Tensor, kl_scale: float = 1.0) -> VAEOutput:
        posterior = model.encode(x)
        z = posterior.rsample()
        likelihood = model.decode(z)
        log_px = likelihood.log_prob(x)
        kl = model.prior.kl(posterior, z)
        recon, kl_mean = -log_px.mean(), kl.mean()
        kl_term = kl_mean
        if self.free_bits > 0:
            per_dim = getattr(model.prior, "kl_per_dim", None)  # priors not derived from Prior lack it
            kl_dims = per_dim(posterior, z) if per_dim is not None else None
            kl_term = (free_bits_kl(kl_dims, self.free_bits) if kl_dims is not None
                       else kl_mean.clamp(min=self.free_bits * z.shape[-1]))
        loss = recon + (self.beta * kl_scale) * kl_term
        return VAEOutput(
            loss=loss, recon=recon, kl=kl_mean, elbo=log_px - kl, z=z, posterior=posterior, likelihood=likelihood
        )
