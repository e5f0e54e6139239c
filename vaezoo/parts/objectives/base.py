"""The objective contract: ``objective(model, x, y, context) -> ModelOutput``."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ...passes import ModelOutput, StepContext

__all__ = ["Objective", "DEFAULT_CONTEXT"]

DEFAULT_CONTEXT = StepContext()


class Objective(nn.Module):
    """Base class. ``y`` holds the batch's labels (None when the data has none); ``context`` the
    run's facts at this step: ``context.kl_scale`` multiplies the objective's own KL weight (the
    trainer's KL warm-up). Objectives work through ``model.latent_pass``, which every family
    with latent levels provides, so one objective serves the flat and the hierarchical models.

    ``batch_statistics``: the loss of an example depends on the other examples of the batch
    (beta-TCVAE's q(z)); under DDP such an objective reads the global batch through
    ``context.gather_batch``, and micro-batches change its math."""

    batch_statistics = False
    # the latents it works on: "gaussian" (through model.latent_pass) or "codes" (a VQ model's
    # model.code_pass); a family refuses an objective for the other kind
    latents = "gaussian"

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        raise NotImplementedError
