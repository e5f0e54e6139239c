"""The (beta-)ELBO with optional free bits, per latent level."""

from __future__ import annotations

from typing import Optional

import torch
from pydantic import NonNegativeFloat

from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["ELBO", "free_bits_kl"]


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """``sum_j max(free_bits, mean_batch KL_j)`` for a KL of shape (..., latent_dim)."""
    per_dim = kl_per_dim.reshape(-1, kl_per_dim.shape[-1]).mean(dim=0)
    return per_dim.clamp(min=free_bits).sum()


@register_objective("elbo")
class ELBO(Objective):
    """Negative ELBO with a KL weight: ``loss = E_q[-log p(x|z)] + beta * sum_l KL_l``.

    One reparameterized draw of every latent level per example, nats per image, averaged over
    the batch; ``KL_l`` is level l's KL(q(z_l | ...) || p(z_l | ...)), in closed form where both
    are Gaussian (given the draw of the levels above), else Monte Carlo. With ``beta = 1`` (the
    default) the loss is exactly the negative ELBO (Kingma & Welling 2014); other values give
    the beta-VAE (Higgins et al. 2017).

    ``free_bits = lambda > 0`` (Kingma et al. 2016, "Improved variational inference with
    inverse autoregressive flow", eq. 15) optimizes ``sum_j max(lambda, E_batch[KL_j])`` instead
    of each level's KL, KL_j the KL of latent dimension j of that level averaged over the batch:
    a dimension already below lambda nats gets no gradient from the KL, so it is not pushed to
    collapse. A level whose prior has no per-dimension KL (``mog``, ``vamp``) clamps its
    batch-mean KL at ``lambda * dim`` instead. The reported ``terms`` and ``elbo`` stay the true ones.
    """

    def __init__(self, beta: NonNegativeFloat = 1.0, free_bits: NonNegativeFloat = 0.0):
        super().__init__()
        self.beta = beta
        self.free_bits = free_bits

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, 1), y)
        log_px = draw.log_px[0]
        kls = {name: kl[0] for name, kl in draw.kl_terms().items()}
        total_kl = sum(kls.values())
        recon = -log_px.mean()
        if self.free_bits > 0:
            kl_term = sum(self._free_bits(level, kl.mean()) for level, kl in zip(draw.levels, kls.values()))
        else:
            kl_term = total_kl.mean()
        loss = recon + (self.beta * context.kl_scale) * kl_term
        return ModelOutput(
            loss=loss, terms={"recon": recon, **{name: kl.mean() for name, kl in kls.items()}},
            elbo=log_px - total_kl, z=model.squeeze_draw(draw.z), posterior=model.posterior_of(draw),
            likelihood=draw.likelihood,
        )

    def _free_bits(self, level, mean_kl: torch.Tensor) -> torch.Tensor:
        per_dim = level.kl_per_dim()
        if per_dim is not None:
            return free_bits_kl(per_dim, self.free_bits)
        return mean_kl.clamp(min=self.free_bits * level.z.shape[-1])
