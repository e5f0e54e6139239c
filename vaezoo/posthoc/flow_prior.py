"""A masked or inverse autoregressive flow fitted by maximum likelihood on a trained model's
posterior means, as its new prior (pythae's MAFSampler and IAFSampler): see
:mod:`vaezoo.parts.priors.autoregressive`."""

from __future__ import annotations

import math
from typing import Callable, Literal, Optional

import torch
from torch import nn

from ..errors import UsageError
from ..parts.priors.autoregressive import IAFPrior, MAFPrior
from ..schemas import PriorSpec
from .codes import check_replaceable_prior, code_moments, cosine_schedule, install_prior

__all__ = ["fit_flow_prior", "FLOW_PRIORS"]

FLOW_PRIORS = {"maf": MAFPrior, "iaf": IAFPrior}


def fit_flow_prior(
    model: nn.Module,
    images,
    kind: Literal["maf", "iaf"] = "maf",
    *,
    blocks: int = 2,
    hidden: tuple[int, ...] = (128, 128, 128),
    epochs: int = 20,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    progress: Optional[Callable[[int, int], None]] = None,
) -> nn.Module:
    """Replace ``model.prior`` by a ``kind`` flow fitted on the posterior means of ``images``.

    Maximum likelihood with Adam at ``lr`` over shuffled batches, the rate on a cosine to a twentieth
    by the last epoch; deterministic for ``seed`` (its own generator: the global RNG is untouched).
    An IAF's density inverts it dimension by dimension, so it fits about ``latent_dim`` times slower
    than a MAF. ``model.config.prior`` becomes ``{name: kind, blocks, hidden}``, so ``save_pretrained``
    then ``vaezoo.load`` rebuilds it, and the bounds of the model then use this prior (it has an exact
    density). ``progress(done, total)`` counts epochs. Returns the model."""
    if kind not in FLOW_PRIORS:
        raise UsageError(f"kind must be one of {', '.join(FLOW_PRIORS)}, got {kind!r}")
    check_replaceable_prior(model, "a flow prior")
    codes, _ = code_moments(model, images)
    device = codes.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        flow = FLOW_PRIORS[kind](model.prior.latent_dim, blocks=blocks, hidden=tuple(hidden)).to(device)
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    schedule = cosine_schedule(optimizer, epochs * math.ceil(codes.shape[0] / batch_size))
    flow.train()
    for epoch in range(epochs):
        order = torch.randperm(codes.shape[0], generator=generator).to(device)
        for first in range(0, codes.shape[0], batch_size):
            loss = -flow.log_prob(codes[order[first:first + batch_size]]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    return install_prior(model, flow, PriorSpec(name=kind, blocks=blocks, hidden=list(hidden)))
