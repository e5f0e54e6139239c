"""The importance-weighted bound as a training loss (``iwae``)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from pydantic import PositiveInt

from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["IWAEObjective"]


@register_objective("iwae")
class IWAEObjective(Objective):
    """The importance-weighted bound as the training loss (Burda, Grosse & Salakhutdinov 2016,
    "Importance weighted autoencoders"):

        loss = -mean_b logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],  z_k ~ q(z|x)

    with ``k`` reparameterized draws per example (of every level, p and q joint over the levels
    for a hierarchy). At k = 1 it is the single-sample Monte Carlo ELBO; it tightens towards
    log p(x) as k grows. KL warm-up (``kl_scale``) scales ``log p(z_k) - log q(z_k|x)`` inside
    the weights. For logging, ``recon`` and the KL terms are means over the k draws, and ``elbo``
    is their k-sample ELBO per example (so the IWAE bound, ``-loss``, is at least as large);
    ``z`` and ``likelihood`` are those of the first draw.
    """

    def __init__(self, k: PositiveInt = 5):
        super().__init__()
        self.k = k

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, self.k), y)
        log_prior_ratio = draw.log_weights() - draw.log_px  # log p(z) - log q(z|x), (k, B)
        bound = torch.logsumexp(draw.log_px + context.kl_scale * log_prior_ratio, dim=0) - math.log(self.k)
        kls = draw.kl_terms()
        first = model.squeeze_draw(draw.z)
        return ModelOutput(
            loss=-bound.mean(), terms={"recon": -draw.log_px.mean(), **{n: kl.mean() for n, kl in kls.items()}},
            elbo=(draw.log_px - sum(kls.values())).mean(dim=0), z=first, posterior=model.posterior_of(draw),
            likelihood=draw.likelihood if self.k == 1 else (lambda: model.decode(first, y)),
        )
