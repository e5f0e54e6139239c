"""The one-level VAE (``family: vae``): an encoder, a decoder, a prior, a likelihood, an objective."""

from __future__ import annotations

from typing import Literal, Optional, Union

import torch
from pydantic import Field, PositiveInt
from torch.distributions import Distribution

from ..ops.gaussian import DiagonalGaussian
from ..passes import LatentPass, LevelPass
from ..parts.posteriors import FlowPosterior, draw_with_log_q, with_flow
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PosteriorSpec, PriorSpec
from .base import BaseVAE
from .families import register_family

__all__ = ["VAEConfig", "VAE"]


class VAEConfig(ModelConfig):
    """``encoder`` maps an image to the posterior's (mu, logvar); ``decoder`` maps z to the likelihood's maps;
    ``posterior``: a flow over that Gaussian (``planar``, ``radial``, ``iaf``), none by default."""

    family: Literal["vae"] = "vae"
    latent_dim: PositiveInt
    encoder: EncoderSpec
    decoder: DecoderSpec
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="normal"))
    posterior: Optional[PosteriorSpec] = Field(
        None, description="a normalizing flow over the encoder's diagonal Gaussian (planar, radial, iaf); "
                          "unset: the Gaussian itself")


@register_family("vae", config=VAEConfig)
class VAE(BaseVAE):
    """A variational auto-encoder assembled from registered parts.

    - ``encode(x)`` -> q(z|x), a :class:`~vaezoo.ops.DiagonalGaussian` (``torch.distributions``);
    - ``decode(z)`` -> p(x|z), a ``torch.distributions`` object over whole images;
    - ``forward(x)`` -> :class:`~vaezoo.ModelOutput` with ``loss`` (the objective, nats per image,
      batch mean), ``terms`` (``recon``, ``kl``), ``elbo`` (per example), ``z`` and ``x_hat``.
    """

    takes_posterior = True
    inference_modules = ("encoder", "flow")

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.latent_dim = config.latent_dim
        self.latent_levels = [("z", config.latent_dim)]
        self.encoder = self._build("encoder", self.encoder_input_shape(), 2 * self.latent_dim)
        self.decoder = self._build("decoder", self.decoder_input_features(), self.likelihood.decoder_shape())
        self.prior = self._build("prior", self.latent_dim)
        flows = self.posterior_flows()
        self.flow = flows["z"] if flows is not None else None
        self.bind_prior()

    def encoder_input_shape(self) -> tuple[int, ...]:
        return self.input_shape

    def decoder_input_features(self) -> int:
        return self.latent_dim

    # -- the two halves ---------------------------------------------------------------

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Union[DiagonalGaussian, FlowPosterior]:
        x = self.check_input(x, values=None)
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return self.posterior(mu, logvar)

    def posterior(self, mu: torch.Tensor, logvar: torch.Tensor) -> Union[DiagonalGaussian, FlowPosterior]:
        """q(z|x) from the encoder's Gaussian: the Gaussian, or the configured flow over it."""
        return with_flow(DiagonalGaussian(mu, logvar), self.flow)

    def encode_top(self, x: torch.Tensor) -> DiagonalGaussian:
        return self.encode(x)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        """p(x|z) for latents of shape (..., latent_dim); the batch shape follows z's."""
        return self.likelihood_at(z)

    def level_prior(self, y: Optional[torch.Tensor]):
        """p(z): the registered prior (a conditional family may give one per label)."""
        return self.prior

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior: Optional[DiagonalGaussian] = None) -> LatentPass:
        q = posterior if posterior is not None else self.encode(x, y)
        z, log_q = draw_with_log_q(q, eps)
        likelihood, log_px = self._score(lambda value: self.decode(value, y), z, x)
        return LatentPass([LevelPass("z", z, q, self.level_prior(y), log_q)], likelihood, log_px)

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.prior.sample(n)

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        return {"z": self.encode(x, y).mean}
