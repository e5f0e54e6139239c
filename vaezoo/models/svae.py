"""The hyperspherical VAE (``family: svae``; Davidson, Falorsi, De Cao, Kipf & Tomczak 2018):
codes on the unit sphere S^(m-1), a von Mises-Fisher posterior and the uniform prior on the sphere
(pythae's SVAE)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, field_validator

from ..ops.vmf import VonMisesFisher
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PriorSpec
from .families import register_family
from .one_level import OneLevelVAE

__all__ = ["SVAEConfig", "HypersphericalVAE"]


class SVAEConfig(ModelConfig):
    """``encoder`` maps an image to ``latent_dim`` + 1 numbers: the mean direction (normalized) and
    the concentration (``min_concentration`` + softplus); ``decoder`` maps a point of the sphere to
    the likelihood's maps; ``prior`` is the uniform distribution on the sphere."""

    family: Literal["svae"] = "svae"
    latent_dim: int = Field(description="m: the codes lie on the unit sphere of R^m (m >= 2)")
    encoder: EncoderSpec
    decoder: DecoderSpec
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="spherical-uniform"))
    min_concentration: PositiveFloat = Field(
        1.0, description="kappa = this + softplus(encoder output): keeps the rejection sampler and the Bessel "
                         "functions away from kappa = 0 (the paper's code adds 1)")

    @field_validator("latent_dim")
    @classmethod
    def _on_a_sphere(cls, value: int) -> int:
        if value < 2:
            raise ValueError(f"a sphere S^(m-1) needs m >= 2 dimensions, got {value}")
        return value


@register_family("svae", config=SVAEConfig)
class HypersphericalVAE(OneLevelVAE):
    """A VAE whose codes live on the unit sphere: ``encode(x)`` is a
    :class:`~vaezoo.ops.vmf.VonMisesFisher`, ``decode(z)`` is p(x|z), ``sample(n)`` decodes uniform
    points of the sphere. The KL to the uniform prior is closed-form; the bounds (ELBO, IWAE) use the
    vMF log-density. The reparameterization noise ``eps`` fixes the draw's direction orthogonal to
    the mean; the component along it comes from a rejection sampler on torch's global stream."""

    inference_modules = ("encoder",)
    required_prior = "spherical-uniform"
    why_that_prior = "the svae family's codes live on the sphere"

    def __init__(self, config: SVAEConfig):
        super().__init__(config, encoder_outputs=config.latent_dim + 1)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> VonMisesFisher:
        out = self.encoder(self.check_input(x, values=None))
        direction = F.normalize(out[..., :-1], dim=-1)
        kappa = self.config.min_concentration + F.softplus(out[..., -1])
        return VonMisesFisher(direction, kappa)

    def draw_codes(self, q: VonMisesFisher, eps: torch.Tensor) -> torch.Tensor:
        """The draw along ``eps``: its tangent part is the noise, the component along the mean comes from
        the rejection sampler."""
        return q.rsample(eps.shape[:1], tangent=eps.to(q.loc.dtype))

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """The mean directions: points of the sphere, what the decoder reads."""
        return {"z": self.encode(x, y).mean_direction}
