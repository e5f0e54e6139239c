"""Objectives of autoencoders with a deterministic encoder (``family: ae``): the reconstruction alone
(``ae``), the Wasserstein autoencoder with an MMD penalty (``wae-mmd``), the sliced-Wasserstein
autoencoder (``swae``) and the regularized autoencoders (``rae``: RAE-L2 and RAE-GP)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from ...ops.kernels import mmd_squared
from ...ops.transport import random_directions, sliced_wasserstein
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["AEObjective", "WAEMMD", "SlicedWassersteinAE", "RegularizedAE", "decoder_gradient_penalty"]


class _PointObjective(Objective):
    latents = "points"

    def codes(self, model, x: torch.Tensor, y: Optional[torch.Tensor]):
        """The pass of the codes (one row: a point posterior draws nothing) and -log p(x|z), batch mean."""
        draw = model.latent_pass(x, x.new_zeros(1, x.shape[0], *model.noise_shape), y)
        return draw, -draw.log_px[0].mean()


@register_objective("ae")
class AEObjective(_PointObjective):
    """The plain autoencoder: ``loss = E[-log p(x|z)]`` at z = e(x), nothing on the codes (sample it
    through a fitted prior: ``vaezoo fit-prior``)."""

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw, recon = self.codes(model, x, y)
        return ModelOutput(loss=recon, terms={"recon": recon}, z=draw.levels[0].z[0], posterior=draw.levels[0].q,
                           likelihood=draw.likelihood)


@register_objective("wae-mmd")
class WAEMMD(_PointObjective):
    """The Wasserstein autoencoder with the MMD penalty (Tolstikhin, Bousquet, Gelly & Schölkopf
    2018, "Wasserstein auto-encoders", Algorithm 2):

        loss = E[-log p(x|z)] + lambda * MMD^2(q(z), p(z)),   z = e(x)

    MMD^2 estimated without bias between the batch's codes and as many draws of the prior, with an
    inverse multiquadratic (``imq``, the paper's) or Gaussian (``rbf``) kernel summed over bandwidths
    ``scales`` times ``2 * latent_dim`` (the paper's C = 2 d sigma^2 for a N(0, I) prior). The KL
    warm-up weight (``kl_scale``) scales the penalty. ``lambda`` 10 is the paper's for MNIST."""

    def __init__(self, lam: NonNegativeFloat = 10.0, kernel: Literal["imq", "rbf"] = "imq",
                 scales: tuple[PositiveFloat, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)):
        super().__init__()
        self.lam, self.kernel, self.scales = lam, kernel, tuple(scales)

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw, recon = self.codes(model, x, y)
        z = draw.levels[0].z[0]
        prior = model.sample_latents(z.shape[0]).to(z.dtype)
        bandwidths = [2.0 * z.shape[-1] * scale for scale in self.scales]
        mmd = mmd_squared(z, prior, self.kernel, bandwidths)
        return ModelOutput(loss=recon + context.kl_scale * self.lam * mmd, terms={"recon": recon, "mmd": mmd}, z=z,
                           posterior=draw.levels[0].q, likelihood=draw.likelihood)


@register_objective("swae")
class SlicedWassersteinAE(_PointObjective):
    """The sliced-Wasserstein autoencoder (Kolouri, Pope, Martin & Rohde 2019, "Sliced-Wasserstein
    autoencoder: an embarrassingly simple generative model"):

        loss = E[-log p(x|z)] + lambda * SW_p^p(q(z), p(z)),   z = e(x)

    the sliced Wasserstein distance between the batch's codes and as many draws of the prior,
    averaged over ``projections`` random directions drawn afresh each step
    (:func:`~vaezoo.ops.transport.sliced_wasserstein`). PyTorch-VAE's SWAE: 200 projections,
    p = 2. The KL warm-up weight (``kl_scale``) scales the penalty."""

    def __init__(self, lam: NonNegativeFloat = 100.0, projections: PositiveInt = 200, p: PositiveFloat = 2.0):
        super().__init__()
        self.lam, self.projections, self.p = lam, projections, p

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw, recon = self.codes(model, x, y)
        z = draw.levels[0].z[0]
        prior = model.sample_latents(z.shape[0]).to(z.dtype)
        sw = sliced_wasserstein(z, prior, random_directions(z.shape[-1], self.projections, z), self.p)
        return ModelOutput(loss=recon + context.kl_scale * self.lam * sw, terms={"recon": recon, "sw": sw}, z=z,
                           posterior=draw.levels[0].q, likelihood=draw.likelihood)


def decoder_gradient_penalty(model, z: torch.Tensor, mean: Optional[torch.Tensor] = None) -> torch.Tensor:
    """RAE-GP's penalty on the decoder for codes ``z`` (..., latent_dim), mean over the codes: ``|| d/dz sum_i D(z)_i^2 ||^2`` per image, the
    squared norm of the gradient of the decoded image's squared pixels with respect to its code (the
    RAE authors' implementation differentiates the squared output; the images of a batch are
    independent, so one gradient of the batch's sum holds every image's).

    ``mean`` is D(z) from the pass that made ``z`` where that pass recorded a graph (training);
    without one (a validation pass under ``no_grad``) the code is decoded again with a graph, so
    training and validation report the same quantity."""
    if mean is None or not (torch.is_grad_enabled() and z.requires_grad):
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            mean = model.decode(z).mean
            (grad,) = torch.autograd.grad(mean.pow(2).sum(), z)
    else:
        (grad,) = torch.autograd.grad(mean.pow(2).sum(), z, create_graph=True)
    return grad.pow(2).sum(-1).mean()


@register_objective("rae")
class RegularizedAE(_PointObjective):
    """The regularized autoencoders of Ghosh, Sajjadi, Vergari, Black & Schölkopf (2020, "From
    variational to deterministic autoencoders"): a deterministic encoder whose codes are kept small
    and a decoder kept smooth by an explicit regularizer instead of the VAE's noise,

        loss = E[-log p(x|z)] + beta * E[||z||^2 / 2] + lambda * L_REG,   z = e(x)

    ``regularizer: l2`` (RAE-L2) is Tikhonov's ``L_REG = ||theta_decoder||^2``, the decoder's weights
    alone (what weight decay on a decoder-only optimizer does, here as a loss term so that one
    optimizer trains both networks); ``regularizer: gp`` (RAE-GP) is the gradient penalty of
    :func:`decoder_gradient_penalty`. Sample through a fitted prior (``vaezoo sample --prior gmm``):
    nothing pulls the codes to N(0, I). The paper's MNIST weights are the defaults: beta 1e-4 and
    lambda 1e-7 (L2) or 5e-8 (GP). The KL warm-up weight (``kl_scale``) scales the code term."""

    def __init__(self, regularizer: Literal["l2", "gp"] = "l2", beta: NonNegativeFloat = 1e-4,
                 lam: Optional[NonNegativeFloat] = None):
        super().__init__()
        self.regularizer, self.beta = regularizer, beta
        self.lam = lam if lam is not None else (1e-7 if regularizer == "l2" else 5e-8)

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw, recon = self.codes(model, x, y)
        z = draw.levels[0].z[0]
        code = 0.5 * z.pow(2).sum(-1).mean()
        if self.regularizer == "l2":
            reg = sum(p.pow(2).sum() for p in model.decoder.parameters())
        else:
            # the pass's own tensors: z[0] is a view that the decoder never saw
            reg = decoder_gradient_penalty(model, draw.levels[0].z, draw.likelihood.mean)
        loss = recon + context.kl_scale * self.beta * code + self.lam * reg
        return ModelOutput(loss=loss, terms={"recon": recon, "code": code, self.regularizer: reg}, z=z,
                           posterior=draw.levels[0].q, likelihood=draw.likelihood)
