"""The conditional VAE (``family: cvae``; Sohn, Lee & Yan 2015): the class label conditions the
encoder q(z|x, y), the decoder p(x|z, y) and, optionally, the prior p(z|y).

The label reaches the encoder after its backbone: the backbone maps x to ``features``
numbers, and a head maps [features, one-hot(y)] to (mu, logvar) through one hidden layer, so
any registered encoder serves, at the size it has without labels. The decoder backbone takes
[z, one-hot(y)]. With ``conditional_prior: true`` the prior is a learned Gaussian per class
(starting at N(0, I)); otherwise the registered prior. Every bound is then a bound on
log p(x | y), the likelihood of an image given its class.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ..errors import UsageError
from ..ops.gaussian import DiagonalGaussian
from ..parts.backbones._layers import Activation, activation
from .base import PartBuildError
from .families import register_family
from .vae import VAE, VAEConfig

__all__ = ["CVAEConfig", "ConditionalVAE"]


class CVAEConfig(VAEConfig):
    family: Literal["cvae"] = "cvae"
    num_classes: PositiveInt = Field(description="labels are 0 .. num_classes - 1")
    features: PositiveInt = Field(256, description="size of the encoder backbone's output, before the label joins")
    head_hidden: PositiveInt = Field(256, description="hidden units of the encoder head over [features, one-hot(y)]")
    activation: Activation = "relu"
    conditional_prior: bool = Field(False, description="a learned Gaussian prior p(z|y) per class")


@register_family("cvae", config=CVAEConfig)
class ConditionalVAE(VAE):
    """``encode(x, y)``, ``decode(z, y)``, ``sample(n, y=...)``; ``y`` holds integer class labels."""

    conditional = True
    inference_modules = ("encoder", "head", "flow")

    def __init__(self, config: CVAEConfig):
        super().__init__(config)
        self.num_classes = config.num_classes
        self.head = nn.Sequential(nn.Linear(config.features + self.num_classes, config.head_hidden),
                                  activation(config.activation),
                                  nn.Linear(config.head_hidden, 2 * self.latent_dim))
        if config.conditional_prior:
            self.prior_means = nn.Parameter(torch.zeros(self.num_classes, self.latent_dim))
            self.prior_logvars = nn.Parameter(torch.zeros(self.num_classes, self.latent_dim))

    def _build(self, field: str, *fixed):
        if field == "encoder":  # the backbone gives features; the label joins in the head
            fixed = (fixed[0], self.config.features)
        return super()._build(field, *fixed)

    def decoder_input_features(self) -> int:
        return self.latent_dim + self.config.num_classes

    def _one_hot(self, y: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        if y is None:
            raise UsageError("the cvae family is conditional: pass the class labels, e.g. model(x, y), "
                             "model.encode(x, y), model.sample(n, y=3)")
        return F.one_hot(y.long(), self.num_classes).to(like.dtype)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        x = self.check_input(x, values=None)
        h = self.encoder(x)
        mu, logvar = self.head(torch.cat([h, self._one_hot(y, h)], dim=-1)).chunk(2, dim=-1)
        return self.posterior(mu, logvar)

    def encode_top(self, x: torch.Tensor) -> DiagonalGaussian:
        raise UsageError("the cvae family's posterior q(z|x, y) needs the label; priors and tools that encode "
                         "images alone (vamp, fit_prior) do not apply to it")

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None):
        one_hot = self._one_hot(y, z)
        return super().decode(torch.cat([z, one_hot.expand(*z.shape[:-1], self.num_classes)], dim=-1))

    def level_prior(self, y: Optional[torch.Tensor]):
        if not self.config.conditional_prior:
            return self.prior
        return DiagonalGaussian(self.prior_means[y], self.prior_logvars[y])

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self.config.conditional_prior:
            return self.prior.sample(n)
        return self.level_prior(y).sample()

    def bind_prior(self) -> None:
        if self.config.prior.name == "vamp":
            raise PartBuildError("prior", "prior 'vamp': the VampPrior mixes the posteriors q(z|u_k) of "
                                          "pseudo-images, which a class-conditional encoder does not have; "
                                          "use conditional_prior: true for a prior per class")
        super().bind_prior()
