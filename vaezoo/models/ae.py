"""Autoencoders with a deterministic encoder (``family: ae``): a point posterior, a decoder, a prior
to sample from, and an objective for points (``ae``, ``wae-mmd``, ``swae``, ``rae``)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import Field, PositiveInt

from ..ops.point import PointPosterior
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, ObjectiveSpec, PriorSpec
from .base import PointLatents
from .families import register_family
from .one_level import OneLevelVAE

__all__ = ["AEConfig", "Autoencoder"]


class AEConfig(ModelConfig):
    """``encoder`` maps an image to its code z (``latent_dim`` numbers); ``decoder`` maps z to the
    likelihood's maps; ``prior``: the p(z) that ``sample`` draws from and a WAE matches q(z) to."""

    family: Literal["ae"] = "ae"
    latent_dim: PositiveInt
    encoder: EncoderSpec
    decoder: DecoderSpec
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="normal"))
    objective: ObjectiveSpec = Field(default_factory=lambda: ObjectiveSpec(name="ae"))


@register_family("ae", config=AEConfig)
class Autoencoder(PointLatents, OneLevelVAE):
    """A deterministic autoencoder: ``encode(x)`` is a :class:`~vaezoo.ops.point.PointPosterior`
    (its ``mean`` is the code), ``decode(z)`` is p(x|z), ``sample(n)`` decodes draws of the prior.
    What needs a density q(z|x) (``elbo``, ``iwae``, refinement) says, in one line, that there is none;
    ``latent_pass`` gives the code once per row of ``eps`` (a point posterior ignores the noise)."""

    def __init__(self, config: AEConfig):
        super().__init__(config, encoder_outputs=config.latent_dim)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> PointPosterior:
        return PointPosterior(self.encoder(self.check_input(x, values=None)))
