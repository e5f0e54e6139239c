"""What every prior fitted after training shares: the codes it is fitted on, its learning-rate
schedule, and how it replaces the model's prior."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from ..errors import UsageError
from ..ops.point import PointPosterior
from ..schemas import PriorSpec

__all__ = ["iterate_images", "code_moments", "check_replaceable_prior", "cosine_schedule", "install_prior"]


def iterate_images(images) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        yield images
        return
    for batch in images:  # a DataLoader or a list of batches; (x, y) pairs give x
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def check_replaceable_prior(model: nn.Module, what: str) -> None:
    if not hasattr(model, "encode_top") or "prior" not in type(model.config).model_fields or model.conditional:
        raise UsageError(f"{what} replaces an unconditional top latent's prior; the '{model.config.family}' "
                         f"family has none")


@torch.no_grad()
def code_moments(model: nn.Module, images, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and standard deviation of q(z_top|x) for every image (float32, on the model's
    device); a deterministic encoder's standard deviation is zero."""
    was_training = model.training
    model.eval()
    reference = next(model.parameters())
    means, stds = [], []
    for batch in iterate_images(images):
        for chunk in batch.split(batch_size):
            scale = 1.0 if chunk.is_floating_point() else 1.0 / 255.0  # uint8 pixels -> [0, 1]
            q = model.encode_top(chunk.to(reference.device, reference.dtype) * scale)
            std = torch.zeros_like(q.mean) if isinstance(q, PointPosterior) else getattr(q, "stddev", None)
            if std is None:
                raise UsageError(f"a prior is fitted here on Gaussian or point codes; q(z|x) of this model is "
                                 f"{type(q).__name__}")
            means.append(q.mean.float())
            stds.append(std.float())
    model.train(was_training)
    return torch.cat(means), torch.cat(stds)


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate on a cosine from its value to a twentieth of it at step ``steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))


def install_prior(model: nn.Module, prior: nn.Module, spec: PriorSpec) -> nn.Module:
    """``prior``, frozen, becomes ``model.prior`` and ``spec`` its config entry, so that
    ``save_pretrained`` then ``vaezoo.load`` rebuild it."""
    prior.eval()
    for parameter in prior.parameters():
        parameter.requires_grad_(False)
    reference = next(model.parameters())
    model.prior = prior.to(device=reference.device, dtype=reference.dtype)
    # a copy, so an ExperimentConfig sharing the old ModelConfig object is left as it was
    model.config = model.config.model_copy(update={"prior": spec})
    model.bind_prior()
    return model
