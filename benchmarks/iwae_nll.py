"""Benchmark: importance-weighted NLL (k = 5000) on the Fashion-MNIST test set for fashion-conv64.

    python benchmarks/iwae_nll.py --limit 8                   # 8 test images, CPU
    python benchmarks/iwae_nll.py --limit 500 --device cuda --batch-size 50 --chunk-size 1000
    python benchmarks/iwae_nll.py --model fashion-resnet32 --limit 8 --sweep-chunks 64,256

Loads the pretrained ``fashion-conv64`` (``vaezoo.load``); where no weights are published or
reachable it builds the same architecture with fresh weights, which costs exactly the same
time (say so when you quote the figure). Prints images/s and the extrapolated time for all
10,000 test images. ``--compare`` also times ``VAE.iwae`` (global-RNG noise, one encode per
chunk) on the same images in the same process, to show what the deterministic per-example
noise of ``vaezoo.evaluate`` costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import flops_per_importance_sample, peak_flops  # noqa: E402

import vaezoo  # noqa: E402
from vaezoo.evaluation import resolve_data  # noqa: E402
from vaezoo.evaluation.evaluate import default_chunk_size  # noqa: E402

FULL_TEST = 10_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion-conv64", help="pretrained name, hf-hub: ref or folder")
    parser.add_argument("--limit", type=int, default=8, help="test images to run (default 8)")
    parser.add_argument("-k", "--iw-samples", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch")
    parser.add_argument("--chunk-size", type=int, help="importance samples per image per decoder call "
                        "(default: vaezoo.evaluate's, 2048 / batch size or 128 / batch size for conv decoders on CPU)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--data", help="Fashion-MNIST folder (else VAEZOO_DATA, ...)")
    parser.add_argument("--compare", action="store_true", help="also time VAE.iwae on the same images")
    parser.add_argument("--sweep-chunks", help="comma-separated chunk sizes to time against --chunk-size on the "
                        "same images, e.g. 16,64,256 (prints time ratios)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    try:
        model, weights = vaezoo.load(args.model), "pretrained"
    except Exception as exc:  # no published weights here: the architecture alone sets the cost
        print(f"note: {args.model} weights unavailable ({str(exc).splitlines()[0]}); timing fresh weights of the "
              "same architecture", file=sys.stderr)
        torch.manual_seed(0)  # the same fresh weights every run, so the printed NLL repeats too
        model, weights = vaezoo.create(args.model), "fresh (same architecture)"
    model = model.to(device).eval()
    images = resolve_data("fashion-mnist", limit=args.limit, root=args.data).images

    # Warm-up outside the timed region: first-call allocations, cuDNN autotuning, thread pools.
    vaezoo.evaluate(model, images[:1], iw_samples=min(args.iw_samples, 64), elbo_samples=1, batch_size=1)
    def timed_evaluate(chunk: int):
        _sync(device)
        start = time.perf_counter()
        report = vaezoo.evaluate(model, images, iw_samples=args.iw_samples, elbo_samples=1,
                                 batch_size=args.batch_size, chunk_size=chunk)
        _sync(device)
        return report, time.perf_counter() - start

    chunk = args.chunk_size or default_chunk_size(model, device, args.batch_size)
    report, seconds = timed_evaluate(chunk)
    rate = images.shape[0] / seconds
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"model      {args.model} ({weights}, {model.num_parameters():,} parameters)")
    print(f"device     {name}; torch {torch.__version__}")
    print(f"protocol   k={args.iw_samples}, {images.shape[0]} test images, batch {args.batch_size}, "
          f"chunk {chunk}")
    print(f"NLL        {report['iwae_nll']:.2f} nats ({report['nll_bpd']:.4f} bits/dim) on this subset")
    print(f"speed      {rate:.3f} images/s = {rate * args.iw_samples:,.0f} decoder evaluations/s")
    full = FULL_TEST / rate
    print(f"full test  {FULL_TEST:,} images: about {full:,.0f} s ({full / 3600:.2f} h), extrapolated")
    flops = flops_per_importance_sample(model, images[0].to(device))
    peak, how = peak_flops(device, "fp32")  # the bound is computed in float32
    achieved = rate * args.iw_samples * flops
    print(f"compute    {flops / 1e6:.2f} MFLOP per importance sample; {achieved / 1e9:,.1f} GFLOP/s = "
          f"{100 * achieved / peak:.1f}% of the fp32 peak ({how})")

    if args.sweep_chunks:
        print(f"chunk sweep (samples decoded per pass = chunk x batch {args.batch_size}; ratio = time / chunk "
              f"{chunk}'s)")
        for other_chunk in (int(c) for c in args.sweep_chunks.split(",")):
            other, took = timed_evaluate(other_chunk)
            print(f"  chunk {other_chunk:>5}  {images.shape[0] / took:.3f} images/s  ratio {took / seconds:.2f}  "
                  f"NLL {other['iwae_nll']:.4f}")

    if args.compare:
        torch.manual_seed(0)
        _sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            for i in range(0, images.shape[0], args.batch_size):
                model.iwae(images[i: i + args.batch_size].to(device), args.iw_samples, chunk_size=chunk)
        _sync(device)
        baseline = time.perf_counter() - start
        print(f"VAE.iwae   {images.shape[0] / baseline:.3f} images/s; evaluate / VAE.iwae time ratio "
              f"{seconds / baseline:.2f} (evaluate also computes the ELBO, KL and active units)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
