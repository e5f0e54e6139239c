"""The Gamma VAE (``family: gamma``; PyTorch-VAE's ``GammaVAE``, after Naesseth, Ruiz, Linderman &
Blei 2017): codes on the positive orthant, a product of Gammas as the posterior and the prior."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch.distributions import Distribution, Gamma, Independent

from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PriorSpec
from .families import register_family
from .one_level import OneLevelVAE

__all__ = ["GammaVAEConfig", "GammaVAE"]


class GammaVAEConfig(ModelConfig):
    """``encoder`` maps an image to 2 x ``latent_dim`` numbers, the posterior's shapes and rates
    (``min_concentration`` + softplus, softplus); ``decoder`` reads a point of the positive orthant;
    ``prior`` is a product of Gammas (PyTorch-VAE's shape 2, rate 1)."""

    family: Literal["gamma"] = "gamma"
    latent_dim: PositiveInt
    encoder: EncoderSpec
    decoder: DecoderSpec
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="gamma"))
    min_concentration: PositiveFloat = Field(
        1.0, description="the posterior's shapes are this + softplus(encoder output): at a shape under 1 the density "
                         "is infinite at 0, and float32 draws underflow to 0 often enough to make log q infinite")


@register_family("gamma", config=GammaVAEConfig)
class GammaVAE(OneLevelVAE):
    """``encode(x)`` is ``Independent(Gamma(shape, rate), 1)``; ``decode(z)`` is p(x|z) of a positive
    code; ``sample(n)`` decodes draws of the Gamma prior. The draws are torch's Gamma ``rsample``,
    whose gradient in the shape is the exact implicit reparameterization one (Figurnov, Mohamed &
    Mnih 2018) rather than the shape-augmented rejection sampler of Naesseth et al. (which draws
    from Gamma(shape + B) and needs B uniform boost factors to come back to Gamma(shape)); like the
    vMF's rejection sampler they come from torch's global stream, ``eps`` setting only their number.
    The KL to the Gamma prior is closed-form; the bounds (ELBO, IWAE) use the Gamma log-densities.
    ``posterior_means`` are shape / rate per dimension."""

    takes_posterior = True
    inference_modules = ("encoder",)
    required_prior = "gamma"
    why_that_prior = "the gamma family's codes are positive"

    def __init__(self, config: GammaVAEConfig):
        super().__init__(config, encoder_outputs=2 * config.latent_dim)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        shape, rate = self.encoder(self.check_input(x, values=None)).chunk(2, dim=-1)
        return Independent(Gamma(self.config.min_concentration + F.softplus(shape), F.softplus(rate) + 1e-5), 1)
