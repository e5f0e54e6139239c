"""The Poincaré VAE (``family: pvae``; Mathieu, Le Lan, Maddison, Tomioka & Teh 2019): codes in the
Poincaré ball of curvature -c, a wrapped normal posterior and a wrapped normal prior at the origin
(pythae's PoincareVAE with its wrapped-normal posterior and prior)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt

from ..ops.poincare import WrappedNormal, exp_map
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PriorSpec
from .families import register_family
from .one_level import OneLevelVAE

__all__ = ["PoincareVAEConfig", "PoincareVAE"]


class PoincareVAEConfig(ModelConfig):
    """``encoder`` maps an image to 2 x ``latent_dim`` numbers: a tangent vector at the origin, which
    the exponential map takes to the posterior's location, and the log-scales; ``decoder`` reads the
    code's coordinates in the ball."""

    family: Literal["pvae"] = "pvae"
    latent_dim: PositiveInt
    curvature: PositiveFloat = Field(1.0, description="c: the ball has curvature -c and radius 1/sqrt(c)")
    encoder: EncoderSpec
    decoder: DecoderSpec
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="poincare-normal"))


@register_family("pvae", config=PoincareVAEConfig)
class PoincareVAE(OneLevelVAE):
    """``encode(x)`` -> :class:`~vaezoo.ops.poincare.WrappedNormal`; ``decode(z)`` -> p(x|z) of a
    point of the ball; every density (q, p) is against the ball's Riemannian volume, so the bounds
    are bounds on log p(x). The KL is the Monte Carlo one on the draw."""

    takes_posterior = True
    inference_modules = ("encoder",)
    required_prior = "poincare-normal"
    why_that_prior = "the pvae family's codes live in the Poincaré ball"

    def __init__(self, config: PoincareVAEConfig):
        super().__init__(config, encoder_outputs=2 * config.latent_dim)
        self.curvature = config.curvature

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> WrappedNormal:
        return self.posterior_from(self.encoder(self.check_input(x, values=None)))

    def posterior_from(self, out: torch.Tensor) -> WrappedNormal:
        """q(z|x) from the encoder's output: the tangent vector's exponential map, softplus scales."""
        tangent, log_scale = out.chunk(2, dim=-1)
        loc = exp_map(torch.zeros_like(tangent), tangent, self.curvature)
        return WrappedNormal(loc, F.softplus(log_scale) + 1e-5, self.curvature)

    def draw_codes(self, q: WrappedNormal, eps: torch.Tensor) -> torch.Tensor:
        """The wrapped normal's draw is a function of ``eps``: the same noise gives the same codes."""
        return q.rsample_from(eps.to(q.loc.dtype))
