"""Training steps under two or more settings, side by side: the settings alternate round by round
from the same weights, optimizer moments, batches and reparameterization noise, so that a noisy
machine slows them alike and their losses can be compared batch by batch."""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from typing import Callable, ContextManager

import torch

Context = Callable[[], ContextManager]
# A setting: one context entered around a round's steps (a CPU flag), one around each forward
# pass (autocast: the backward pass runs outside it, as torch.autocast asks).
Setting = tuple[Context, Context]


def timed_steps(model, optimizer, batches, forward: Context = contextlib.nullcontext) -> tuple[float, list[float]]:
    """Images/s of training steps on ``batches`` with ``forward`` entered for each forward pass,
    and the loss of each step."""
    started, losses = time.perf_counter(), []
    for x in batches:
        with forward():
            loss = model(x).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return len(batches) * batches[0].shape[0] / (time.perf_counter() - started), losses


def binarized_batches(images: torch.Tensor, batch_size: int,
                      layout: torch.memory_format = torch.contiguous_format) -> Callable[[int], list]:
    """``make(n)``: ``n`` random batches of ``images`` (uint8), dynamically binarized, one fixed
    stream of draws."""
    gen = torch.Generator().manual_seed(0)
    grey = images.float() / 255

    def make(n: int) -> list[torch.Tensor]:
        picks = [torch.randint(0, grey.shape[0], (batch_size,), generator=gen) for _ in range(n)]
        return [torch.bernoulli(grey[p], generator=gen).contiguous(memory_format=layout) for p in picks]

    return make


def alternate(model, optimizer, make_batches: Callable[[int], list], settings: dict[str, Setting], rounds: int,
              steps: int) -> tuple[dict[str, float], float]:
    """The median images/s of each setting over ``rounds`` rounds of ``steps`` steps, and the
    largest gap between two settings' losses on one batch. Each round starts every setting from
    the weights and optimizer state the model had before the round."""
    rates: dict[str, list[float]] = {name: [] for name in settings}
    gap = 0.0
    for r in range(rounds):
        batches = make_batches(steps)
        start = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
        losses = {}
        for name, setting in settings.items():
            model.load_state_dict(start[0])
            optimizer.load_state_dict(copy.deepcopy(start[1]))  # it adopts the tensors it is given
            torch.manual_seed(r)  # the same reparameterization noise
            around_round, forward = setting
            with around_round():
                rate, losses[name] = timed_steps(model, optimizer, batches, forward)
            rates[name].append(rate)
        runs = list(losses.values())
        gap = max(gap, *(abs(a - b) for other in runs[1:] for a, b in zip(runs[0], other)))
    return {name: statistics.median(r) for name, r in rates.items()}, gap
