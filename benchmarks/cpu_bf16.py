"""Training steps in float32 and under bf16 autocast, side by side, on the CPU.

    python benchmarks/cpu_bf16.py                                   # four recipes, 1 thread
    python benchmarks/cpu_bf16.py configs/fashion-convhvae40.yaml --steps 20 --rounds 5
    python benchmarks/cpu_bf16.py configs/fashion-vae40-ema.yaml --train-steps 1000

CPUs with AMX tiles or AVX-512 BF16 (Intel Sapphire Rapids and newer, AMD Zen 4 and newer)
multiply bf16 matrices natively; without them bf16 is emulated and slower than float32. Each
recipe's model is built as the training loop builds it (its memory format included), then the
two precisions alternate round by round from the same weights and optimizer moments on the same
dynamically binarized batches and reparameterization noise. Printed per recipe: the img/s of
each (medians), the ratio, and the largest gap of the two losses on one batch.

``--train-steps N`` also trains two copies from the same start for N steps, one per precision,
and scores both on 2,000 validation images in float32: what bf16 costs in nats, if anything.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
from functools import partial

import torch

import vaezoo
from vaezoo.data.splits import load_splits
from vaezoo.evaluation import evaluate
from vaezoo.devices import native_cpu_bf16

from side_by_side import alternate, binarized_batches, timed_steps

DEFAULT_CONFIGS = ["configs/fashion-vae40-ema.yaml", "configs/fashion-hvae40-vamp.yaml",
                   "configs/fashion-convhvae40.yaml", "configs/fashion-pixelvae40.yaml"]
BF16 = partial(torch.autocast, "cpu", dtype=torch.bfloat16)
SETTINGS = {"fp32": (contextlib.nullcontext, contextlib.nullcontext), "bf16": (contextlib.nullcontext, BF16)}


def compare(config: str, splits, args) -> None:
    experiment = vaezoo.get_config(config)
    torch.manual_seed(experiment.trainer.seed)
    model = vaezoo.create(config).train()
    layout = torch.channels_last if model.prefers_channels_last(torch.device("cpu")) else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.trainer.optimizer.lr)
    batches = binarized_batches(splits.train, experiment.trainer.batch_size, layout)
    timed_steps(model, optimizer, batches(args.warmup))
    start = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    rates, gap = alternate(model, optimizer, batches, SETTINGS, args.rounds, args.steps)
    print(f"{experiment.name:28s} fp32 {rates['fp32']:8.1f} img/s   bf16 {rates['bf16']:8.1f} img/s   "
          f"bf16/fp32 {rates['bf16'] / rates['fp32']:5.2f}x   largest loss gap {gap:.3f} nats", flush=True)
    if args.train_steps:
        scores, steps = {}, batches(args.train_steps)
        for name, (_, forward) in SETTINGS.items():
            model.load_state_dict(start[0])
            optimizer.load_state_dict(copy.deepcopy(start[1]))
            torch.manual_seed(0)
            timed_steps(model, optimizer, steps, forward)
            scores[name] = evaluate(model.eval(), splits.val[:2000], iw_samples=0, elbo_samples=1,
                                    binarize="dynamic", progress=False)["neg_elbo"]
            model.train()
        print(f"{'':28s} after {args.train_steps} more steps, validation -ELBO (float32, 2,000 images): "
              f"fp32-trained {scores['fp32']:.3f}, bf16-trained {scores['bf16']:.3f} nats "
              f"(bf16 - fp32 = {scores['bf16'] - scores['fp32']:+.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--warmup", type=int, default=20, help="float32 training steps before timing")
    parser.add_argument("--steps", type=int, default=20, help="training steps per precision per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=0, help="also train N steps in each and compare")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", help="the dataset's folder (default: found as training finds it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {native_cpu_bf16()}")
    splits = load_splits(vaezoo.get_config(args.configs[0]).data, args.data)
    for config in args.configs:
        compare(config, splits, args)


if __name__ == "__main__":
    main()
