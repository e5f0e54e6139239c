"""The variational nested dropout autoencoder (``family: vnd``; Cui, Chen & Li 2021, "Variational
nested dropout"; PyTorch-VAE's ``VNDAE``): a Gaussian code whose dimensions are ordered by
importance, because each image keeps only its first ``reserved + k`` of them, the cut k a latent of
its own. The densities are in :mod:`vaezoo.ops.nested`.

The encoder gives 3 x D numbers per image: mu, log sigma^2 and the logits of "keep the next
dimension" (the first ``reserved`` of those unused: those dimensions are always kept). Training
draws the cut by the straight-through Gumbel-softmax at ``temperature`` (the reference's hard
draw at 1), so the decoder sees codes with their tails at exactly 0 and the mask's gradient is
the relaxed one; outside training the cut is an exact draw, so the ELBO and the importance-weighted
bound are those of the mixed model, log q(z, k|x) and log p(z, k) joint over the cut and the kept
dimensions. The keep logits are clipped to [-5, 5] as in the reference.

Two choices differ from PyTorch-VAE's code, both where it departs from the paper's model: the
Gumbel-softmax here takes the cut's log-probabilities (the reference passes the probabilities
themselves as logits), and the prior draws a cut as well (the reference samples every dimension).
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import Field, PositiveFloat, PositiveInt, confloat, model_validator

from ..errors import UsageError
from ..ops.categorical import CategoricalPosterior
from ..ops.gaussian import DiagonalGaussian
from ..ops.nested import CutPrior, NestedGaussian, NestedNormal, downhill_log_probs, kept_dimensions
from ..passes import LatentPass, LevelPass
from ..schemas import DecoderSpec, EncoderSpec, ModelConfig
from .base import BaseVAE
from .families import register_family

__all__ = ["NestedDropoutConfig", "NestedDropoutVAE", "NestedPosterior"]

KEEP_LOGIT_CLIP = 5.0  # the reference's clip of the keep logits: P(keep) within [0.0067, 0.9933]


class NestedDropoutConfig(ModelConfig):
    family: Literal["vnd"] = "vnd"
    latent_dim: PositiveInt = Field(description="D: the code's dimensions, the most a code keeps")
    reserved: PositiveInt = Field(1, description="the first dimensions every code keeps (the reference: 1)")
    keep_prior: confloat(gt=0.0, lt=1.0) = Field(
        0.95, description="the prior's probability of keeping each further dimension (the reference: 0.95)")
    temperature: PositiveFloat = Field(1.0, description="the straight-through Gumbel-softmax temperature of "
                                                        "the cut while training (the reference: 1)")
    encoder: EncoderSpec
    decoder: DecoderSpec

    @model_validator(mode="after")
    def _a_cut_to_draw(self) -> "NestedDropoutConfig":
        if self.reserved >= self.latent_dim:
            raise ValueError(f"reserved ({self.reserved}) keeps every one of the latent_dim ({self.latent_dim}) "
                             f"dimensions, leaving no cut to learn: take reserved < latent_dim")
        return self

    def latent_summary(self) -> str:
        return f"{self.latent_dim} nested ({self.reserved} always kept)"


class NestedPosterior:
    """q(z, k|x): the Gaussian ``z`` over all D dimensions and the cut ``cut`` over 0..M."""

    def __init__(self, z: DiagonalGaussian, cut: CategoricalPosterior, reserved: int):
        self.z, self.cut, self.reserved = z, cut, reserved

    @property
    def kept_probability(self) -> torch.Tensor:
        """P_q(dimension d kept), (B, D)."""
        return kept_dimensions(self.cut.log_probs.flatten(-2).exp(), self.reserved)

    @property
    def mean(self) -> torch.Tensor:
        """E_q[z] = mu_d P_q(d kept), (B, D): what the decoder reads at the posterior mean."""
        return self.z.mu * self.kept_probability


@register_family("vnd", config=NestedDropoutConfig)
class NestedDropoutVAE(BaseVAE):
    """``encode(x)`` -> :class:`NestedPosterior`; ``decode(z)`` takes codes of D dimensions (a dict of
    levels reads its ``z``); ``sample(n)`` decodes N(0, I) codes cut at a draw of the prior's k."""

    takes_posterior = True
    inference_modules = ("encoder",)

    def __init__(self, config: NestedDropoutConfig):
        super().__init__(config)
        self.latent_dim, self.reserved = config.latent_dim, config.reserved
        cuts = config.latent_dim - config.reserved + 1
        self.latent_levels = [("z", config.latent_dim), ("cut", cuts)]
        self.encoder = self._build("encoder", self.input_shape, 3 * config.latent_dim)
        self.decoder = self._build("decoder", config.latent_dim, self.likelihood.decoder_shape())
        self.cut_prior = CutPrior(cuts, config.keep_prior)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> NestedPosterior:
        mu, logvar, keep = self.encoder(self.check_input(x, values=None)).chunk(3, dim=-1)
        keep = keep[..., self.reserved:].clamp(-KEEP_LOGIT_CLIP, KEEP_LOGIT_CLIP)
        cut = CategoricalPosterior(downhill_log_probs(keep).unsqueeze(-2))
        return NestedPosterior(DiagonalGaussian(mu, logvar), cut, self.reserved)

    def decode(self, z, y: Optional[torch.Tensor] = None):
        """p(x|z) for codes (..., latent_dim), dropped dimensions at 0, or ``{"z": ..., "cut": ...}``."""
        return self.likelihood_at(z["z"] if isinstance(z, dict) else z)

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior: Optional[NestedPosterior] = None) -> LatentPass:
        q = posterior if posterior is not None else self.encode(x, y)
        noise = self.split_noise(eps)
        temperature = self.config.temperature if self.training else None
        cut = q.cut.draw(noise["cut"], temperature, hard=True)
        kept = kept_dimensions(cut, self.reserved)
        z = q.z.reparameterize(noise["z"]) * kept
        likelihood, log_px = self._score(self.decode, z, x)
        code = NestedGaussian(q.z, kept, q.kept_probability)
        return LatentPass([LevelPass("z", z, code, NestedNormal(kept)), LevelPass("cut", cut, q.cut, self.cut_prior)],
                          likelihood, log_px)

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        parameter = next(self.parameters())
        cut = self.cut_prior.sample(n, parameter.device, parameter.dtype)
        z = torch.randn(n, self.latent_dim, device=parameter.device, dtype=parameter.dtype)
        return {"z": z * kept_dimensions(cut, self.reserved), "cut": cut}

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        q = self.encode(x, y)
        return {"z": q.mean, "cut": q.cut.mean}

    def posterior_of(self, draw: LatentPass) -> NestedPosterior:
        code, cut = draw.levels
        return NestedPosterior(code.q.gaussian, cut.q, self.reserved)

    def squeeze_draw(self, v):
        """The first draw's code, as the decoder reads it."""
        return v["z"][0]

    def refine(self, x, steps: int = 100, lr: float = 0.05, y=None, **kwargs):
        raise UsageError("refinement optimizes Gaussian posteriors; the vnd family's cut is discrete")

    def prior_label(self) -> str:
        return f"N(0, I) on the kept dimensions, a downhill cut (keep {self.config.keep_prior})"

    def extra_repr(self) -> str:
        return (f"family={self.family}, input_shape={list(self.input_shape)}, latents={self.latent_dim} nested "
                f"({self.reserved} always kept, prior keep {self.config.keep_prior})")
