"""Flow posteriors: a normalizing flow over the encoder's diagonal Gaussian, drawn with its log-density.

A flow part maps z0 to z = f(z0) and gives ``log |det df/dz0|`` per example, so that the draw
carries its own density, ``log q(z|x) = log N(z0; mu, sigma^2) - log |det df/dz0|`` (the change of
variables). That density is known at the flow's own draws only: the planar flow has no closed-form
inverse and the IAF's takes D sequential passes, so nothing asks a flow posterior for the density of
another point (its KL is the Monte Carlo ``log q(z) - log p(z)`` on the draw).
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from ...errors import UsageError
from ...ops.gaussian import DiagonalGaussian

__all__ = ["Flow", "FlowSteps", "FlowPosterior", "draw_with_log_q", "with_flow"]


class Flow(nn.Module):
    """``forward(z) -> (f(z), log |det df/dz|)`` on (..., D), the log-determinant of shape (...)."""

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class FlowSteps(Flow):
    """Flow steps applied in turn; their log-determinants add."""

    def __init__(self, steps: list[Flow]):
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for step in self.steps:
            z, step_log_det = step(z)
            log_det = log_det + step_log_det
        return z, log_det


class FlowPosterior:
    """q(z|x) of a flow over the encoder's Gaussian: z = f(z0), z0 = mu + sigma * eps.

    ``draw(eps)`` gives z with its log q(z|x); ``rsample`` and ``sample`` give z alone; ``mean`` is
    the flow's image of the Gaussian's mean, the point that reconstructions and codes use (the
    exact mean of q has no closed form); ``base`` is the Gaussian itself.
    """

    def __init__(self, base: DiagonalGaussian, flow: Flow):
        self.base, self.flow = base, flow

    def draw(self, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log q(z|x)) for standard-normal ``eps`` of shape (..., B, D)."""
        z0 = self.base.reparameterize(eps)
        z, log_det = self.flow(z0)
        return z, self.base.log_prob(z0) - log_det

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        eps = torch.randn(*sample_shape, *self.base.mu.shape, dtype=self.base.mu.dtype, device=self.base.mu.device)
        return self.draw(eps)[0]

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    @property
    def mean(self) -> torch.Tensor:
        return self.flow(self.base.mu)[0]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise UsageError("a flow posterior's density is known at its own draws: use q.draw(eps), which returns "
                         "z with log q(z|x)")

    def __repr__(self) -> str:
        return f"FlowPosterior(base: {tuple(self.base.mu.shape)}, flow: {type(self.flow).__name__})"


def with_flow(gaussian: DiagonalGaussian, flow: Optional[Flow]) -> Union[DiagonalGaussian, FlowPosterior]:
    """q(z|x) of a level: the encoder's Gaussian, or the level's flow over it."""
    return gaussian if flow is None else FlowPosterior(gaussian, flow)


def draw_with_log_q(q, eps: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """A reparameterized draw of a level, with log q(z|x) where the posterior gives it at the draw
    (a flow); a Gaussian's density is evaluated afterwards, in closed form where it can be."""
    if isinstance(q, FlowPosterior):
        return q.draw(eps)
    return q.reparameterize(eps), None
