"""Hierarchical residual quantization (``hrq``): Hosking, Tang & Lapata 2022 ("Hierarchical sketch
induction for paraphrase generation"), the quantizer of their HRQ-VAE, with pythae's defaults.

A latent vector z is written as a sum of ``depth`` codes, one from each level's codebook of
``codebook_size`` entries, each level quantizing what the levels above left over:

    r_0 = z,   q_d = C_d[k_d],  k_d = argmin_k ||r_{d-1} - C_d[k]||^2,   r_d = r_{d-1} - q_d,   z_q = sum_d q_d

so the first level picks a coarse code and each next one refines it: a path down a tree of
``codebook_size ** depth`` leaves. Training draws each k_d from a straight-through Gumbel-softmax
over the logits -||r_{d-1} - C_d[k]||^2 (hard one-hot forward, relaxed gradient, which is how the
encoder and the codebooks learn: the gradient reaches z through the relaxation, not through an
identity), at a temperature that falls with the training steps, more slowly at deeper levels:

    tau_d(step) = max(exp(-step / (temperature_steps * 1.5^d)), 0.5)

Level d's codebook starts on a sphere of radius ``init_scale * init_decay ** d``, so that deeper
codes start as finer corrections. The loss terms, per image (sums over its latent vectors):

- ``code_kl``: ``kl_weight`` * KL(uniform || softmax of the logits) per level, keeping every code in play;
- ``norm``: ``norm_weight`` * the mean over adjacent levels of (max(||q_{d+1}|| / ||q_d|| * norm_scale, 1) - 1)^2,
  which keeps each level's code shorter than the one above it by ``norm_scale``.

Depth dropout: while training, each latent vector keeps levels 0..D-1 each with probability
1 - ``depth_drop``, and a dropped level drops all below it (the sum is truncated), so that the
coarse levels must reconstruct alone. Outside training every level is used and k_d is the argmin.

The index of a vector is the mixed-radix number sum_d k_d * K^d, so that the code priors and
statistics of the other quantizers see ``codebook_size ** depth`` codes; ``lookup`` decodes it to
the sum of its levels' codes. The step counter is a buffer: a resume continues the schedule.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveFloat, conint
from torch import nn

from ..kinds import PartParams, register_quantizer
from .base import Quantized, Quantizer, channels_last_flat, code_statistics

__all__ = ["HierarchicalResidualQuantizer", "HRQParams"]

MIN_TEMPERATURE, LEVEL_SLOWDOWN = 0.5, 1.5  # the paper's floor and per-level stretch of the schedule


class HRQParams(PartParams):
    codebook_size: conint(ge=2) = Field(8, description="codes per level, K")
    depth: conint(ge=1) = Field(3, description="levels D; the vector's index runs over K ** D codes")
    kl_weight: NonNegativeFloat = Field(0.1, description="weight of KL(uniform || code distribution) per level")
    init_scale: PositiveFloat = Field(1.0, description="norm of the first level's codes at initialization")
    init_decay: PositiveFloat = Field(0.5, description="each level's initial code norm is this times the one above")
    norm_weight: NonNegativeFloat = Field(0.5, description="weight of the norm loss")
    norm_scale: PositiveFloat = Field(1.5, description="a level's code should be this many times shorter than the "
                                                       "one above")
    temperature_steps: PositiveFloat = Field(10000.0, description="training steps for the first level's Gumbel "
                                                                  "temperature to fall by a factor e")
    depth_drop: float = Field(0.1, ge=0.0, lt=1.0, description="probability that training drops a level (and all "
                                                               "below it) of a latent vector")


@register_quantizer("hrq", params=HRQParams)
class HierarchicalResidualQuantizer(Quantizer):
    def __init__(self, dim: int, **params):
        super().__init__()
        config = HRQParams(**params)
        self.dim, self.levels, self.depth = dim, config.codebook_size, config.depth
        self.codebook_size = config.codebook_size ** config.depth
        self.config = config
        codebooks = torch.rand(config.depth, config.codebook_size, dim) * 2 - 1
        radius = config.init_scale * config.init_decay ** torch.arange(config.depth, dtype=torch.float32)
        self.codebooks = nn.Parameter(codebooks / codebooks.norm(dim=-1, keepdim=True) * radius[:, None, None])
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("_radix", config.codebook_size ** torch.arange(config.depth), persistent=False)

    def temperatures(self) -> list[float]:
        """The Gumbel temperature of each level at the current training step."""
        step = float(self.step)
        return [max(math.exp(-step / (self.config.temperature_steps * LEVEL_SLOWDOWN ** d)), MIN_TEMPERATURE)
                for d in range(self.depth)]

    def forward(self, z: torch.Tensor, update: bool | None = None) -> Quantized:
        update = self.training if update is None else update
        flat = channels_last_flat(z).float()
        codebooks = self.codebooks.float()
        temperatures = self.temperatures() if update else None
        residual, codes, digits, code_kl = flat, [], [], flat.new_zeros(flat.shape[0])
        for d in range(self.depth):
            logits = -(residual.pow(2).sum(1, keepdim=True) - 2 * residual @ codebooks[d].t()
                       + codebooks[d].pow(2).sum(1)[None])
            if update:
                one_hot = F.gumbel_softmax(logits, tau=temperatures[d], hard=True, dim=-1)
            else:
                one_hot = F.one_hot(logits.argmax(dim=-1), self.levels).type(logits.dtype)
            code = one_hot @ codebooks[d]
            # KL(uniform || q) = sum_k (1/K) (log(1/K) - log q_k)
            code_kl = code_kl + (-math.log(self.levels) - F.log_softmax(logits, dim=-1).mean(dim=-1))
            codes.append(code)
            digits.append(one_hot.argmax(dim=-1))
            residual = residual - code
        stacked = torch.stack(codes, dim=1)  # (N, D, dim)
        norm_loss = flat.new_zeros(flat.shape[0])
        if self.depth > 1:
            norms = stacked.norm(dim=-1)
            excess = torch.clamp_min(norms[:, 1:] / norms[:, :-1] * self.config.norm_scale, 1.0) - 1.0
            norm_loss = excess.pow(2).mean(dim=1)
        if update and self.config.depth_drop > 0:
            keep = torch.bernoulli(torch.full(stacked.shape[:2], 1 - self.config.depth_drop, device=flat.device))
            stacked = stacked * keep.cumprod(dim=1).unsqueeze(-1)
        if update:
            with torch.no_grad():
                self.step += 1
        grid = (z.shape[0], *z.shape[2:])
        indices = (torch.stack(digits, dim=1) * self._radix).sum(dim=1)
        z_q = stacked.sum(dim=1).reshape(*grid, self.dim).movedim(-1, 1).to(z.dtype)
        def per_image(values: torch.Tensor) -> torch.Tensor:
            return values.reshape(z.shape[0], -1).sum(1).mean()

        terms = {"code_kl": self.config.kl_weight * per_image(code_kl),
                 "norm": self.config.norm_weight * per_image(norm_loss)}
        return Quantized(z_q=z_q, indices=indices.reshape(grid), terms=terms,
                         stats=code_statistics(indices, self.codebook_size))

    def digits(self, indices: torch.Tensor) -> torch.Tensor:
        """Each index's code per level, k_0 .. k_{D-1}: (..., D)."""
        return torch.div(indices.unsqueeze(-1), self._radix, rounding_mode="floor") % self.levels

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        digits = self.digits(indices)  # (B, *grid, D)
        levels = torch.arange(self.depth, device=indices.device)
        return self.codebooks[levels, digits].sum(dim=-2).movedim(-1, 1)
