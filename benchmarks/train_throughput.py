"""Training throughput of fashion-conv64: the seed notebook's loop against vaezoo's loop.

Both train the same architecture (5,997,825 parameters) at batch 1024 with Adam, lr 1e-3, on
Fashion-MNIST, alternating round by round in one process so that a noisy machine slows both
alike. Prints img/s per round, the medians, the ratio vaezoo/seed, the FLOPs of one training
image and the fraction of the machine's peak FLOP/s that each loop reaches.

    python benchmarks/train_throughput.py                       # CPU, the defaults
    python benchmarks/train_throughput.py --device cuda --steps 50 --rounds 5
    python benchmarks/train_throughput.py --set trainer.micro_batch_size=null   # vaezoo without a knob

The vaezoo side runs ``vaezoo.train`` itself (the loop users run) for ``--steps`` optimizer
steps and reads the img/s it reports for its training steps (its evaluation is not timed).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed_notebook  # noqa: E402
from machine import flops_per_training_image, peak_flops  # noqa: E402

import vaezoo  # noqa: E402
from vaezoo.config import parse_set_args  # noqa: E402
from vaezoo.data.splits import load_splits  # noqa: E402

# Settings that only pick how vaezoo computes, not what: on a CPU, 128-image micro-batches
# keep the working set in cache (the gradient is the same batch-mean gradient).
CPU_DEFAULTS = {"trainer.micro_batch_size": 128}


def run_seed(net, optimizer, loader, device, steps: int) -> float:
    start = time.perf_counter()
    seen = seed_notebook.train_steps(net, optimizer, loader, device, steps)
    return seen / (time.perf_counter() - start)


def run_vaezoo(overrides: dict, device: str, steps: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        _, metrics = vaezoo.train("fashion-conv64", {**overrides, "trainer.max_steps": steps, "trainer.epochs": 1,
                                                     "trainer.log_every": steps},
                                  out=Path(out) / "run", device=device, stream=io.StringIO())
    return metrics["img_per_s"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per contender per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override vaezoo's config (e.g. trainer.compile=true)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    overrides = {**(CPU_DEFAULTS if device.type == "cpu" else {}), "data.val_size": 1024, **parse_set_args(args.set)}

    splits = load_splits(vaezoo.get_config("fashion-conv64").data)
    images = torch.cat([splits.train, splits.val])
    labels = torch.cat([splits.train_labels, splits.val_labels])
    torch.manual_seed(0)
    net = seed_notebook.VAE().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = seed_notebook.make_loader(images, labels, batch_size=1024)

    print(f"fashion-conv64, batch 1024, {args.steps} steps per contender per round, {args.rounds} rounds")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"vaezoo overrides: {overrides}")
    run_seed(net, optimizer, loader, device, 2)  # warm-up: allocator, kernels
    seed_rates, vaezoo_rates = [], []
    for r in range(args.rounds):
        seed_rates.append(run_seed(net, optimizer, loader, device, args.steps))
        vaezoo_rates.append(run_vaezoo(overrides, args.device, args.steps))
        print(f"round {r + 1}: seed {seed_rates[-1]:8.1f} img/s   vaezoo {vaezoo_rates[-1]:8.1f} img/s   "
              f"ratio {vaezoo_rates[-1] / seed_rates[-1]:.2f}", flush=True)
    seed_med, vaezoo_med = statistics.median(seed_rates), statistics.median(vaezoo_rates)

    model = vaezoo.create("fashion-conv64").to(device)
    flops = flops_per_training_image(model, (1, 28, 28), device)
    bf16 = device.type == "cuda" and vaezoo.get_config("fashion-conv64", overrides).trainer.precision != "fp32"
    peak, how = peak_flops(device, "bf16" if bf16 else "fp32")
    print(f"\nmedian img/s: seed {seed_med:.1f}, vaezoo {vaezoo_med:.1f}; vaezoo/seed = {vaezoo_med / seed_med:.2f}x")
    print(f"FLOPs per training image (forward + backward): {flops / 1e6:.1f} MFLOP")
    print(f"peak: {peak / 1e9:.0f} GFLOP/s ({how})")
    for name, rate in (("seed", seed_med), ("vaezoo", vaezoo_med)):
        print(f"  {name:6s} {rate * flops / 1e9:8.1f} GFLOP/s = {100 * rate * flops / peak:5.1f}% of peak")


if __name__ == "__main__":
    main()
