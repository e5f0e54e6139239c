"""The VQ-VAE objective (``vq``; van den Oord et al. 2017, eq. 3): reconstruction plus the
quantizer's own terms (the commitment loss; an EMA codebook needs no codebook loss).

The reported ``kl`` is that of the VQ-VAE read as a VAE: the posterior puts all its mass on
the nearest codes, so KL(q || p) = -log p(codes), which under the uniform prior of the first
stage is the constant ``h * w * log K`` and under a fitted code prior is that prior's
negative log-likelihood of the codes. ``elbo`` is then ``log p(x | z_q) + log p(codes)``: a
bound on log p(x), the one bits/dim are reported from. The KL is not in the loss (it has no
gradient: the codes are integers). Outside training (the loop's validation and test passes)
the terms add the reconstruction's ``mse`` per pixel and ``psnr`` in dB.
"""

from __future__ import annotations

from typing import Optional

import torch

from ...ops.images import psnr
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["VQObjective"]


@register_objective("vq")
class VQObjective(Objective):
    latents = "codes"

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        quantized, likelihood, log_px = model.code_pass(x)
        recon = -log_px.mean()
        loss = recon + sum(quantized.terms.values()) if quantized.terms else recon
        with torch.no_grad():
            log_prior = model.log_prior(quantized.indices)
        terms = {"recon": recon, "kl": -log_prior.mean(), **quantized.terms, **quantized.stats}
        if not model.training:
            with torch.no_grad():
                mse = (likelihood.mean - x).pow(2).flatten(1).mean(1)
            terms.update(mse=mse.mean(), psnr=psnr(mse).mean())
        return ModelOutput(
            loss=loss, terms=terms,
            elbo=log_px + log_prior, z=quantized.indices, posterior=quantized, likelihood=likelihood,
        )
