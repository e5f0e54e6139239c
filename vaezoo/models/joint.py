"""The Joint VAE (``family: joint``; Dupont 2018, "Learning disentangled joint continuous and discrete
representations"): a Gaussian latent z and N categorical latents c side by side, one decoder reading
both.

q(z, c|x) = N(z; mu, sigma^2) prod_n Cat(c_n; pi_n) and p(z, c) = N(0, I) prod_n Uniform(K), so the
KL is the sum of the two closed forms. Training decodes relaxed one-hot c (Gumbel-softmax, the
temperature of ``temperature``); outside training c is an exact one-hot draw, so the ELBO and the
importance-weighted bound are those of the mixed model. Dupont's objective holds each part's KL at
a capacity of its own: ``objective: {name: annealed-capacity, levels: {z: ..., c: ...}}``.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import Field, PositiveInt, conint

from ..errors import UsageError
from ..ops.categorical import CategoricalPosterior, UniformCategorical
from ..ops.gaussian import DiagonalGaussian
from ..parts.objectives.base import MAIN_UPDATE
from ..passes import LatentPass, LevelPass, StepContext
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PriorSpec
from .base import BaseVAE
from .categorical import TemperatureSchedule
from .families import register_family

__all__ = ["JointVAEConfig", "JointVAE", "JointPosterior"]


class JointVAEConfig(ModelConfig):
    family: Literal["joint"] = "joint"
    latent_dim: PositiveInt = Field(description="the continuous latent z's dimensions")
    latents: PositiveInt = Field(1, description="N: the categorical latent variables")
    categories: conint(ge=2) = Field(10, description="K: categories per variable")
    encoder: EncoderSpec
    decoder: DecoderSpec
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="normal"))
    temperature: TemperatureSchedule = Field(
        default_factory=lambda: TemperatureSchedule(start=0.67, min=0.67, anneal_rate=0.0),
        description="the Gumbel-softmax temperature (Dupont: 0.67, fixed)")

    def latent_summary(self) -> str:
        return f"{self.latent_dim} + {self.latents} x {self.categories} categories"


class JointPosterior:
    """q(z, c|x): the Gaussian part ``z`` and the categorical part ``c``."""

    def __init__(self, z: DiagonalGaussian, c: CategoricalPosterior):
        self.z, self.c = z, c

    @property
    def mean(self) -> torch.Tensor:
        """(mu, category probabilities), concatenated: what the decoder reads at the mean."""
        return torch.cat([self.z.mean, self.c.mean], dim=-1)


@register_family("joint", config=JointVAEConfig)
class JointVAE(BaseVAE):
    """``encode(x)`` -> :class:`JointPosterior`; ``decode(v)`` takes v = (z, one-hot c), concatenated
    or by level; ``sample(n)`` decodes a draw of N(0, I) beside uniform one-hot c."""

    takes_posterior = True
    inference_modules = ("encoder",)

    def __init__(self, config: JointVAEConfig):
        super().__init__(config)
        self.latent_dim = config.latent_dim
        self.variables, self.categories = config.latents, config.categories
        discrete = self.variables * self.categories
        self.latent_levels = [("z", config.latent_dim), ("c", discrete)]
        self.encoder = self._build("encoder", self.input_shape, 2 * config.latent_dim + discrete)
        self.decoder = self._build("decoder", config.latent_dim + discrete, self.likelihood.decoder_shape())
        self.prior = self._build("prior", config.latent_dim)
        self.categorical_prior = UniformCategorical(self.variables, self.categories)
        self.bind_prior()
        # the step's temperature, filled in place by forward (not saved: it follows from the step)
        self.register_buffer("temperature", torch.tensor(config.temperature.start), persistent=False)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, context: Optional[StepContext] = None,
                update: str = MAIN_UPDATE):
        if self.training and context is not None:
            self.temperature.fill_(self.config.temperature.at(context.step))
        return super().forward(x, y, context, update)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> JointPosterior:
        out = self.encoder(self.check_input(x, values=None))
        d = self.latent_dim
        mu, logvar, logits = out[..., :d], out[..., d:2 * d], out[..., 2 * d:]
        return JointPosterior(DiagonalGaussian(mu, logvar),
                              CategoricalPosterior(logits.reshape(-1, self.variables, self.categories)))

    def decode(self, v, y: Optional[torch.Tensor] = None):
        """p(x | z, c) for v = (z, c) concatenated, (..., latent_dim + N * K), or ``{"z": ..., "c": ...}``
        (c one-hot, or the category probabilities at the posterior mean)."""
        if isinstance(v, dict):
            v = torch.cat([v["z"], v["c"]], dim=-1)
        return self.likelihood_at(v)

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior: Optional[JointPosterior] = None) -> LatentPass:
        q = posterior if posterior is not None else self.encode(x, y)
        noise = self.split_noise(eps)
        z = q.z.mu + torch.exp(0.5 * q.z.logvar) * noise["z"]
        c = q.c.draw(noise["c"], self.temperature if self.training else None)
        likelihood, log_px = self._score(self.decode, torch.cat([z, c], dim=-1), x)
        return LatentPass([LevelPass("z", z, q.z, self.prior), LevelPass("c", c, q.c, self.categorical_prior)],
                          likelihood, log_px)

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        z = self.prior.sample(n)
        return {"z": z, "c": self.categorical_prior.sample(n, z.device, z.dtype)}

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        q = self.encode(x, y)
        return {"z": q.z.mean, "c": q.c.mean}

    def posterior_of(self, draw: LatentPass) -> JointPosterior:
        return JointPosterior(draw.levels[0].q, draw.levels[1].q)

    def squeeze_draw(self, v):
        """The first draw of (z, c), concatenated as the decoder reads it."""
        return torch.cat([v["z"][0], v["c"][0]], dim=-1)

    def refine(self, x, steps: int = 100, lr: float = 0.05, y=None, **kwargs):
        raise UsageError("refinement optimizes Gaussian posteriors; the joint family's c is discrete")

    def extra_repr(self) -> str:
        return (f"family={self.family}, input_shape={list(self.input_shape)}, latents={self.latent_dim} + "
                f"{self.variables} x {self.categories} categories")
