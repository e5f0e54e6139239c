"""What using each published model costs on one CPU thread: ms per image to sample, encode and score.

    python benchmarks/model_costs.py                      # every published model, printed
    python benchmarks/model_costs.py fashion-vae40-ema fashion-vqvae --record   # into the registry entries

Each model is timed in this one process on one thread (``torch.set_num_threads(1)``), so that the
numbers compare across models and with a user's laptop core. Each figure is the best of
``--repeats`` timed calls after one untimed call (the first call pays for allocation and
kernel choice): sampling 64 images from the prior (a VQ-VAE's through its code prior, pixel by
pixel of its code grid), encoding 256 test images, one -ELBO draw of 256 test images, and the
importance-weighted bound at k = 5000 (the published protocol) of 2 test images. Ratios to the
first model are printed beside the milliseconds; ``--record`` writes the figures into each
entry's ``costs`` (pinned to its weights' sha256) and docs/models.md shows them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch

import vaezoo
from vaezoo.data import fashion_mnist
from vaezoo.maintenance.publish import add_costs
from vaezoo.models.base import CodeLatents, PointLatents

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

IWAE_K = 5000


def best_ms(call: Callable[[], object], images: int, repeats: int) -> float:
    """Milliseconds per image of the fastest of ``repeats`` calls, after one untimed call."""
    call()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return 1000 * best / images


@torch.no_grad()
def costs_of(name: str, test: torch.Tensor, labels: torch.Tensor, repeats: int) -> dict[str, Optional[float]]:
    model = vaezoo.load(name)
    torch.manual_seed(0)
    x, y = test[:256], labels[:256] if model.conditional else None
    bounded = not isinstance(model, PointLatents)
    scores: dict[str, Optional[float]] = {
        "sample_ms": best_ms(lambda: model.sample(64), 64, repeats),
        "encode_ms": best_ms(lambda: model.encode(x, y) if model.conditional else model.encode(x), 256, repeats),
        "elbo_ms": best_ms(lambda: model.elbo(x, y=y) if model.conditional else model.elbo(x), 256, repeats)
        if bounded else None,
        "iwae_ms": None,
    }
    if bounded and not isinstance(model, CodeLatents):  # a deterministic code posterior: the ELBO is every bound
        pair, pair_y = x[:2], None if y is None else y[:2]
        iwae = (lambda: model.iwae(pair, IWAE_K, y=pair_y)) if model.conditional else (lambda: model.iwae(pair, IWAE_K))
        scores["iwae_ms"] = best_ms(iwae, 2, max(1, repeats // 3))
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="published names (default: every one)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per figure; the best counts (default 3)")
    parser.add_argument("--record", action="store_true", help="write the figures into the registry entries")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.names or vaezoo.list_models(pretrained=True)
    data = fashion_mnist(None)
    test, labels = data.test_images.float() / 255, data.test_labels
    hardware = f"1 thread of a {cpu_name()}"
    print(f"{hardware}; ms per image (ratio to {names[0]})")
    print(f"{'model':<26} {'sample':>15} {'encode':>15} {'-ELBO':>15} {f'IWAE k={IWAE_K}':>17}")
    first: dict[str, Optional[float]] = {}
    for name in names:
        scores = costs_of(name, test, labels, args.repeats)
        first = first or scores

        def cell(key: str, width: int) -> str:
            if scores[key] is None:
                return f"{'-':>{width}}"
            ratio = f" ({scores[key] / first[key]:.2g}x)" if first.get(key) else ""
            return f"{scores[key]:>{width - len(ratio)}.3g}{ratio}"

        print(f"{name:<26} {cell('sample_ms', 15)} {cell('encode_ms', 15)} {cell('elbo_ms', 15)} "
              f"{cell('iwae_ms', 17)}", flush=True)
        if args.record:
            add_costs(name, {**scores, "iwae_k": IWAE_K if scores["iwae_ms"] else None, "hardware": hardware,
                             "threads": 1, "command": f"python benchmarks/model_costs.py {name} --record"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
