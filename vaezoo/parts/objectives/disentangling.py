"""Two more disentangling objectives on the one-level Gaussian VAE: the β-VAE with an annealed
capacity (``annealed-capacity``) and DIP-VAE I and II (``dip-vae``)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

from ...errors import UsageError
from ...ops.gaussian import DiagonalGaussian
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["AnnealedCapacity", "LevelCapacity", "DIPVAE", "capacity_at", "dip_covariance", "dip_penalty"]


def capacity_at(step: int, capacity_max: float, capacity_steps: int) -> float:
    """The capacity C of step ``step``: linear from 0 to ``capacity_max`` over ``capacity_steps``."""
    if capacity_steps == 0:
        return capacity_max
    return capacity_max * min(step, capacity_steps) / capacity_steps


class LevelCapacity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capacity_max: NonNegativeFloat = Field(description="the capacity C this level's KL is held at, in nats")
    capacity_steps: NonNegativeInt = Field(description="training steps over which C rises from 0")


@register_objective("annealed-capacity")
class AnnealedCapacity(Objective):
    """β-VAE with a controlled capacity (Burgess et al. 2018, "Understanding disentangling in
    β-VAE"): ``loss = E_q[-log p(x|z)] + gamma * |KL - C|``, the KL averaged over the batch and
    C raised linearly from 0 nats to ``capacity_max`` over the first ``capacity_steps`` training
    steps, then held. ``per_image: true`` takes the penalty per image instead, the batch mean of
    ``gamma * |KL_i - C|`` (pythae's DisentangledBetaVAE): every image's KL is held at C, where the
    batch form holds only their mean and lets images trade information (PyTorch-VAE's BetaVAE and
    the paper's reference code take the batch form). The two agree while every image's KL is on the
    same side of C. The paper's dSprites recipe is gamma 1000, C to 25 nats over 100,000
    steps; a shorter run scales the steps. ``kl`` and ``elbo`` report the true ELBO's terms and
    ``capacity`` the step's C. Any prior and latent levels: the KL is the sum over levels.

    ``levels`` gives some latent levels a capacity of their own instead, ``gamma * sum_level
    |KL_level - C_level|`` (the Joint VAE of Dupont 2018: one for the continuous latents, one for the
    discrete ones); a level named there must be one of the model's."""

    def __init__(self, gamma: NonNegativeFloat = 1000.0, capacity_max: NonNegativeFloat = 25.0,
                 capacity_steps: NonNegativeInt = 100_000, levels: Optional[dict[str, LevelCapacity]] = None,
                 per_image: bool = False):
        super().__init__()
        self.gamma, self.capacity_max, self.capacity_steps = gamma, capacity_max, capacity_steps
        self.per_image = per_image
        self.levels = {name: LevelCapacity.model_validate(spec) for name, spec in (levels or {}).items()}

    def bind(self, model) -> None:
        names = [name for name, _ in model.latent_levels]
        unknown = sorted(set(self.levels) - set(names))
        if unknown:
            raise ValueError(f"levels names {', '.join(unknown)}, not latent levels of the '{model.family}' family "
                             f"(it has {', '.join(names)})")

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, 1), y)
        log_px, kl = draw.log_px[0], draw.kl()[0]
        recon = -log_px.mean()
        terms = {"recon": recon, "kl": kl.mean()}
        if self.levels:
            penalty = kl.new_zeros(())
            for level in draw.levels:
                spec = self.levels.get(level.name)
                if spec is None:
                    raise ValueError(f"annealed-capacity: level {level.name!r} has no capacity in levels")
                capacity = capacity_at(context.step, spec.capacity_max, spec.capacity_steps)
                level_kl = level.kl()[0]
                penalty = penalty + self._penalty(level_kl, capacity)
                terms[f"kl/{level.name}"] = level_kl.mean()
                terms[f"capacity/{level.name}"] = torch.tensor(capacity)
        else:
            capacity = capacity_at(context.step, self.capacity_max, self.capacity_steps)
            penalty = self._penalty(kl, capacity)
            terms["capacity"] = torch.tensor(capacity)
        loss = recon + (self.gamma * context.kl_scale) * penalty
        return ModelOutput(
            loss=loss, terms=terms, elbo=log_px - kl, z=model.squeeze_draw(draw.z), posterior=model.posterior_of(draw),
            likelihood=draw.likelihood,
        )

    def _penalty(self, kl: torch.Tensor, capacity: float) -> torch.Tensor:
        """|KL - C| of the batch's mean KL, or the batch mean of each image's (``per_image``); kl is (B,)."""
        return (kl - capacity).abs().mean() if self.per_image else (kl.mean() - capacity).abs()


def dip_covariance(mu: torch.Tensor, logvar: torch.Tensor, kind: str) -> torch.Tensor:
    """The (D, D) covariance DIP-VAE pushes to the identity, from a batch's posteriors (B, D).

    ``i``: Cov_p(x)[mu(x)], the covariance of the posterior means over the batch; ``ii``: the
    covariance of the aggregate posterior's samples, Cov_q(z)[z] = E_p(x)[Sigma(x)] + Cov_p(x)[mu(x)]
    (Kumar et al. 2018, eqs. 6 and 8). The covariance divides by B (the batch's moments)."""
    centred = mu - mu.mean(0, keepdim=True)
    covariance = centred.T @ centred / mu.shape[0]
    if kind == "ii":
        covariance = covariance + torch.diag(torch.exp(logvar).mean(0))
    return covariance


def dip_penalty(covariance: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """``lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2``."""
    diagonal = torch.diagonal(covariance)
    off_diagonal = covariance - torch.diag(diagonal)
    return lambda_od * off_diagonal.pow(2).sum() + lambda_d * (diagonal - 1.0).pow(2).sum()


@register_objective("dip-vae")
class DIPVAE(Objective):
    """DIP-VAE (Kumar, Sattigeri & Balakrishnan 2018, "Variational inference of disentangled
    latent concepts from unlabeled observations"): the negative ELBO plus a penalty that moves a
    covariance of the aggregate posterior towards the identity, ``lambda_od`` on its off-diagonal
    entries and ``lambda_d`` on its diagonal's distance from 1 (:func:`dip_penalty`). ``kind: i``
    penalizes the covariance of the posterior means, ``kind: ii`` that of the samples
    (:func:`dip_covariance`). The paper's dSprites settings (and disentanglement_lib's): DIP-VAE-I
    with lambda_d = 10 lambda_od, DIP-VAE-II with lambda_d = lambda_od. The covariance is a batch
    statistic (the global batch under DDP). Needs one diagonal Gaussian latent level."""

    batch_statistics = True

    def __init__(self, kind: Literal["i", "ii"] = "i", lambda_od: NonNegativeFloat = 10.0,
                 lambda_d: NonNegativeFloat = 100.0):
        super().__init__()
        self.kind, self.lambda_od, self.lambda_d = kind, lambda_od, lambda_d

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, 1), y)
        if len(draw.levels) != 1 or not isinstance(draw.levels[0].q, DiagonalGaussian):
            raise UsageError(f"dip-vae needs one diagonal Gaussian latent level (it penalizes the covariance of the "
                             f"posteriors); this '{model.config.family}' model has {len(draw.levels)} level(s) of "
                             f"{type(draw.levels[0].q).__name__}")
        q = draw.levels[0].q
        mu, logvar = q.mu, q.logvar
        if context.gather_batch is not None:
            mu, logvar = context.gather_batch(mu), context.gather_batch(logvar)
        penalty = dip_penalty(dip_covariance(mu, logvar, self.kind), self.lambda_od, self.lambda_d)
        log_px, kl = draw.log_px[0], draw.kl()[0]
        recon = -log_px.mean()
        return ModelOutput(
            loss=recon + context.kl_scale * kl.mean() + penalty, terms={"recon": recon, "kl": kl.mean(), "dip": penalty},
            elbo=log_px - kl, z=model.squeeze_draw(draw.z), posterior=q, likelihood=draw.likelihood,
        )
