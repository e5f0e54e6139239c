"""Training steps with and without denormal floats flushed to zero, side by side, on the CPU.

    python benchmarks/denormals.py                                   # fashion-vae40-vamp-ft, 1 thread
    python benchmarks/denormals.py configs/fashion-hvae40-vamp.yaml --steps 100 --rounds 5

A VampPrior's pseudo-inputs get tiny gradients, and Adam keeps their squares: numbers below
1.2e-38 that x86 CPUs handle on a slow path. The training loop flushes them to zero
(``torch.set_flush_denormal``). The recipe's model is built as the training loop builds it (its
``trainer.init_from`` weights, its data-initialized pseudo-inputs), trained for ``--warmup``
steps so that the optimizer state is what it is mid-run, then the two settings alternate round
by round on the same real, dynamically binarized batches; the ratio of the medians is printed,
with the largest difference of the losses the two settings give on the same batch.
"""

from __future__ import annotations

import argparse
import contextlib
from functools import partial

import torch

import vaezoo
from vaezoo.data.splits import load_splits
from vaezoo.training.warm_start import initialize_priors_from_data, warm_start

from side_by_side import alternate, binarized_batches, timed_steps


@contextlib.contextmanager
def flush_denormal(flush: bool):
    torch.set_flush_denormal(flush)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default="configs/fashion-vae40-vamp-ft.yaml")
    parser.add_argument("--warmup", type=int, default=100, help="training steps before timing")
    parser.add_argument("--steps", type=int, default=50, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", help="the dataset's folder (default: found as training finds it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    experiment = vaezoo.get_config(args.config)
    splits = load_splits(experiment.data, args.data, expected_shape=tuple(experiment.model.input_shape))
    torch.manual_seed(experiment.trainer.seed)
    model = vaezoo.create(args.config).train()
    copied = warm_start(model, experiment.trainer.init_from)[0] if experiment.trainer.init_from else set()
    initialize_priors_from_data(model, splits.train, experiment.trainer.seed, skip=copied)
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.trainer.optimizer.lr)
    batches = binarized_batches(splits.train, experiment.trainer.batch_size)
    with flush_denormal(True):
        timed_steps(model, optimizer, batches(args.warmup))
    settings = {"kept": (partial(flush_denormal, False), contextlib.nullcontext),
                "flushed": (partial(flush_denormal, True), contextlib.nullcontext)}
    rates, gap = alternate(model, optimizer, batches, settings, args.rounds, args.steps)
    on, off = rates["flushed"], rates["kept"]
    print(f"{args.config}, {args.threads} thread(s), {args.rounds} rounds of {args.steps} steps after {args.warmup}:")
    print(f"  denormals kept:    {off:8.0f} images/s")
    print(f"  denormals flushed: {on:8.0f} images/s   {on / off:.2f}x")
    print(f"  largest loss difference on the same batch: {gap:.2e} nats")


if __name__ == "__main__":
    main()
