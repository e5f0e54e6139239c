"""The VQ-VAE's two stages. ``vq`` (van den Oord et al. 2017, eq. 3), the first: reconstruction
plus the quantizer's own terms (the commitment loss; an EMA codebook needs no codebook loss).
``code-prior``, the second: the code prior alone, trained by maximum likelihood on the codes of
the frozen first stage (``vaezoo fit-prior``, :func:`vaezoo.training.train_code_prior`).

The reported ``kl`` is that of the VQ-VAE read as a VAE: the posterior puts all its mass on
the nearest codes, so KL(q || p) = -log p(codes), which under the uniform prior of the first
stage is the constant ``h * w * log K`` and under a fitted code prior is that prior's
negative log-likelihood of the codes. ``elbo`` is then ``log p(x | z_q) + log p(codes)``: a
bound on log p(x), the one bits/dim are reported from. The KL is not in the loss (it has no
gradient: the codes are integers). Outside training (the loop's validation and test passes)
the terms add the reconstruction's ``mse`` per pixel and ``psnr`` in dB.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
from torch import nn

from ...ops.images import psnr
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["VQObjective", "CodePriorObjective"]


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


@register_objective("code-prior")
class CodePriorObjective(Objective):
    """The second stage of a VQ-VAE: its code prior fitted to the codes of the frozen first stage.

    The loss is the code prior's NLL of the codes, nats per grid; the first stage (encoder,
    codebook, decoder) takes no gradient, keeps its codebook and runs as at inference, so its
    codes are those the finished model gives. The reported terms are those of the VQ-VAE read as a
    VAE, so the loop's -ELBO is the bound through the prior being trained and selecting the
    epoch on the validation -ELBO selects it on the codes' NLL (the reconstruction term is fixed).
    """

    latents = "codes"

    def bind(self, model) -> None:
        if getattr(model, "code_prior", None) is None:
            raise ValueError("the code-prior objective trains the model's code prior; name one in model.code_prior "
                             "(pixelcnn, transformer, ...)")
        for name, parameter in model.named_parameters():  # an optimizer over what is left: the prior's
            if not name.startswith("code_prior."):
                parameter.requires_grad_(False)

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        # the codes the finished model gives: no gradient, no codebook update, layers in eval mode,
        # its own precision (a bf16 encoder under the loop's autocast would move some codes to other entries)
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False), \
                _at_inference(m for name, m in model.named_children() if name != "code_prior"):
            quantized, likelihood, log_px = model.code_pass(x, update=False)
        log_prior = model.code_prior.log_prob(quantized.indices)
        nll = -log_prior.mean()
        return ModelOutput(loss=nll, terms={"recon": -log_px.mean(), "kl": nll}, elbo=log_px + log_prior,
                           z=quantized.indices, posterior=quantized, likelihood=likelihood)


@contextlib.contextmanager
def _at_inference(modules: Iterator[nn.Module]) -> Iterator[None]:
    """Run frozen modules in eval mode (a normalization layer's statistics stay as trained)."""
    modules = list(modules)
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)
