"""The two-level hierarchical VAE (``family: hvae``) of Tomczak & Welling 2018 ("VAE with a VampPrior").

    q(z2 | x) q(z1 | x, z2)                 the inference model
    p(z2) p(z1 | z2) p(x | z1, z2)          the generative model

Layer for layer as the paper's code (models/HVAE_2level.py), with the image-facing networks
as registered backbones so that one family gives both the paper's HVAE (``gated-mlp``, the
defaults) and its ConvHVAE (``gated-conv``):

- ``encoder``: x -> the parameters of q(z2 | x) (mean, log-variance), e.g. two gated layers of 300;
- ``encoder_z1``: x -> ``features`` numbers, the x-path of q(z1 | x, z2) (one gated layer of 300);
  the z2-path is a gated layer z2 -> ``features``, the two join in a gated layer to ``hidden``;
- p(z1 | z2): two gated layers of ``hidden``; p(x | z1, z2): a gated layer from each of z1 and z2
  to ``hidden``, then the ``decoder`` backbone from the 2 * ``hidden`` joint features;
- every log-variance passes through a hard tanh onto ``logvar_range`` ([-6, 2] in the paper);
- ``prior`` is p(z2): ``normal``, ``vamp`` (the paper's VampPrior, over q(z2 | x)) or ``mog``.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn
from torch.distributions import Distribution

from ..errors import UsageError
from ..ops.gaussian import DiagonalGaussian
from ..parts.backbones.gated import GatedDense, he_init
from ..passes import HierarchicalPosterior, LatentPass, LevelPass
from ..parts.posteriors import FlowPosterior, draw_with_log_q, with_flow
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PosteriorSpec, PriorSpec
from .base import BaseVAE
from .families import register_family

__all__ = ["HVAEConfig", "HierarchicalVAE", "clamp_gaussian"]


def clamp_gaussian(params: torch.Tensor, logvar_range: Optional[tuple[float, float]]) -> DiagonalGaussian:
    """(..., 2D) head outputs -> N(mu, exp(logvar)), logvar through a hard tanh onto ``logvar_range``."""
    mu, logvar = params.chunk(2, dim=-1)
    if logvar_range is not None:
        logvar = F.hardtanh(logvar, *logvar_range)
    return DiagonalGaussian(mu, logvar)


class HVAEConfig(ModelConfig):
    family: Literal["hvae"] = "hvae"
    latent_dims: tuple[PositiveInt, PositiveInt] = Field((40, 40), description="[z1, z2]: the bottom, then the top")
    hidden: PositiveInt = Field(300, description="width of the gated layers between the levels")
    features: PositiveInt = Field(300, description="size of encoder_z1's output")
    encoder: EncoderSpec = Field(default_factory=lambda: EncoderSpec(name="gated-mlp", hidden=[300, 300]),
                                 description="x -> q(z2|x)'s parameters")
    encoder_z1: EncoderSpec = Field(
        default_factory=lambda: EncoderSpec(name="gated-mlp", hidden=[], head="gated"),
        description="x -> features, the x-path of q(z1|x, z2)")
    decoder: DecoderSpec = Field(default_factory=lambda: DecoderSpec(name="gated-mlp", hidden=[300]),
                                 description="2 * hidden joint features of z1 and z2 -> the likelihood's maps")
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="normal"), description="p(z2)")
    posterior: Optional[PosteriorSpec] = Field(
        None, description="a normalizing flow over each level's Gaussian q (planar, radial, iaf), one per level; "
                          "unset: the Gaussians themselves")
    logvar_range: Optional[tuple[float, float]] = Field((-6.0, 2.0), description="hard tanh of every log-variance")


@register_family("hvae", config=HVAEConfig)
class HierarchicalVAE(BaseVAE):
    """Two stochastic layers; ``encode(x)`` holds both levels, ``decode({'z1': ..., 'z2': ...})``."""

    def __init__(self, config: HVAEConfig):
        super().__init__(config)
        d1, d2 = config.latent_dims
        h, f = config.hidden, config.features
        self.latent_levels = [("z1", d1), ("z2", d2)]
        self.logvar_range = config.logvar_range
        # q(z2 | x)
        self.encoder = self._build("encoder", self.input_shape, 2 * d2)
        # q(z1 | x, z2)
        self.encoder_z1 = self._build("encoder_z1", self.input_shape, f)
        self.q_z1_z2 = GatedDense(d2, f)
        self.q_z1_joint = GatedDense(2 * f, h)
        self.q_z1_head = nn.Linear(h, 2 * d1)
        # p(z1 | z2)
        self.p_z1 = nn.Sequential(GatedDense(d2, h), GatedDense(h, h), nn.Linear(h, 2 * d1))
        # p(x | z1, z2)
        self.p_x_z1 = GatedDense(d1, h)
        self.p_x_z2 = GatedDense(d2, h)
        self.decoder = self._build("decoder", 2 * h, self.likelihood.decoder_shape())
        for module in (self.q_z1_z2, self.q_z1_joint, self.q_z1_head, self.p_z1, self.p_x_z1, self.p_x_z2):
            he_init(module)
        self.prior = self._build("prior", d2)
        self.flows = self.posterior_flows()  # over q(z1 | x, z2) and q(z2 | x)
        self.bind_prior()

    def _flow(self, level: str):
        return self.flows[level] if self.flows is not None else None

    # -- the conditionals ----------------------------------------------------------------

    def encode_top(self, x: torch.Tensor) -> Union[DiagonalGaussian, FlowPosterior]:
        """q(z2 | x)."""
        return with_flow(clamp_gaussian(self.encoder(x), self.logvar_range), self._flow("z2"))

    def _q_z1(self, hx: torch.Tensor, z2: torch.Tensor) -> Union[DiagonalGaussian, FlowPosterior]:
        """q(z1 | x, z2) from the x-path features ``hx`` (B, features) and z2 (..., B, d2)."""
        joint = torch.cat([hx.expand(*z2.shape[:-1], hx.shape[-1]), self.q_z1_z2(z2)], dim=-1)
        return with_flow(clamp_gaussian(self.q_z1_head(self.q_z1_joint(joint)), self.logvar_range), self._flow("z1"))

    def p_z1_given(self, z2: torch.Tensor) -> DiagonalGaussian:
        """p(z1 | z2)."""
        return clamp_gaussian(self.p_z1(z2), self.logvar_range)

    def decode(self, z: dict[str, torch.Tensor], y: Optional[torch.Tensor] = None) -> Distribution:
        """p(x | z1, z2) for ``{'z1': (..., d1), 'z2': (..., d2)}``; the batch shape follows z's."""
        if not isinstance(z, dict) or set(z) != {"z1", "z2"}:
            raise UsageError("the hvae family decodes both levels: pass {'z1': tensor, 'z2': tensor}")
        h = torch.cat([self.p_x_z1(z["z1"]), self.p_x_z2(z["z2"])], dim=-1)
        return self.likelihood_at(h)

    # -- the contract ----------------------------------------------------------------------

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior=None) -> LatentPass:
        if posterior is not None:
            raise UsageError("the hvae family's q(z1 | x, z2) depends on the draw of z2: it takes no fixed posterior")
        noise = self.split_noise(eps)
        q2 = self.encode_top(x)
        z2, log_q2 = draw_with_log_q(q2, noise["z2"])
        q1 = self._q_z1(self.encoder_z1(x), z2)
        z1, log_q1 = draw_with_log_q(q1, noise["z1"])
        likelihood, log_px = self._score(self.decode, {"z1": z1, "z2": z2}, x)
        levels = [LevelPass("z1", z1, q1, self.p_z1_given(z2), log_q1), LevelPass("z2", z2, q2, self.prior, log_q2)]
        return LatentPass(levels, likelihood, log_px)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> HierarchicalPosterior:
        """q(z2 | x), and q(z1 | x, z2) at z2's posterior mean."""
        x = self.check_input(x, values=None)
        q2 = self.encode_top(x)
        return HierarchicalPosterior({"z1": self._q_z1(self.encoder_z1(x), q2.mean), "z2": q2})

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        return self.encode(x).mean

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        z2 = self.prior.sample(n)
        return {"z1": self.p_z1_given(z2).sample(), "z2": z2}
