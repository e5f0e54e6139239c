"""InfoVAE with the MMD divergence (``info-vae``): the ELBO with part of its KL traded for a
kernel distance between the aggregate posterior and the prior."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import NonNegativeFloat, PositiveFloat, confloat

from ...errors import UsageError
from ...ops.kernels import mmd_squared
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["InfoVAEObjective"]


@register_objective("info-vae")
class InfoVAEObjective(Objective):
    """InfoVAE (Zhao, Song & Ermon 2019, "InfoVAE: balancing learning and inference in variational
    autoencoders", eq. 6) with the MMD as its divergence between q(z) and p(z):

        loss = E_q[-log p(x|z)] + (1 - alpha) * KL(q(z|x) || p(z)) + (alpha + lambda - 1) * MMD^2(q(z), p(z))

    ``alpha`` weighs the mutual information between x and z (alpha = 0 keeps the ELBO's KL in full;
    alpha = 1 drops it, the WAE's objective), ``lambda`` the divergence of the aggregate posterior
    from the prior. MMD^2 is the unbiased estimate between the batch's posterior draws and as many
    prior draws, with the WAE's kernels (``imq`` or ``rbf`` summed over bandwidths ``scales`` times
    ``2 * latent_dim``). The paper's MNIST runs: alpha = 0, lambda = 1000 ("MMD-VAE"). The KL
    warm-up (``kl_scale``) scales KL and MMD together. ``kl`` and ``elbo`` report the true ELBO's
    terms, ``mmd`` the estimate. One latent level (any prior it can draw from); a batch statistic."""

    batch_statistics = True

    def __init__(self, alpha: confloat(le=1.0) = 0.0, lam: NonNegativeFloat = 1000.0,
                 kernel: Literal["imq", "rbf"] = "imq",
                 scales: tuple[PositiveFloat, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)):
        super().__init__()
        if alpha + lam - 1 < 0:
            raise ValueError(f"info-vae needs alpha + lam >= 1 (a divergence weight of alpha + lam - 1 >= 0); "
                             f"got alpha {alpha}, lam {lam}")
        self.alpha, self.lam, self.kernel, self.scales = alpha, lam, kernel, tuple(scales)

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, 1), y)
        if len(draw.levels) != 1:
            raise UsageError(f"info-vae compares one latent level's aggregate posterior with its prior; this "
                             f"'{model.config.family}' model has {len(draw.levels)} levels")
        log_px, kl, z = draw.log_px[0], draw.kl()[0], draw.levels[0].z[0]
        if context.gather_batch is not None:
            z = context.gather_batch(z)
        prior = model.sample_latents(z.shape[0]).to(z.dtype)
        mmd = mmd_squared(z, prior, self.kernel, [2.0 * z.shape[-1] * s for s in self.scales])
        recon = -log_px.mean()
        loss = recon + context.kl_scale * ((1.0 - self.alpha) * kl.mean() + (self.alpha + self.lam - 1.0) * mmd)
        return ModelOutput(loss=loss, terms={"recon": recon, "kl": kl.mean(), "mmd": mmd}, elbo=log_px - kl,
                           z=draw.levels[0].z[0], posterior=model.posterior_of(draw), likelihood=draw.likelihood)
