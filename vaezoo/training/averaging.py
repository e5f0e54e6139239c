"""An exponential moving average of the weights (``trainer.ema_decay``): the weights a run
validates, selects and exports, while the optimizer keeps stepping the raw ones.

Averaging the last few thousand steps' weights smooths the noise of the final steps of SGD
(Polyak & Juditsky 1992); for VAEs it is a cheap fraction of a nat. The decay warms up as
``min(decay, (1 + n) / (10 + n))`` after n updates, so that the average forgets the random
initialization within the first epochs instead of over 1 / (1 - decay) steps. Floating-point
buffers (BatchNorm's running statistics) are averaged like the parameters, integer ones copied.

The step count lives on the host and the update is one foreach lerp on the device: no host-device
sync per step (``torch.optim.swa_utils.AveragedModel`` reads its device-side count back each step).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """``module``: a copy of the model holding the averaged weights (in eval mode, no gradients)."""

    def __init__(self, model: nn.Module, decay: float, updates: int = 0):
        self.decay, self.updates = float(decay), int(updates)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average towards ``model``'s weights (call after each optimizer step)."""
        self.updates += 1
        weight = 1.0 - self.current_decay()
        averaged, current = [], []
        for mine, theirs in zip(self._tensors(self.module), self._tensors(model), strict=True):
            if mine.is_floating_point():
                averaged.append(mine)
                current.append(theirs.detach())
            else:
                mine.copy_(theirs)
        if averaged:
            torch._foreach_lerp_(averaged, current, weight)

    @staticmethod
    def _tensors(model: nn.Module) -> list[torch.Tensor]:
        # read each time: moving a module (memory format, device) replaces its buffer tensors
        return [*model.parameters(), *model.buffers()]
