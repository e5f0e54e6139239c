"""The Ladder VAE (``family: ladder``; Sønderby, Raiko, Maaløe, Sønderby & Winther 2016).

L stochastic levels z1 (bottom) .. zL (top) over a shared path. Bottom-up, a deterministic
pass d_1 = encoder(x), d_l = MLP(d_{l-1}) gives each level its own estimate (mu^_l, s^_l).
Top-down, the generative model p(zL) p(z_{L-1} | zL) ... p(z1 | z2) p(x | z1) gives each level
its prior (mu_p, s_p) from the draw of the level above, and the posterior merges the two by
precision weighting:

    1/s_q^2 = 1/s^_l^2 + 1/s_p^2,        mu_q = s_q^2 (mu^_l / s^_l^2 + mu_p / s_p^2)

so inference and generation share the top-down path. The image-facing ends are registered
backbones (``encoder``: x -> ``hidden[0]``, ``decoder``: z1 -> the likelihood's maps), so any
input size they take works. KL warm-up (``trainer.kl_warmup_epochs``) and free bits per level
(``objective: {name: elbo, free_bits: ...}``) are the paper's two aids against inactive units.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn
from torch.distributions import Distribution

from ..errors import UsageError
from ..ops.gaussian import DiagonalGaussian
from ..parts.backbones._layers import Activation, activation
from ..parts.posteriors import FlowPosterior, draw_with_log_q, with_flow
from ..passes import HierarchicalPosterior, LatentPass, LevelPass
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig, PosteriorSpec, PriorSpec
from .base import BaseVAE
from .families import register_family
from .hvae import clamp_gaussian

__all__ = ["LadderConfig", "LadderVAE", "precision_weighted"]


def precision_weighted(up: DiagonalGaussian, prior: DiagonalGaussian) -> DiagonalGaussian:
    """The product of the two Gaussians, renormalized: the Ladder VAE's posterior of a level."""
    weight = torch.sigmoid(prior.logvar - up.logvar)  # precision share of the bottom-up estimate
    mu = weight * up.mu + (1.0 - weight) * prior.mu
    return DiagonalGaussian(mu, -torch.logaddexp(-up.logvar, -prior.logvar))


class LadderConfig(ModelConfig):
    family: Literal["ladder"] = "ladder"
    latent_dims: list[PositiveInt] = Field(default_factory=lambda: [64, 32, 16], min_length=2,
                                           description="latent sizes, bottom level first")
    hidden: list[PositiveInt] = Field(default_factory=lambda: [512, 256, 128], min_length=2,
                                      description="deterministic width at each level, bottom first")
    encoder: EncoderSpec = Field(default_factory=lambda: EncoderSpec(name="mlp", hidden=[512]),
                                 description="x -> hidden[0] features: the bottom of the shared path")
    decoder: DecoderSpec = Field(default_factory=lambda: DecoderSpec(name="mlp", hidden=[512]),
                                 description="z1 -> the likelihood's maps")
    activation: Activation = "leaky_relu"
    prior: PriorSpec = Field(default_factory=lambda: PriorSpec(name="normal"), description="p(z_top)")
    posterior: Optional[PosteriorSpec] = Field(
        None, description="a normalizing flow over each level's precision-weighted Gaussian q (planar, radial, iaf), "
                          "one per level; unset: the Gaussians themselves")
    logvar_range: Optional[tuple[float, float]] = Field((-8.0, 4.0), description="hard tanh of every log-variance")

    @model_validator(mode="after")
    def _one_width_per_level(self):
        if len(self.hidden) != len(self.latent_dims):
            raise ValueError(f"hidden has {len(self.hidden)} entries but latent_dims has {len(self.latent_dims)}; "
                             f"give one deterministic width per latent level")
        return self


@register_family("ladder", config=LadderConfig)
class LadderVAE(BaseVAE):
    """``encode(x)`` holds every level along the mean path; ``decode`` needs only z1."""

    def __init__(self, config: LadderConfig):
        super().__init__(config)
        dims, hidden = list(config.latent_dims), list(config.hidden)
        self.latent_levels = [(f"z{i + 1}", d) for i, d in enumerate(dims)]
        self.logvar_range = config.logvar_range
        act = config.activation
        self.encoder = self._build("encoder", self.input_shape, hidden[0])
        self.encoder_activation = activation(act)
        self.up = nn.ModuleList(nn.Sequential(nn.Linear(hidden[i - 1], hidden[i]), activation(act))
                                for i in range(1, len(dims)))
        self.up_heads = nn.ModuleList(nn.Linear(hidden[i], 2 * dims[i]) for i in range(len(dims)))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Linear(dims[i + 1], hidden[i]), activation(act), nn.Linear(hidden[i], 2 * dims[i]))
            for i in range(len(dims) - 1))
        self.decoder = self._build("decoder", dims[0], self.likelihood.decoder_shape())
        self.prior = self._build("prior", dims[-1])
        self.flows = self.posterior_flows()  # over each level's precision-weighted q
        self.bind_prior()

    def _q(self, name: str, gaussian: DiagonalGaussian) -> Union[DiagonalGaussian, FlowPosterior]:
        return with_flow(gaussian, self.flows[name] if self.flows is not None else None)

    # -- the two paths ---------------------------------------------------------------------

    def _bottom_up(self, x: torch.Tensor) -> list[DiagonalGaussian]:
        d = self.encoder_activation(self.encoder(x))
        features = [d]
        for block in self.up:
            d = block(d)
            features.append(d)
        return [clamp_gaussian(head(f), self.logvar_range) for head, f in zip(self.up_heads, features)]

    def encode_top(self, x: torch.Tensor) -> Union[DiagonalGaussian, FlowPosterior]:
        """q(z_top | x): the top level's bottom-up estimate."""
        return self._q(self.latent_levels[-1][0], self._bottom_up(x)[-1])

    def prior_of_level(self, index: int, above: torch.Tensor) -> DiagonalGaussian:
        """p(z_{index+1} | z_{index+2}) for 0-based ``index`` below the top."""
        return clamp_gaussian(self.down[index](above), self.logvar_range)

    def decode(self, z, y: Optional[torch.Tensor] = None) -> Distribution:
        """p(x | z1) for z1 of shape (..., dim of z1), or a ``{level: tensor}`` map holding z1."""
        z1 = z["z1"] if isinstance(z, dict) else z
        return self.likelihood_at(z1)

    # -- the contract ----------------------------------------------------------------------

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior=None) -> LatentPass:
        if posterior is not None:
            raise UsageError("the ladder family's posteriors depend on the draws above them: it takes no fixed "
                             "posterior")
        noise = self.split_noise(eps)
        up = self._bottom_up(x)
        names = [name for name, _ in self.latent_levels]
        q = self._q(names[-1], up[-1])
        z, log_q = draw_with_log_q(q, noise[names[-1]])
        levels = [LevelPass(names[-1], z, q, self.prior, log_q)]
        for i in reversed(range(len(names) - 1)):
            p = self.prior_of_level(i, z)
            q = self._q(names[i], precision_weighted(up[i], p))
            z, log_q = draw_with_log_q(q, noise[names[i]])
            levels.insert(0, LevelPass(names[i], z, q, p, log_q))
        likelihood, log_px = self._score(self.decode, z, x)
        return LatentPass(levels, likelihood, log_px)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> HierarchicalPosterior:
        """Every level's posterior, each given the posterior mean of the level above."""
        x = self.check_input(x, values=None)
        up = self._bottom_up(x)
        names = [name for name, _ in self.latent_levels]
        levels = {names[-1]: self._q(names[-1], up[-1])}
        above = levels[names[-1]].mean
        for i in reversed(range(len(names) - 1)):
            q = self._q(names[i], precision_weighted(up[i], self.prior_of_level(i, above)))
            levels[names[i]] = q
            above = q.mean
        return HierarchicalPosterior({name: levels[name] for name in names})

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        return self.encode(x).mean

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        names = [name for name, _ in self.latent_levels]
        z = self.prior.sample(n)
        out = {names[-1]: z}
        for i in reversed(range(len(names) - 1)):
            z = self.prior_of_level(i, z).sample()
            out[names[i]] = z
        return {name: out[name] for name in names}
