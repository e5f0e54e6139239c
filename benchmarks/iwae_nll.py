"""Benchmark: the importance-weighted NLL (k = 5000) of a model, contenders side by side on the same test images.

    python benchmarks/iwae_nll.py --model fashion-conv64 --limit 8 --threads 1,2 --peer
    python benchmarks/iwae_nll.py --model fashion-convhvae40 --weights runs/fashion-convhvae40/checkpoints/best.safetensors

In one process, for each thread count, on the same test images and k:

- ``plain``: a float32 loop through the model's contract: ``latent_pass(x, eps).log_weights()``
  (encode, decode, log p(x|z) + log p(z) - log q(z|x)) on 8 images x 250 samples per pass, then a
  log-sum-exp; eager, contiguous tensors, what a user writes first;
- ``vaezoo``: ``vaezoo.evaluate`` with its defaults (the scoring plan of ``vaezoo.fastpath``:
  bf16 decoder where ``auto`` says so, pass size timed on this machine, compiled decoder); the
  one-time timing of pass sizes (cached) is done before, and shown apart;
- ``vaezoo-float32``: the same with ``precision="float32"`` (compiled float32 decoder);
- ``pythae`` (``--peer``, one-level models): pythae 0.1.2's ``VAE.get_nll`` on the same
  encoder and decoder modules and weights (wrapped in pythae's encoder/decoder classes), its
  batch of 250 samples per pass for one image at a time (``pip install pythae==0.1.2``).

Prints images/s, the ratio to ``plain``, the NLL of each (the same images: they should agree
within the Monte Carlo error; the plain loop and vaezoo share the noise only in distribution)
and the extrapolation to the 10,000 test images. The model loads by name, folder or Hub
reference; ``--weights`` loads a safetensors state dict (a training run's best checkpoint)
into the architecture of ``--model``; without published weights the architecture's fresh
weights time the same (said in the output).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from safetensors.torch import load_file

import vaezoo
from pythae_networks import pythae_networks
from vaezoo.devices import describe_device
from vaezoo.evaluation import resolve_data
from vaezoo.fastpath.calibration import cache_path
from vaezoo.zoo import get_config

FULL_TEST = 10_000
PLAIN_IMAGES, PLAIN_SAMPLES = 8, 250


def load_model(name: str, weights: str | None):
    if weights:
        model = vaezoo.create(name)
        model.load_state_dict(load_file(weights))
        return model.eval(), f"weights {weights}"
    try:
        return vaezoo.load(name), "pretrained"
    except Exception as exc:  # no published weights here: the architecture alone sets the cost
        print(f"note: {name} weights unavailable ({str(exc).splitlines()[0]}); timing fresh weights", file=sys.stderr)
        torch.manual_seed(0)
        return vaezoo.create(name).eval(), "fresh weights (same architecture)"


def test_binarization(name: str) -> str | None:
    """The protocol's test images: binarized once where the zoo config trains on binarized data."""
    try:
        data = get_config(name).data
    except Exception:  # a folder or a Hub reference: grayscale unless the user binarizes
        return None
    return "static" if data.binarize != "none" else None


def plain_loop(model, images: torch.Tensor, k: int) -> torch.Tensor:
    """log p(x) estimates, float32 eager, 8 images x 250 samples per pass."""
    generator = torch.Generator().manual_seed(0)
    values = []
    with torch.no_grad():
        for first in range(0, images.shape[0], PLAIN_IMAGES):
            x = images[first: first + PLAIN_IMAGES]
            sums = []
            for start in range(0, k, PLAIN_SAMPLES):
                eps = torch.randn(min(PLAIN_SAMPLES, k - start), x.shape[0], *model.noise_shape, generator=generator)
                sums.append(torch.logsumexp(model.latent_pass(x, eps).log_weights().double(), dim=0))
            values.append(torch.logsumexp(torch.stack(sums), dim=0) - math.log(k))
    return torch.cat(values)


def pythae_nll(model, images: torch.Tensor, k: int) -> float:
    """pythae 0.1.2's get_nll with the same encoder and decoder modules (one-level models only)."""
    from pythae.models import VAE, VAEConfig

    encoder, decoder = pythae_networks(model)

    config = VAEConfig(input_dim=tuple(model.input_shape), latent_dim=model.latent_dim, reconstruction_loss="bce")
    peer = VAE(config, encoder=encoder, decoder=decoder).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        return -float(peer.get_nll(images, n_samples=k, batch_size=PLAIN_SAMPLES))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion-conv64", help="zoo name, folder or hf-hub: reference")
    parser.add_argument("--weights", help="a safetensors state dict to load into --model's architecture")
    parser.add_argument("--limit", type=int, default=8, help="test images (default 8)")
    parser.add_argument("-k", "--iw-samples", type=int, default=5000)
    parser.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2 (default 1)")
    parser.add_argument("--peer", action="store_true", help="also time pythae 0.1.2's get_nll (one-level models)")
    parser.add_argument("--no-float32", action="store_true", help="skip the compiled float32 contender")
    parser.add_argument("--data", help="the dataset's folder (else VAEZOO_DATA, ...)")
    args = parser.parse_args(argv)

    model, weights = load_model(args.model, args.weights)
    binarize = test_binarization(args.model)
    images = resolve_data("fashion-mnist", limit=args.limit, root=args.data, binarize=binarize).images
    k = args.iw_samples
    print(f"model      {args.model} ({weights}, {model.num_parameters():,} parameters), k={k}, "
          f"{images.shape[0]} test images{' (binarized once)' if binarize else ''}; torch {torch.__version__}")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        print(f"\n{describe_device(torch.device('cpu'))}")
        results = {}

        def run(name, score):
            start = time.perf_counter()
            nll = score()
            seconds = time.perf_counter() - start
            results[name] = (images.shape[0] / seconds, nll)

        def evaluate(precision):
            return vaezoo.evaluate(model, images, iw_samples=k, elbo_samples=1, batch_size=8, precision=precision,
                                   progress=False)

        start = time.perf_counter()  # the one-time calibration (cached), and the plan it gave
        report = vaezoo.evaluate(model, images, iw_samples=k, elbo_samples=1, batch_size=8, progress=False)
        plan = {key: report.protocol[key] for key in ("decoder_arithmetic", "decodes_per_pass", "decoder_compiled")}
        print(f"plan       {plan} ({report.timing['decodes_per_pass_chosen']}; first call "
              f"{time.perf_counter() - start:.0f} s with the timing, cache {cache_path()})")
        run("plain", lambda: -plain_loop(model, images, k).mean().item())
        run("vaezoo", lambda: evaluate("auto")["iwae_nll"])
        if not args.no_float32:
            evaluate("float32")  # its own calibration and compile, untimed
            run("vaezoo-float32", lambda: evaluate("float32")["iwae_nll"])
        if args.peer:
            run("pythae", lambda: pythae_nll(model, images, k))
        base = results["plain"][0]
        print(f"{'contender':<16} {'images/s':>9} {'x plain':>8} {'NLL':>10} {'10,000 images':>14}")
        for name, (rate, nll) in results.items():
            print(f"{name:<16} {rate:>9.3f} {rate / base:>8.2f} {nll:>10.3f} {FULL_TEST / rate / 3600:>12.2f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
