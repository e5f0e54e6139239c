"""The shared body of the families with one latent level z and a posterior of their own (``ae``,
``svae``, ``pvae``, ``gamma``): encoder, decoder and prior built alike, p(x|z) and prior draws
alike; each family says how many numbers its encoder gives, which prior its codes need, and how
it reads the encoder's output as q(z|x)."""

from __future__ import annotations

from typing import ClassVar, Optional

import torch
from torch.distributions import Distribution

from ..passes import LatentPass, LevelPass
from .base import BaseVAE, PartBuildError

__all__ = ["OneLevelVAE"]


class OneLevelVAE(BaseVAE):
    """``encoder_outputs`` numbers per image from the encoder, a decoder from ``latent_dim`` codes, and
    the configured prior, which must be ``required_prior`` where a family's codes live in a space of
    their own (``why_that_prior`` says which). ``latent_pass`` draws the code with :meth:`draw_codes`: the
    posterior's ``rsample``, the caller's noise setting only the number of draws; a family whose draws
    are a function of that noise overrides :meth:`draw_codes`."""

    required_prior: ClassVar[Optional[str]] = None
    why_that_prior: ClassVar[str] = ""

    def __init__(self, config, encoder_outputs: int):
        super().__init__(config)
        self.latent_dim = config.latent_dim
        self.latent_levels = [("z", config.latent_dim)]
        self.encoder = self._build("encoder", self.input_shape, encoder_outputs)
        self.decoder = self._build("decoder", config.latent_dim, self.likelihood.decoder_shape())
        self.prior = self._build("prior", config.latent_dim)
        if self.required_prior is not None and config.prior.name != self.required_prior:
            raise PartBuildError("prior", f"{self.why_that_prior}: its prior is '{self.required_prior}', "
                                          f"not '{config.prior.name}'")
        self.bind_prior()

    def encode_top(self, x: torch.Tensor) -> Distribution:
        return self.encode(x)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        """p(x|z) for codes of shape (..., latent_dim); the batch shape follows z's."""
        return self.likelihood_at(z)

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior=None) -> LatentPass:
        q = posterior if posterior is not None else self.encode(x, y)
        z = self.draw_codes(q, eps)
        likelihood, log_px = self._score(self.decode, z, x)
        return LatentPass([LevelPass("z", z, q, self.prior)], likelihood, log_px)

    def draw_codes(self, q: Distribution, eps: torch.Tensor) -> torch.Tensor:
        """One code per row of ``eps`` from ``q``, reparameterized."""
        return q.rsample(eps.shape[:1])

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.prior.sample(n)

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        return {"z": self.encode(x, y).mean}
