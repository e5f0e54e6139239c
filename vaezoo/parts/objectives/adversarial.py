"""The adversarial autoencoder (``aae``): the reconstruction plus a discriminator's verdict on the
codes in place of the KL, the discriminator trained by its own optimizer in the same step."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveInt
from torch import nn

from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["AdversarialAE", "CodeCritic"]

DISCRIMINATOR = "discriminator"


class CodeCritic(nn.Module):
    """An MLP from a code to one logit: "this code was drawn from the prior" (ReLU between layers)."""

    def __init__(self, latent_dim: int, hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


@register_objective("aae")
class AdversarialAE(Objective):
    """The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016, "Adversarial
    autoencoders"): with ``deterministic: true`` a point encoder (``family: ae``, the paper's first
    variant), else a Gaussian q(z|x) (``family: vae``, pythae's ``Adversarial_AE``; with no KL trained
    its variance shrinks, and the reported ELBO with it). The model's update minimizes

        loss = E_q[-log p(x|z)] + scale * E_q[-log D(z)],   z ~ q(z|x), one draw per image

    the encoder pushed to make codes the discriminator D takes for prior draws; no KL is trained.
    The discriminator's update, after the model's in every training step, minimizes its
    cross-entropy between as many prior draws (labelled 1) and codes of the batch (labelled 0, drawn
    without gradient to the encoder). ``terms``: ``recon``, ``adversarial`` and, for a Gaussian
    q(z|x), ``kl`` (the true KL, reported so that ``elbo`` is the ELBO the model is selected and
    scored on, not trained on);
    the discriminator's update reports its ``loss`` and ``accuracy``. The KL warm-up (``kl_scale``)
    scales the adversarial term.

    The paper's discriminator: two layers of 1000 ReLU units. ``scale`` 0.5 is pythae's
    ``adversarial_loss_scale``. The discriminator is a training part: in training checkpoints,
    out of the published weights.
    """

    default_optimizers = {DISCRIMINATOR: {"name": "adam", "lr": 1e-4}}

    def __init__(self, scale: NonNegativeFloat = 0.5, hidden: tuple[PositiveInt, ...] = (1000, 1000),
                 deterministic: bool = False):
        super().__init__()
        self.scale = scale
        self.hidden = list(hidden)
        # a deterministic encoder (family ae, the paper's first variant) or a Gaussian one (family vae)
        self.latents = "points" if deterministic else "gaussian"
        self.discriminator: Optional[CodeCritic] = None  # built by bind(), once the latent size is known

    def bind(self, model) -> None:
        if len(model.latent_levels) != 1:
            raise ValueError(f"aae needs one latent level; the '{model.family}' family has "
                             f"{len(model.latent_levels)}")
        if self.discriminator is None:
            self.discriminator = CodeCritic(model.latent_levels[0][1], self.hidden)

    def training_parts(self) -> dict[str, nn.Module]:
        return {DISCRIMINATOR: self._bound()}

    def _bound(self) -> CodeCritic:
        if self.discriminator is None:
            raise RuntimeError("the aae objective is not bound to a model: build the model with vaezoo.create")
        return self.discriminator

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, 1), y)
        log_px, z = draw.log_px[0], draw.levels[0].z[0]
        recon = -log_px.mean()
        # -log D(z) = softplus(-logit): "taken for a prior draw"
        adversarial = F.softplus(-self._bound()(z)).mean()
        loss = recon + context.kl_scale * self.scale * adversarial
        terms, elbo = {"recon": recon, "adversarial": adversarial}, None
        if self.latents == "gaussian":  # a density q(z|x): the ELBO is reported, not trained on
            kl = draw.kl()[0]
            terms["kl"], elbo = kl.mean(), log_px - kl
        return ModelOutput(loss=loss, terms=terms, elbo=elbo, z=z, posterior=draw.levels[0].q,
                           likelihood=draw.likelihood)

    def update_loss(self, name: str, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                    context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        if name != DISCRIMINATOR:
            return super().update_loss(name, model, x, y, context)
        with torch.no_grad():  # the discriminator's update leaves the encoder alone
            codes = model.encode(x, y).rsample()
            prior = model.sample_latents(codes.shape[0]).to(codes.dtype)
        logits = self._bound()(torch.cat([prior, codes]))
        labels = torch.cat([torch.ones(prior.shape[0]), torch.zeros(codes.shape[0])]).to(logits)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        accuracy = ((logits > 0).to(labels) == labels).float().mean()
        return ModelOutput(loss=loss, terms={"accuracy": accuracy})
