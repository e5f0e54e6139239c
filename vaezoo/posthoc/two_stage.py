"""The two-stage VAE's second stage fitted on a trained model's codes, as its new prior to sample
from (Dai & Wipf 2019): see :class:`vaezoo.parts.priors.two_stage.TwoStagePrior`."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from ..errors import UsageError
from ..parts.priors.two_stage import TwoStagePrior
from ..schemas import PriorSpec
from .fitted_prior import _iterate_images

__all__ = ["fit_two_stage", "code_moments"]


@torch.no_grad()
def code_moments(model: nn.Module, images, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and standard deviation of q(z_top|x) for every image (float32, on the model's
    device); a deterministic encoder's standard deviation is zero."""
    was_training = model.training
    model.eval()
    reference = next(model.parameters())
    means, stds = [], []
    for batch in _iterate_images(images):
        for chunk in batch.split(batch_size):
            scale = 1.0 if chunk.is_floating_point() else 1.0 / 255.0  # uint8 pixels -> [0, 1]
            q = model.encode_top(chunk.to(reference.device, reference.dtype) * scale)
            std = getattr(q, "stddev", None)
            if std is None:
                raise UsageError(f"the two-stage prior is fitted on Gaussian or point codes; q(z|x) of this model is "
                                 f"{type(q).__name__}")
            means.append(q.mean.float())
            stds.append(std.float())
    model.train(was_training)
    return torch.cat(means), torch.cat(stds)


def fit_two_stage(
    model: nn.Module,
    images,
    *,
    depth: int = 3,
    width: int = 1024,
    epochs: int = 20,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    progress: Optional[Callable[[int, int], None]] = None,
) -> nn.Module:
    """Replace ``model.prior`` by a second-stage VAE trained on its codes of ``images``.

    Each epoch draws one code z ~ q(z|x) per training image (the first stage's encoder, frozen,
    in eval mode) and trains the second stage on them with Adam at ``lr`` over shuffled batches;
    the rate decays on a cosine to a twentieth by the last epoch. Deterministic for ``seed`` (its own generator:
    the global RNG is untouched). ``model.config.prior`` becomes ``{name: two-stage, depth, width}``,
    so ``save_pretrained`` then ``vaezoo.load`` rebuilds it. ``progress(done, total)`` counts
    epochs. Returns the model."""
    if not hasattr(model, "encode_top") or "prior" not in type(model.config).model_fields or model.conditional:
        raise UsageError(f"the two-stage prior replaces an unconditional top latent's prior; the "
                         f"'{model.config.family}' family has none")
    mean, std = code_moments(model, images)
    device = mean.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stage = TwoStagePrior(model.prior.latent_dim, depth=depth, width=width).to(device)
    optimizer = torch.optim.Adam(stage.parameters(), lr=lr)
    steps = epochs * math.ceil(mean.shape[0] / batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    stage.train()
    for epoch in range(epochs):
        codes = mean + std * torch.randn(mean.shape, generator=generator).to(device)
        order = torch.randperm(codes.shape[0], generator=generator).to(device)
        for first in range(0, codes.shape[0], batch_size):
            z = codes[order[first:first + batch_size]]
            eps = torch.randn(z.shape, generator=generator).to(device)
            loss, _ = stage.stage_loss(z, eps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    stage.eval()
    for parameter in stage.parameters():
        parameter.requires_grad_(False)
    reference = next(model.parameters())
    model.prior = stage.to(device=reference.device, dtype=reference.dtype)
    # a copy, so an ExperimentConfig sharing the old ModelConfig object is left as it was
    model.config = model.config.model_copy(update={"prior": PriorSpec(name="two-stage", depth=depth, width=width)})
    model.bind_prior()
    return model
