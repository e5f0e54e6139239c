"""Per-example bounds on log p(x) from a model's latent passes: the ELBO's terms and the IWAE bound.

Both take the noise explicitly, so the evaluation can key it per example (results that do not
depend on batch or chunk sizes); ``posterior`` replaces the encoder's q for the one-level
families (refined posteriors, non-amortized inference).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from ..errors import UsageError
from ..fastpath import ScoringPlan

__all__ = ["elbo_terms", "iwae_bound", "planned_iwae_bound"]


def elbo_terms(model, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
               posterior: Any = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(E_q log p(x|z), {KL term name: KL}) per example, (B,) each, averaged over the S draws in
    ``eps`` (S, B, *model.noise_shape)."""
    draw = model.latent_pass(x, eps, y, posterior=posterior)
    return draw.log_px.mean(dim=0), {name: kl.mean(dim=0) for name, kl in draw.kl_terms().items()}


def iwae_bound(model, x: torch.Tensor, noise, k: int, chunk_size: int, y: Optional[torch.Tensor] = None,
               posterior: Any = None) -> torch.Tensor:
    """``logmeanexp_k log w_k`` per example (float64), decoding ``chunk_size`` samples per example at once.

    Each chunk is reduced to its own log-sum-exp (stable: the max is taken out), and the chunks'
    values are combined by a final log-sum-exp in float64, so memory is bounded by one chunk
    whatever k is, and no exp() of a large log-weight ever overflows. ``noise.draw(start, stop)``
    gives samples start..stop-1 of every example.
    """
    if k < 1:
        raise UsageError(f"the number of importance samples must be at least 1, got {k}")
    chunk = min(k, max(1, chunk_size))
    partial = []
    for start in range(0, k, chunk):
        stop = min(k, start + chunk)
        log_w = model.latent_pass(x, noise.draw(start, stop), y, posterior=posterior).log_weights()
        partial.append(torch.logsumexp(log_w, dim=0).double())
    return torch.logsumexp(torch.stack(partial), dim=0) - math.log(k)


def planned_iwae_bound(model, x: torch.Tensor, noise, k: int, plan: ScoringPlan, y: Optional[torch.Tensor] = None,
                       posterior: Any = None) -> torch.Tensor:
    """:func:`iwae_bound` in the passes of ``plan``: ``plan.images_per_pass`` images at a time, each
    with ``plan.samples_per_pass`` samples per decoder pass. The caller holds
    ``model.decoding_with(plan.decoder(model))``. A given ``posterior`` covers the whole batch,
    which then goes through as one group; else a family that ``takes_posterior`` encodes each
    group once, not once per pass. The values do not depend on the plan's shapes: the noise is
    keyed per example."""
    group = x.shape[0] if posterior is not None else plan.images_per_pass(x.shape[0])
    values = []
    for first in range(0, x.shape[0], group):
        stop = min(x.shape[0], first + group)
        images, labels = x[first:stop], None if y is None else y[first:stop]
        q = posterior if posterior is not None else model.encode(images, labels) if model.takes_posterior else None
        values.append(iwae_bound(model, images, noise.subset(first, stop), k, plan.samples_per_pass(stop - first),
                                 labels, q))
    return values[0] if len(values) == 1 else torch.cat(values)
