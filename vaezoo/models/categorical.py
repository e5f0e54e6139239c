"""The categorical VAE (``family: categorical``; Jang, Gu & Poole 2017, Maddison, Mnih & Teh 2017):
N discrete latent variables of K categories each, trained through the Gumbel-softmax relaxation.

The encoder gives N x K logits; q(z|x) is N independent categoricals and p(z) uniform, so the KL
is ``sum_n sum_k q log(q K)`` in closed form. Training decodes relaxed one-hot draws
``softmax((logits + g) / tau)``, with the temperature annealed by step (``temperature``: tau =
max(min, start * exp(-anneal_rate * step)), the schedule of Jang et al.); ``hard: true`` decodes
exact one-hot vectors with the relaxed gradient (straight-through). Outside training every draw
is an exact one-hot vector, so the ELBO and the importance-weighted bound are those of the
discrete model.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from pydantic import Field, PositiveFloat, PositiveInt, conint

from ..errors import UsageError
from ..ops.categorical import CategoricalPosterior, UniformCategorical
from ..passes import LatentPass, LevelPass, StepContext
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, Strict
from ..parts.objectives.base import MAIN_UPDATE
from .base import BaseVAE
from .families import register_family

__all__ = ["CategoricalVAEConfig", "CategoricalVAE", "TemperatureSchedule"]


class TemperatureSchedule(Strict):
    start: PositiveFloat = Field(1.0, description="the Gumbel-softmax temperature at step 0")
    min: PositiveFloat = Field(0.5, description="the temperature it anneals down to")
    anneal_rate: float = Field(3e-5, ge=0.0, description="tau = max(min, start * exp(-anneal_rate * step))")

    def at(self, step: int) -> float:
        return max(self.min, self.start * math.exp(-self.anneal_rate * step))


class CategoricalVAEConfig(ModelConfig):
    family: Literal["categorical"] = "categorical"
    latents: PositiveInt = Field(description="N: the number of categorical latent variables")
    categories: conint(ge=2) = Field(10, description="K: categories per variable")
    encoder: EncoderSpec
    decoder: DecoderSpec
    temperature: TemperatureSchedule = Field(default_factory=TemperatureSchedule)
    hard: bool = Field(False, description="straight-through: decode one-hot draws, take the relaxed gradient")

    def latent_size(self) -> int:
        return self.latents * self.categories

    def latent_summary(self) -> str:
        return f"{self.latents} x {self.categories} categories"


@register_family("categorical", config=CategoricalVAEConfig)
class CategoricalVAE(BaseVAE):
    """``encode(x)`` -> :class:`~vaezoo.ops.categorical.CategoricalPosterior`; ``decode(z)`` takes
    one-hot (or relaxed) z of shape (..., N * K); ``sample(n)`` decodes uniform one-hot draws."""

    takes_posterior = True

    def __init__(self, config: CategoricalVAEConfig):
        super().__init__(config)
        self.variables, self.categories = config.latents, config.categories
        size = self.variables * self.categories
        self.latent_levels = [("z", size)]
        self.encoder = self._build("encoder", self.input_shape, size)
        self.decoder = self._build("decoder", size, self.likelihood.decoder_shape())
        self.prior = UniformCategorical(self.variables, self.categories)
        # the step's temperature, filled in place by forward (not saved: it follows from the step)
        self.register_buffer("temperature", torch.tensor(config.temperature.start), persistent=False)

    def prior_label(self) -> str:
        return f"uniform over {self.categories} categories for each of {self.variables} variables"

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, context: Optional[StepContext] = None,
                update: str = MAIN_UPDATE):
        if self.training and context is not None:
            self.temperature.fill_(self.config.temperature.at(context.step))
        return super().forward(x, y, context, update)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> CategoricalPosterior:
        self._labels(0, y, x.device)
        x = self.check_input(x, values=None)
        return CategoricalPosterior(self.encoder(x).reshape(-1, self.variables, self.categories))

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None):
        return self.likelihood_at(z)

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior: Optional[CategoricalPosterior] = None) -> LatentPass:
        q = posterior if posterior is not None else self.encode(x, y)
        z = q.draw(eps, self.temperature if self.training else None, hard=self.config.hard)
        likelihood, log_px = self._score(lambda value: self.decode(value, y), z, x)
        return LatentPass([LevelPass("z", z, q, self.prior)], likelihood, log_px)

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        parameter = next(self.parameters())
        return self.prior.sample(n, parameter.device, parameter.dtype)

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        return {"z": self.encode(x, y).mean}

    def refine(self, x, steps: int = 100, lr: float = 0.05, y=None, **kwargs):
        raise UsageError("refinement optimizes Gaussian posteriors; the categorical family's latents are discrete")

    def extra_repr(self) -> str:
        return (f"family={self.family}, input_shape={list(self.input_shape)}, latents={self.variables} x "
                f"{self.categories} categories")
