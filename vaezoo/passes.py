"""What a model's forward pass produces, shared by every family, the objectives and the evaluation.

A :class:`LatentPass` is S draws of every latent level for a batch: per level the sample z with
its posterior q and its prior p (the top level's registered prior, or a conditional Gaussian
p(z_l | z_{l+1}) lower in a hierarchy), and the likelihood p(x | z) with ``log p(x|z)``. From it
come the per-level KL terms of the ELBO (closed form wherever both sides allow it) and the
importance log-weights ``log p(x|z) + log p(z) - log q(z|x)`` that the IWAE bound averages,
with p and q the joint over all levels.

:class:`ModelOutput` is what ``model(x)`` returns: the training ``loss`` and named ``terms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch
from torch.distributions import Distribution

from .errors import UsageError
from .ops.gaussian import DiagonalGaussian, kl_diagonal_gaussians
from .ops.point import NO_DENSITY, PointPosterior

__all__ = [
    "LevelPass", "LatentPass", "ModelOutput", "VAEOutput", "StepContext", "HierarchicalPosterior", "kl_term_name",
]


def kl_term_name(level: str, single: bool) -> str:
    """``kl`` for a model with one latent level, ``kl/<level>`` for each level of a hierarchy."""
    return "kl" if single else f"kl/{level}"


@dataclass
class LevelPass:
    """One latent level of a pass: z of shape (S, B, D), its posterior ``q`` and its prior ``p``.

    ``p`` is a registered prior (``log_prob``, ``kl``, ``kl_per_dim``) or a
    :class:`DiagonalGaussian` conditional prior; both broadcast against z's (S, B) batch.
    """

    name: str
    z: torch.Tensor
    q: Any  # a DiagonalGaussian, a family's own posterior, a flow posterior (log_q_at_draw) or a point
    p: Any
    # log q(z|x), (S, B), where the draw computed it: a flow posterior, whose density is known at
    # its own draws only (its KL is then always the Monte Carlo one)
    log_q_at_draw: Optional[torch.Tensor] = None

    def kl(self) -> torch.Tensor:
        """KL(q || p) per draw, (S, B): closed form for two Gaussians or a prior that has one,
        else the Monte Carlo ``log q(z) - log p(z)`` on this draw."""
        if self.log_q_at_draw is not None:
            return self.log_q_at_draw - self.log_p()
        if isinstance(self.q, PointPosterior):
            raise UsageError(NO_DENSITY)
        if isinstance(self.p, DiagonalGaussian):
            return self.kl_per_dim().sum(-1)
        return self.p.kl(self.q, self.z)

    def kl_per_dim(self) -> Optional[torch.Tensor]:
        """KL per latent dimension, (S, B, D), where it is defined (free bits need it); else None."""
        if self.log_q_at_draw is not None or isinstance(self.q, PointPosterior):
            return None
        if isinstance(self.p, DiagonalGaussian):
            return kl_diagonal_gaussians(self.q.mu, self.q.logvar, self.p.mu, self.p.logvar).expand(self.z.shape)
        return self.p.kl_per_dim(self.q, self.z)

    def log_q(self) -> torch.Tensor:
        return self.log_q_at_draw if self.log_q_at_draw is not None else self.q.log_prob(self.z)

    def log_p(self) -> torch.Tensor:
        return self.p.log_prob(self.z)


@dataclass
class LatentPass:
    """S draws through a model: its latent ``levels`` (bottom first), the likelihood and
    ``log_px`` = log p(x | z) of shape (S, B)."""

    levels: list[LevelPass]
    likelihood: Distribution
    log_px: torch.Tensor

    def kl_terms(self) -> dict[str, torch.Tensor]:
        """Each level's KL per draw, (S, B), under its term name (``kl`` or ``kl/<level>``)."""
        single = len(self.levels) == 1
        return {kl_term_name(level.name, single): level.kl() for level in self.levels}

    def kl(self) -> torch.Tensor:
        return sum(level.kl() for level in self.levels)

    def elbo(self) -> torch.Tensor:
        """log p(x|z) - KL per draw, (S, B)."""
        return self.log_px - self.kl()

    def log_weights(self) -> torch.Tensor:
        """``log p(x|z) + log p(z) - log q(z|x)`` per draw, (S, B), p and q joint over all levels."""
        return self.log_px + sum(level.log_p() - level.log_q() for level in self.levels)

    @property
    def z(self) -> Union[torch.Tensor, dict[str, torch.Tensor]]:
        """The latent draw: a tensor for one level, else ``{level: tensor}``."""
        if len(self.levels) == 1:
            return self.levels[0].z
        return {level.name: level.z for level in self.levels}


@dataclass
class StepContext:
    """Facts of the training run that an objective may need at call time, never written into the
    architecture: the KL weight of this step (warm-up), the step, the training set's size, and,
    under DDP, ``gather_batch``: concatenates a per-example tensor over every process's part of
    the global batch, with gradients (None in one process), for statistics of the whole batch."""

    kl_scale: Union[float, torch.Tensor] = 1.0
    step: int = 0
    dataset_size: Optional[int] = None
    gather_batch: Optional[Callable[[torch.Tensor], torch.Tensor]] = None


class ModelOutput:
    """``loss``: the training objective (nats per image, batch mean); ``terms``: its named parts as
    batch means (``recon``, ``kl`` or ``kl/<level>``, ...); ``elbo``: the ELBO of each example,
    shape (B,); ``z``: the latent sample; ``posterior`` and ``likelihood``: q(z|x) and p(x|z).

    ``likelihood`` may be given as a function that builds it: an objective that decoded many
    draws at once then decodes the first draw again only if someone asks for it.
    """

    def __init__(self, loss: torch.Tensor, terms: Optional[dict[str, torch.Tensor]] = None,
                 elbo: Optional[torch.Tensor] = None, z: Any = None, posterior: Any = None,
                 likelihood: Union[Distribution, Callable[[], Distribution], None] = None):
        self.loss, self.terms, self.elbo, self.z, self.posterior = loss, dict(terms or {}), elbo, z, posterior
        self._likelihood = likelihood

    @property
    def likelihood(self) -> Optional[Distribution]:
        if self._likelihood is not None and not isinstance(self._likelihood, Distribution):
            self._likelihood = self._likelihood()
        return self._likelihood

    @property
    def recon(self) -> torch.Tensor:
        """The batch mean of -log p(x|z)."""
        return self.terms["recon"]

    @property
    def kl(self) -> torch.Tensor:
        """The batch mean of the total KL, summed over latent levels."""
        return sum(v for k, v in self.terms.items() if k == "kl" or k.startswith("kl/"))

    @property
    def x_hat(self) -> torch.Tensor:
        """The reconstruction: the mean of p(x|z) (computed on demand, not on the hot path)."""
        return self.likelihood.mean

    def __repr__(self) -> str:
        terms = ", ".join(f"{k}={float(v.detach()):.3f}" for k, v in self.terms.items())
        return f"ModelOutput(loss={float(self.loss.detach()):.3f}, {terms})"


VAEOutput = ModelOutput  # the name of the one-level model's output in earlier releases


class HierarchicalPosterior:
    """q(z|x) of a model with several latent levels: per level the Gaussian q(z_l | x, z_above),
    given one value of the levels above (a draw, or the means along the mean path).

    ``levels`` maps each level (bottom first) to its :class:`DiagonalGaussian` (or a flow over
    it); ``mean`` maps each level to its mean (a flow's image of its Gaussian's mean); ``top`` is
    the top level's q(z_top | x), which depends on x alone.
    """

    def __init__(self, levels: dict[str, DiagonalGaussian]):
        self.levels = dict(levels)

    def __getitem__(self, level: str) -> DiagonalGaussian:
        return self.levels[level]

    @property
    def mean(self) -> dict[str, torch.Tensor]:
        return {name: q.mean for name, q in self.levels.items()}

    @property
    def top(self) -> DiagonalGaussian:
        return list(self.levels.values())[-1]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}: {tuple(q.mu.shape)}" for name, q in self.levels.items())
        return f"HierarchicalPosterior({shapes})"
