"""The MS-SSIM VAE (``msssim-vae``): the KL of the ELBO with a structural-similarity reconstruction
cost in place of -log p(x|z) (Snell, Ridgeway, Liao, Roads, Mozer & Zemel 2017, "Learning to
generate images with perceptual similarity metrics"; pythae's MSSSIM_VAE, PyTorch-VAE's MSSIMVAE)."""

from __future__ import annotations

from typing import Optional

import torch
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from ...ops.ssim import ms_ssim
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["MSSSIMVAE"]


@register_objective("msssim-vae")
class MSSSIMVAE(Objective):
    """``loss = scale * (1 - MS-SSIM(mean of p(x|z), x)) + beta * KL(q(z|x) || p(z))``, one draw per
    image, batch means (:func:`vaezoo.ops.ssim.ms_ssim`, per image, ``window_size`` of its Gaussian
    window). ``scale`` puts the similarity, a number in [0, 1], on the KL's scale of nats: pythae
    weighs the two 1 : beta and PyTorch-VAE 1 : 0.00025 per image; the default, the number of pixels,
    is the reconstruction as a sum over pixels, like a likelihood's.

    The model is not trained on its likelihood: ``recon`` and ``elbo`` report -log p(x|z) and the
    ELBO under the configured likelihood all the same, so the model is selected and scored by the
    bounds of its decoder's distribution; ``msssim`` is the batch's mean MS-SSIM. The KL warm-up
    (``kl_scale``) scales the KL."""

    def __init__(self, scale: Optional[PositiveFloat] = None, beta: NonNegativeFloat = 1.0,
                 window_size: PositiveInt = 11):
        super().__init__()
        self.scale, self.beta, self.window_size = scale, beta, window_size

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, 1), y)
        log_px, kl = draw.log_px[0], draw.kl()[0]
        mean = draw.likelihood.mean.reshape(x.shape)
        similarity = ms_ssim(mean.float(), x.float(), self.window_size)
        scale = self.scale if self.scale is not None else float(x[0].numel())
        loss = scale * (1 - similarity).mean() + (self.beta * context.kl_scale) * kl.mean()
        return ModelOutput(loss=loss, terms={"recon": -log_px.mean(), "kl": kl.mean(), "msssim": similarity.mean()},
                           elbo=log_px - kl, z=model.squeeze_draw(draw.z), posterior=model.posterior_of(draw),
                           likelihood=draw.likelihood)
