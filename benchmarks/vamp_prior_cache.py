"""Benchmark: the VampPrior's encoded pseudo-inputs kept across scoring passes, against re-encoding them each pass.

    python benchmarks/vamp_prior_cache.py --model fashion-convhvae40-vamp --images 2 -k 5000
    python benchmarks/vamp_prior_cache.py --model fashion-hvae40-vamp-ft --images 8 -k 5000

The importance-weighted bound calls the prior once per pass of importance samples; before the
cache, every call encoded the K pseudo-inputs again (K = 500 images through the encoder). Both
contenders score the same images with the same seed, alternately, on one thread, in this one
process; the printout is the time of each, their ratio, and the largest difference of the bound
(the cache must not move it: 0 expected).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iwae_nll import load_model, test_binarization  # noqa: E402

from vaezoo.evaluation import resolve_data  # noqa: E402
from vaezoo.parts.priors import VampPrior  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion-convhvae40-vamp")
    parser.add_argument("--weights", help="a safetensors state dict to load into --model's architecture")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("-k", "--iw-samples", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, weights = load_model(args.model, args.weights)
    if not isinstance(model.prior, VampPrior):
        parser.error(f"{args.model} has no VampPrior")
    x = resolve_data("fashion-mnist", limit=args.images, binarize=test_binarization(args.model)).images
    seconds, bounds = {"kept": [], "re-encoded": []}, {}
    original = VampPrior._posteriors
    with torch.no_grad():
        model.iwae(x[:1], k=args.iw_samples // 10, seed=0)  # warm-up: plan and allocations
        for _ in range(args.rounds):
            for name, posteriors in (("kept", original), ("re-encoded", VampPrior.encode_pseudo_inputs)):
                VampPrior._posteriors = posteriors
                try:
                    start = time.perf_counter()
                    bounds[name] = model.iwae(x, k=args.iw_samples, seed=0)
                    seconds[name].append(time.perf_counter() - start)
                finally:
                    VampPrior._posteriors = original
    best = {name: min(times) for name, times in seconds.items()}
    print(f"{args.model} ({weights}), {args.images} test images, k = {args.iw_samples}, one thread, "
          f"best of {args.rounds}")
    for name, value in best.items():
        print(f"  pseudo-inputs {name:<11} {value:7.2f} s   {value / args.images:6.2f} s/image")
    print(f"  ratio {best['re-encoded'] / best['kept']:.2f}x; largest difference of the bound "
          f"{(bounds['kept'] - bounds['re-encoded']).abs().max().item():.2e} nats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
