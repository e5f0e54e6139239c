"""The two-stage VAE's second stage fitted on a trained model's codes, as its new prior to sample
from (Dai & Wipf 2019): see :class:`vaezoo.parts.priors.two_stage.TwoStagePrior`."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from ..parts.priors.two_stage import TwoStagePrior
from ..schemas import PriorSpec
from .codes import check_replaceable_prior, code_moments, cosine_schedule, install_prior

__all__ = ["fit_two_stage"]


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
    in eval mode) and trains the second stage on them with Adam at ``lr`` over shuffled batches,
    the rate on a cosine to a twentieth by the last epoch. Deterministic for ``seed`` (its own
    generator: the global RNG is untouched). ``model.config.prior`` becomes ``{name: two-stage,
    depth, width}``, so ``save_pretrained`` then ``vaezoo.load`` rebuilds it. ``progress(done,
    total)`` counts epochs. Returns the model."""
    check_replaceable_prior(model, "the two-stage prior")
    mean, std = code_moments(model, images)
    device = mean.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stage = TwoStagePrior(model.prior.latent_dim, depth=depth, width=width).to(device)
    optimizer = torch.optim.Adam(stage.parameters(), lr=lr)
    schedule = cosine_schedule(optimizer, epochs * math.ceil(mean.shape[0] / batch_size))
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
    return install_prior(model, stage, PriorSpec(name="two-stage", depth=depth, width=width))
