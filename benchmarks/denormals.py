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
import copy
import statistics
import time

import torch

import vaezoo
from vaezoo.data.splits import load_splits
from vaezoo.training.warm_start import initialize_priors_from_data, warm_start


def steps(model, optimizer, batches) -> tuple[float, list[float]]:
    started, losses = time.perf_counter(), []
    for x in batches:
        loss = model(x).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return len(batches) * batches[0].shape[0] / (time.perf_counter() - started), losses


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
    gen = torch.Generator().manual_seed(0)
    grey = splits.train.float() / 255

    def batches(n):
        picks = [torch.randint(0, grey.shape[0], (experiment.trainer.batch_size,), generator=gen) for _ in range(n)]
        return [torch.bernoulli(grey[p], generator=gen) for p in picks]

    torch.set_flush_denormal(True)
    steps(model, optimizer, batches(args.warmup))
    rates, gap = {True: [], False: []}, 0.0
    for r in range(args.rounds):
        round_batches = batches(args.steps)
        state = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
        losses = {}
        for flush in (False, True):  # the same batches from the same weights and moments
            model.load_state_dict(state[0])
            optimizer.load_state_dict(copy.deepcopy(state[1]))  # it adopts the tensors it is given
            torch.set_flush_denormal(flush)
            torch.manual_seed(r)  # the same reparameterization noise
            rate, losses[flush] = steps(model, optimizer, round_batches)
            rates[flush].append(rate)
        gap = max(gap, max(abs(a - b) for a, b in zip(losses[False], losses[True])))
    torch.set_flush_denormal(False)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"{args.config}, {args.threads} thread(s), {args.rounds} rounds of {args.steps} steps after {args.warmup}:")
    print(f"  denormals kept:    {off:8.0f} images/s")
    print(f"  denormals flushed: {on:8.0f} images/s   {on / off:.2f}x")
    print(f"  largest loss difference on the same batch: {gap:.2e} nats")


if __name__ == "__main__":
    main()
