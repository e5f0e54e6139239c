"""The objective contract: ``objective(model, x, y, context) -> ModelOutput``."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from ...passes import ModelOutput, StepContext

__all__ = ["Objective", "DEFAULT_CONTEXT", "MAIN_UPDATE"]

DEFAULT_CONTEXT = StepContext()


MAIN_UPDATE = "model"  # the optimizer over the model's own parameters, the one every model has


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
    # The training contract (docs/families.md). A training step is a sequence of updates, each
    # of one named optimizer over its parameter group, on the loss that ``update_loss`` gives
    # for that name. By default there is one, ``model``, over every parameter, on ``forward``'s
    # loss. An objective that trains a network of its own (a discriminator) returns it from
    # ``training_parts``: it gets an optimizer and an update of its name, its state is kept in
    # training checkpoints, and it stays out of the published weights.
    # ``default_optimizers``: the settings of those optimizers where the config gives none
    # (a paper's recipe), field by field: ``{"discriminator": {"lr": 1e-4, "betas": [0.5, 0.9]}}``.
    # An update whose loss carries no graph (detached) is held for that step: nothing moves.
    default_optimizers: dict[str, dict[str, Any]] = {}

    def bind(self, model) -> None:
        """Build what depends on the assembled model (a discriminator's input size); called once
        by the factory after the family is built. A ValueError names what does not fit."""

    def training_parts(self) -> dict[str, nn.Module]:
        """``{name: module}``: networks trained beside the model, each by its own optimizer."""
        return {}

    def model_groups(self, model) -> dict[str, list[nn.Parameter]]:
        """``{update: parameters}``: parameters of the model itself that an update other than ``model``
        trains (PIWAE's encoder, by its own bound); every other parameter stays in ``model``'s group.
        Unlike a training part they stay in the published weights, and their optimizer takes
        ``trainer.optimizer``'s settings unless ``trainer.optimizers.<update>`` sets its own."""
        return {}

    def updates(self) -> tuple[str, ...]:
        """The optimizers a training step updates, in order: ``model``, then each training part."""
        return (MAIN_UPDATE, *self.training_parts())

    def update_loss(self, name: str, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                    context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        """The loss of update ``name`` on a batch, with its named terms; ``model``'s is ``forward``."""
        if name == MAIN_UPDATE:
            return self(model, x, y, context)
        raise KeyError(f"objective {type(self).__name__} has no update {name!r}; it has {', '.join(self.updates())}")

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        raise NotImplementedError
