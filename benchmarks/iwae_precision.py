"""Benchmark: does the fast scoring path move the NLL? float32 against the fast path, same images, same noise.

    python benchmarks/iwae_precision.py --model fashion-conv64 --limit 1000 -o runs/bench/precision-conv64.json
    python benchmarks/iwae_precision.py --model fashion-convhvae40 --weights runs/fashion-convhvae40/checkpoints/best.safetensors --limit 100 -o runs/bench/precision-convhvae40.json

Each batch of test images is scored twice along ``vaezoo.evaluate``'s scoring plan with the same
seed and the same image indices, hence the same z draws: once in float32 (the reference: the
compiled float32 decoder, the same arithmetic as eager float32 in another order) and once with
``--fast`` (default ``auto``: what ``vaezoo eval`` uses on this machine). It prints the mean
difference of the NLL (fast - float32) with its standard error, the spread and the largest
difference per image, and the time ratio. The rule of ``vaezoo.fastpath.plan``: the fast path
is a default only where the mean difference stays under 0.02 nats on 1,000 test images at
k = 5000. ``-o`` keeps every image's pair of values; a rerun with the same settings resumes
from it (each batch is written as it finishes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iwae_nll import load_model, test_binarization  # noqa: E402

from vaezoo.devices import describe_device  # noqa: E402
from vaezoo.evaluation import resolve_data  # noqa: E402
from vaezoo.fastpath import plan_scoring  # noqa: E402
from vaezoo.maintenance.publish import add_arithmetic_check  # noqa: E402
from vaezoo.models.bounds import planned_iwae_bound  # noqa: E402
from vaezoo.ops.noise import IWAE_STREAM, NoiseSource  # noqa: E402

THRESHOLD = 0.02  # nats: the mean difference under which the fast path may be a default


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion-conv64")
    parser.add_argument("--weights", help="a safetensors state dict to load into --model's architecture")
    parser.add_argument("--limit", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("-k", "--iw-samples", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", default="auto", choices=["auto", "bfloat16"], help="the fast path's precision")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--data", help="the dataset's folder (else VAEZOO_DATA, ...)")
    parser.add_argument("-o", "--output", help="JSON of every image's values; resumed from when it exists")
    parser.add_argument("--record", action="store_true",
                        help="record the check in the published name's registry entry (its IWAE figure's arithmetic)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model, weights = load_model(args.model, args.weights)
    binarize = test_binarization(args.model)
    images = resolve_data("fashion-mnist", limit=args.limit, root=args.data, binarize=binarize).images
    settings = {"model": args.model, "weights": weights, "k": args.iw_samples, "seed": args.seed, "fast": args.fast,
                "binarize": binarize}
    done = {"settings": settings, "float32": [], "fast": [], "seconds": {"float32": 0.0, "fast": 0.0}}
    out = Path(args.output) if args.output else None
    if out is not None and out.exists():
        previous = json.loads(out.read_text())
        if previous.get("settings") == settings:
            done = previous
    print(f"{args.model} ({weights}), k={args.iw_samples}, {images.shape[0]} test images"
          f"{' binarized once' if binarize else ''}, seed {args.seed}; {describe_device(torch.device('cpu'))}; "
          f"{len(done['float32'])} done before", file=sys.stderr)
    precisions = {"float32": "float32", "fast": args.fast}
    with torch.no_grad():  # one plan and one prepared decoder per precision, for the whole run
        plans = {name: plan_scoring(model, images[:1], precision=precision, decodes=args.iw_samples * images.shape[0])
                 for name, precision in precisions.items()}
    decoders = {name: plan.decoder(model) for name, plan in plans.items()}
    for name, plan in plans.items():
        print(f"  {name}: {plan.protocol()}", file=sys.stderr)
    started = time.perf_counter()
    first_new = len(done["float32"])
    for first in range(first_new, images.shape[0], args.batch_size):
        x = images[first: first + args.batch_size]
        for name, plan in plans.items():
            start = time.perf_counter()
            noise = NoiseSource(args.seed, IWAE_STREAM, range(first, first + x.shape[0]), model.noise_shape)
            with torch.no_grad(), model.decoding_with(decoders[name]):
                values = planned_iwae_bound(model, x, noise, args.iw_samples, plan)
            done["seconds"][name] += time.perf_counter() - start
            done[name] += [-v for v in values.tolist()]  # NLL per image
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(done) + "\n")
        finished = first + x.shape[0]
        rate = (finished - first_new) / (time.perf_counter() - started)
        print(f"  {finished}/{images.shape[0]} images, ETA {(images.shape[0] - finished) / rate / 60:.1f} min",
              file=sys.stderr, flush=True)

    reference, fast = torch.tensor(done["float32"], dtype=torch.float64), torch.tensor(done["fast"], dtype=torch.float64)
    diff = fast - reference
    n = diff.numel()
    stderr = diff.std().item() / math.sqrt(n) if n > 1 else float("nan")
    ratio = done["seconds"]["float32"] / done["seconds"]["fast"]
    print(f"model            {args.model} ({weights}), k={args.iw_samples}, {n} test images, seed {args.seed}")
    print(f"NLL float32      {reference.mean().item():.4f} nats")
    print(f"NLL fast ({args.fast})  {fast.mean().item():.4f} nats")
    print(f"mean difference  {diff.mean().item():+.4f} ± {stderr:.4f} nats (fast - float32; threshold {THRESHOLD})")
    print(f"per image        spread (s.d.) {diff.std().item():.4f}, largest |difference| {diff.abs().max().item():.4f}")
    print(f"time             fast path {ratio:.2f}x faster than float32 (compiled) on these images")
    verdict = "within" if abs(diff.mean().item()) < THRESHOLD else "NOT within"
    print(f"verdict          {verdict} the threshold on {n} images")
    if args.record:
        if args.weights or weights != "pretrained" or args.iw_samples != 5000 or args.seed != 0:
            print("--record takes a published name's shipped weights at k = 5000, seed 0 (the published protocol)",
                  file=sys.stderr)
            return 2
        command = f"python benchmarks/iwae_precision.py --model {args.model} --limit {n} --record"
        path = add_arithmetic_check(args.model, "iwae_nll", n, reference.mean().item(), fast.mean().item(), stderr,
                                    command)
        print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
