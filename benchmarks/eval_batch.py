"""Benchmark: the validation forward's speed at each batch size, side by side, and what ``auto`` picks.

    python benchmarks/eval_batch.py fashion-convhvae40 fashion-conv64 fashion-mlp16 --threads 1

For each zoo config (fresh weights: the speed does not depend on their values), the evaluation
forward of the training loop's validation (eval mode, no gradients, float32, channels-last where
the run would use it) on the same binarized Fashion-MNIST-shaped images, at each of
``trainer.eval_batch_size: auto``'s candidates, in rounds that alternate the sizes (a busy machine
slows them alike). It prints images per second, the ratio to 1,024 (the former fixed default) and
the size the run's timing would choose.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import vaezoo
from vaezoo.training.eval_batch import CANDIDATES
from vaezoo.training.recipe import wants_channels_last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="zoo config names")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="per size and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.models:
        model = vaezoo.create(name).eval()
        channels_last = wants_channels_last("auto", model, torch.device("cpu"))
        x = torch.rand(CANDIDATES[-1], *model.input_shape, generator=torch.Generator().manual_seed(0)).bernoulli()
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        rates = {size: [] for size in CANDIDATES}
        with torch.no_grad():
            for _ in range(args.rounds):
                for size in CANDIDATES:
                    model(x[:size])  # warm-up
                    done, start = 0, time.perf_counter()
                    while time.perf_counter() - start < args.seconds:
                        model(x[:size])
                        done += size
                    rates[size].append(done / (time.perf_counter() - start))
        best = {size: max(values) for size, values in rates.items()}
        chosen = max(best, key=best.get)
        print(f"{name} ({args.threads} thread{'s' if args.threads > 1 else ''}, channels-last {channels_last}):")
        for size, rate in best.items():
            mark = "  <- auto" if size == chosen else ""
            print(f"  batch {size:>5}: {rate:8.0f} images/s  x{rate / best[CANDIDATES[-1]]:.2f} of 1024{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
