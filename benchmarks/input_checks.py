"""What the model's input checks cost a training step: the same steps with the checks and with
them switched off, alternating round by round in one process; prints the time ratio.

    python benchmarks/input_checks.py                  # fashion-mlp16 at batch 128 and fashion-conv64 at 1024
    python benchmarks/input_checks.py --rounds 7 --steps 30

A training step reaches ``encode``, which checks the values too where reading one back stalls
nothing (a CPU tensor: one reduction per batch) and the layout alone on a GPU (shape and dtype, no
values read: see vaezoo/models/inputs.py). Both checks are also timed alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import vaezoo
from vaezoo.models.base import BaseVAE
from vaezoo.passes import StepContext
from vaezoo.training.loader import Batch
from vaezoo.training.recipe import build_optimizer
from vaezoo.training.step import train_step


def time_steps(model, optimizer, scheduler, batch, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, {"model": optimizer}, {"model": scheduler}, batch, StepContext(torch.ones(()), 0, 50_000),
                   micro_batch_size=None, grad_clip=None, autocast_dtype=None, device_type="cpu")
    return (time.perf_counter() - start) / steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per contender per round (conv64: a quarter)")
    args = parser.parse_args(argv)
    checked = BaseVAE.check_input
    for name, batch_size, steps in (("fashion-mlp16", 128, args.steps), ("fashion-conv64", 1024, max(2, args.steps // 4))):
        torch.manual_seed(0)
        model = vaezoo.create(name)
        optimizer = build_optimizer(model.parameters(), vaezoo.get_config(name).trainer.optimizer, torch.device("cpu"))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        batch = Batch(torch.rand(batch_size, *model.input_shape))
        time_steps(model, optimizer, scheduler, batch, 2)  # warm-up
        ratios = []
        for _ in range(args.rounds):
            on = time_steps(model, optimizer, scheduler, batch, steps)
            BaseVAE.check_input = lambda self, x, values=True, what="x": x
            try:
                off = time_steps(model, optimizer, scheduler, batch, steps)
            finally:
                BaseVAE.check_input = checked
            ratios.append(on / off)
        alone = {}
        for what, values in (("layout", False), ("CPU value", None)):
            started = time.perf_counter()
            for _ in range(1000):
                model.check_input(batch.x, values=values)
            alone[what] = (time.perf_counter() - started) / 1000
        print(f"{name} batch {batch_size}: step {on * 1e3:.2f} ms with checks; time ratio checks on/off "
              f"median {statistics.median(ratios):.4f} (rounds {', '.join(f'{r:.3f}' for r in ratios)}); "
              + "; ".join(f"the {what} check alone {t * 1e6:.1f} us = {100 * t / on:.3f}% of a step"
                          for what, t in alone.items()))


if __name__ == "__main__":
    main()
