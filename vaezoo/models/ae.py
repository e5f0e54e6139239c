"""Autoencoders with a deterministic encoder (``family: ae``): a point posterior, a decoder, a prior
to sample from, and an objective for points (``ae``, ``wae-mmd``, ``swae``, ``rae``)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import Field, PositiveInt
from torch.distributions import Distribution

from ..ops.point import PointPosterior
from ..passes import LatentPass, LevelPass
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, ObjectiveSpec, PriorSpec
from .base import BaseVAE, PointLatents
from .families import register_family

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
class Autoencoder(PointLatents, BaseVAE):
    """A deterministic autoencoder: ``encode(x)`` is a :class:`~vaezoo.ops.point.PointPosterior`
    (its ``mean`` is the code), ``decode(z)`` is p(x|z), ``sample(n)`` decodes draws of the prior.
    What needs a density q(z|x) (``elbo``, ``iwae``, refinement) says, in one line, that there is none."""

    def __init__(self, config: AEConfig):
        super().__init__(config)
        self.latent_dim = config.latent_dim
        self.latent_levels = [("z", config.latent_dim)]
        self.encoder = self._build("encoder", self.input_shape, self.latent_dim)
        self.decoder = self._build("decoder", self.latent_dim, self.likelihood.decoder_shape())
        self.prior = self._build("prior", self.latent_dim)
        self.bind_prior()

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> PointPosterior:
        return PointPosterior(self.encoder(self.check_input(x, values=None)))

    def encode_top(self, x: torch.Tensor) -> PointPosterior:
        return self.encode(x)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        """p(x|z) for codes of shape (..., latent_dim); the batch shape follows z's."""
        return self.likelihood_at(z)

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior=None) -> LatentPass:
        """The code, once per row of ``eps`` (a point posterior ignores the noise), and log p(x|z)."""
        q = posterior if posterior is not None else self.encode(x, y)
        z = q.rsample(eps.shape[:1])
        likelihood, log_px = self._score(self.decode, z, x)
        return LatentPass([LevelPass("z", z, q, self.prior)], likelihood, log_px)

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.prior.sample(n)

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        return {"z": self.encode(x, y).mean}
