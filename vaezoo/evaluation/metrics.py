"""Per-example bounds on log p(x), with noise keyed per example, and the statistics reported beside them.

All functions take a model of any family and a float batch ``x`` of shape (B, C, H, W) (and the
labels ``y`` for a conditional family) and return per-example values in nats, shape (B,).
Noise comes from :class:`~vaezoo.ops.noise.NoiseSource`, so results depend on ``seed`` and the
example indices only, never on batch or chunk sizes.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..errors import UsageError
from ..models.bounds import elbo_terms, iwae_bound
from ..ops.bounds import ACTIVE_UNIT_THRESHOLD
from ..ops.noise import ELBO_STREAM, IWAE_STREAM, NoiseSource
from ..parts.metrics import Metric
from .report import Measurement

__all__ = [
    "elbo", "iwae_log_likelihood", "elbo_terms", "iwae_bound", "active_units", "bits_per_dim", "num_pixels",
    "mean_and_stderr", "measurement", "ACTIVE_UNIT_THRESHOLD",
]


def _noise(model, x: torch.Tensor, seed: int, stream: int) -> NoiseSource:
    return NoiseSource(seed, stream, range(x.shape[0]), model.noise_shape, x.device, x.dtype)


@torch.no_grad()
def elbo(model, x: torch.Tensor, samples: int = 1, seed: int = 0, y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The ELBO of each example (nats, float64), with ``samples`` draws of z, deterministic in ``seed``.

    The examples' noise streams are keyed by their position in ``x``.
    """
    log_px, kls = elbo_terms(model, x, _noise(model, x, seed, ELBO_STREAM).draw(0, samples), y)
    return (log_px - sum(kls.values())).double()


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int = 5000, chunk_size: Optional[int] = None, seed: int = 0,
                        y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The importance-weighted estimate of log p(x) per example (nats, float64; Burda et al. 2016).

    A lower bound in expectation that tightens as ``k`` grows; equals the ELBO at k = 1. The
    value does not depend on ``chunk_size`` (only memory and speed do).
    """
    chunk = chunk_size or max(1, 2048 // x.shape[0])
    return iwae_bound(model, x, _noise(model, x, seed, IWAE_STREAM), k, chunk, y)


def active_units(means: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, torch.Tensor]:
    """Burda et al. (2016): dimension j is active when Cov_x(E_q[z_j|x]) > ``threshold``.

    ``means``: the posterior means of N examples, shape (N, D). Returns the count and the
    per-dimension variances across examples.
    """
    if means.ndim != 2 or means.shape[0] < 2:
        raise UsageError(f"active units need the posterior means of at least 2 examples as (N, D), got "
                         f"{tuple(means.shape)}")
    variance = means.double().var(dim=0)
    return int((variance > threshold).sum()), variance


def num_pixels(shape) -> int:
    """Dimensions of one image: channels x height x width."""
    return math.prod(int(s) for s in shape)


def bits_per_dim(nats: float | torch.Tensor, num_dims: int):
    """Nats per image -> bits per dimension: ``nats / (num_dims * ln 2)``."""
    return nats / (num_dims * math.log(2.0))


def mean_and_stderr(values: torch.Tensor) -> tuple[float, Optional[float]]:
    """The mean over examples and its standard error (None for a single example)."""
    n = values.numel()
    return float(values.mean()), (float(values.std() / n**0.5) if n > 1 else None)


def measurement(metric: Metric, values: torch.Tensor, protocol: str = "", label: Optional[str] = None) -> Measurement:
    """A registered metric's per-example ``values`` as their mean and standard error, in its unit."""
    value, stderr = mean_and_stderr(values)
    return Measurement(value=value, unit=metric.unit, label=label or metric.label, stderr=stderr, protocol=protocol)
