"""Training objectives: given the model and a batch, the loss and the terms users report."""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat
from torch import nn

from ..output import VAEOutput
from .registry import register_objective

__all__ = ["Objective", "ELBO"]


class Objective(nn.Module):
    """Base class: ``forward(model, x, kl_scale=1.0) -> VAEOutput``.

    ``kl_scale`` multiplies the objective's own KL weight; the trainer uses it for KL warm-up.
    """

    def forward(self, model, x: torch.Tensor, kl_scale: float = 1.0) -> VAEOutput:
        raise NotImplementedError


@register_objective("elbo")
class ELBO(Objective):
    """Negative ELBO with a KL weight: ``loss = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))``.

    One reparameterized sample per example, nats per image, averaged over the batch. With
    ``beta = 1`` (the default) the loss is exactly the negative ELBO (Kingma & Welling 2014);
    other values give the beta-VAE (Higgins et al. 2017).
    """

    def __init__(self, beta: NonNegativeFloat = 1.0):
        super().__init__()
        self.beta = beta

    def forward(self, model, x: torch.Tensor, kl_scale: float = 1.0) -> VAEOutput:
        posterior = model.encode(x)
        z = posterior.rsample()
        likelihood = model.decode(z)
        log_px = likelihood.log_prob(x)
        kl = model.prior.kl(posterior, z)
        recon, kl_mean = -log_px.mean(), kl.mean()
        loss = recon + (self.beta * kl_scale) * kl_mean
        return VAEOutput(
            loss=loss, recon=recon, kl=kl_mean, elbo=log_px - kl, z=z, posterior=posterior, likelihood=likelihood
        )
