"""The Gamma VAE (``family: gamma``; PyTorch-VAE's ``GammaVAE``, after Naesseth, Ruiz, Linderman &
Blei 2017): codes on the positive orthant, a product of Gammas as the posterior and the prior."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch.distributions import Distribution, Gamma, Independent

from ..passes import LatentPass, LevelPass
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PriorSpec
from .base import BaseVAE, PartBuildError
from .families import register_family

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
class GammaVAE(BaseVAE):
    """``encode(x)`` is ``Independent(Gamma(shape, rate), 1)``; ``decode(z)`` is p(x|z) of a positive
    code; ``sample(n)`` decodes draws of the Gamma prior. The draws are torch's Gamma ``rsample``,
    whose gradient in the shape is the exact implicit reparameterization one (Figurnov, Mohamed &
    Mnih 2018) rather than the shape-augmented rejection sampler of Naesseth et al. (which draws
    from Gamma(shape + B) and needs B uniform boost factors to come back to Gamma(shape)); like the
    vMF's rejection sampler they come from torch's global stream, ``eps`` setting only their number.
    The KL to the Gamma prior is closed-form; the bounds (ELBO, IWAE) use the Gamma log-densities."""

    takes_posterior = True
    inference_modules = ("encoder",)

    def __init__(self, config: GammaVAEConfig):
        super().__init__(config)
        self.latent_dim = config.latent_dim
        self.latent_levels = [("z", config.latent_dim)]
        self.encoder = self._build("encoder", self.input_shape, 2 * config.latent_dim)
        self.decoder = self._build("decoder", config.latent_dim, self.likelihood.decoder_shape())
        self.prior = self._build("prior", config.latent_dim)
        if config.prior.name != "gamma":
            raise PartBuildError("prior", f"the gamma family's codes are positive: its prior is 'gamma', "
                                          f"not '{config.prior.name}'")
        self.bind_prior()

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        shape, rate = self.encoder(self.check_input(x, values=None)).chunk(2, dim=-1)
        return Independent(Gamma(self.config.min_concentration + F.softplus(shape), F.softplus(rate) + 1e-5), 1)

    def encode_top(self, x: torch.Tensor) -> Distribution:
        return self.encode(x)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        return self.likelihood_at(z)

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior: Optional[Distribution] = None) -> LatentPass:
        q = posterior if posterior is not None else self.encode(x, y)
        z = q.rsample(eps.shape[:1])
        likelihood, log_px = self._score(self.decode, z, x)
        return LatentPass([LevelPass("z", z, q, self.prior)], likelihood, log_px)

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.prior.sample(n)

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """shape / rate per dimension: what the decoder reads on average."""
        return {"z": self.encode(x, y).mean}
