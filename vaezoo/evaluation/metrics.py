"""Per-example bounds on log p(x) and the dataset statistics reported beside them.

All functions take a model (a :class:`vaezoo.VAE`) and a float batch ``x`` of shape
(B, C, H, W) and return per-example values in nats, shape (B,). Noise comes from
:class:`NoiseSource`, so results depend on ``seed`` and the example indices only.
"""

from __future__ import annotations

import math

import torch

from ..distributions import DiagonalGaussian
from .noise import ELBO_STREAM, IWAE_STREAM, NoiseSource

__all__ = [
    "log_weights", "elbo_terms", "iwae_bound", "elbo", "iwae_log_likelihood",
    "kl_per_dimension", "active_units", "bits_per_dim", "num_pixels", "ACTIVE_UNIT_THRESHOLD",
]

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda, Grosse & Salakhutdinov (2016), section 5.2


def _reparameterize(posterior: DiagonalGaussian, eps: torch.Tensor) -> torch.Tensor:
    return posterior.mu + torch.exp(0.5 * posterior.logvar) * eps


def log_weights(model, x: torch.Tensor, posterior: DiagonalGaussian, eps: torch.Tensor) -> torch.Tensor:
    """``log p(x|z) + log p(z) - log q(z|x)`` at ``z = mu + sigma * eps``; eps (S, B, D) -> (S, B)."""
    z = _reparameterize(posterior, eps)
    return model.decode(z).log_prob(x) + model.prior.log_prob(z) - posterior.log_prob(z)


def elbo_terms(
    model, x: torch.Tensor, posterior: DiagonalGaussian, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(E_q log p(x|z), KL(q || p)) per example, each averaged over the S draws in ``eps``.

    The KL is the prior's own: closed form for N(0, I), Monte Carlo on the same z otherwise.
    """
    z = _reparameterize(posterior, eps)
    log_px = model.decode(z).log_prob(x).mean(dim=0)
    kl = model.prior.kl(posterior, z).mean(dim=0)
    return log_px, kl


def iwae_bound(
    model, x: torch.Tensor, posterior: DiagonalGaussian, noise: NoiseSource, k: int, chunk_size: int | None = None
) -> torch.Tensor:
    """``logmeanexp_k log w_k`` per example, decoding at most ``chunk_size`` samples per example at once.

    Each chunk is reduced to its own log-sum-exp (stable: the max is taken out), and the
    chunks' values are combined by a final log-sum-exp in float64, so memory is bounded by
    one chunk whatever k is, and no exp() of a large log-weight ever overflows.
    """
    if k < 1:
        raise ValueError(f"the number of importance samples must be at least 1, got {k}")
    chunk = min(k, chunk_size or k)
    partial = []
    for start in range(0, k, chunk):
        stop = min(k, start + chunk)
        lw = log_weights(model, x, posterior, noise.draw(start, stop))
        partial.append(torch.logsumexp(lw, dim=0).double())
    return torch.logsumexp(torch.stack(partial), dim=0) - math.log(k)


@torch.no_grad()
def elbo(model, x: torch.Tensor, samples: int = 1, seed: int = 0) -> torch.Tensor:
    """The ELBO of each example (nats, float64), with ``samples`` draws of z, deterministic in ``seed``.

    The examples' noise streams are keyed by their position in ``x``.
    """
    posterior = model.encode(x)
    noise = NoiseSource(seed, ELBO_STREAM, range(x.shape[0]), posterior.mu.shape[1:], x.device, posterior.mu.dtype)
    log_px, kl = elbo_terms(model, x, posterior, noise.draw(0, samples))
    return (log_px - kl).double()


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int = 5000, chunk_size: int | None = None, seed: int = 0) -> torch.Tensor:
    """The importance-weighted estimate of log p(x) per example (nats, float64; Burda et al. 2016).

    A lower bound in expectation that tightens as ``k`` grows; equals the ELBO at k = 1.
    The value does not depend on ``chunk_size`` (only memory and speed do).
    """
    posterior = model.encode(x)
    noise = NoiseSource(seed, IWAE_STREAM, range(x.shape[0]), posterior.mu.shape[1:], x.device, posterior.mu.dtype)
    return iwae_bound(model, x, posterior, noise, k, chunk_size)


def kl_per_dimension(posterior: DiagonalGaussian) -> torch.Tensor:
    """Closed-form KL(q(z_j|x) || N(0, 1)) for each example and latent dimension, shape (B, D)."""
    return 0.5 * (torch.exp(posterior.logvar) + posterior.mu.pow(2) - 1.0 - posterior.logvar)


def active_units(means: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, torch.Tensor]:
    """Burda et al. (2016): dimension j is active when Cov_x(E_q[z_j|x]) > ``threshold``.

    ``means``: the posterior means of N examples, shape (N, D). Returns the count and the
    per-dimension variances across examples.
    """
    if means.ndim != 2 or means.shape[0] < 2:
        raise ValueError(f"active units need the posterior means of at least 2 examples as (N, D), got {tuple(means.shape)}")
    variance = means.double().var(dim=0)
    return int((variance > threshold).sum()), variance


def num_pixels(shape) -> int:
    """Dimensions of one image: channels x height x width."""
    return math.prod(int(s) for s in shape)


def bits_per_dim(nats: float | torch.Tensor, num_dims: int):
    """Nats per image -> bits per dimension: ``nats / (num_dims * ln 2)``."""
    return nats / (num_dims * math.log(2.0))
