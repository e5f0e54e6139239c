"""How long a slider move takes in `vaezoo explore`: the page's request, the decode and the PNG, over HTTP.

    python benchmarks/explore_latency.py                        # the default models, 2 threads
    python benchmarks/explore_latency.py fashion-conv64 --moves 200 --threads 1

For each model, one explorer server in this process, started from test image 0; then ``--moves``
slider moves as the page sends them (POST /api/decode with the state, one dimension moved by 0.05),
each timed from the request to the last byte of the answer, as a browser's fetch would see it (the
browser's own drawing of the PNG is left out: under a millisecond for these sizes). Prints the
median, the 95th percentile and the worst move, and the median's ratio to the first model's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request

import torch

import vaezoo
from vaezoo.data import fashion_mnist
from vaezoo.explore import Explorer, serve

DEFAULT_MODELS = ["fashion-vae40-ema", "fashion-conv64", "fashion-resnet32", "fashion-hvae40-ema", "fashion-cvae",
                  "fashion-vqvae", "fashion-gumbel"]


def post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def moved(state: dict, card: dict, step: int) -> dict:
    """The state after the page's next slider (or category, or code) move."""
    state = json.loads(json.dumps(state))
    if "latents" in state:
        level = [lv for lv in card["levels"] if lv.get("decoder_reads", True)][-1]
        dim = level["order"][0]
        state["latents"][level["name"]][dim] = -3.0 + 0.05 * (step % 120)
    elif "categories" in state:
        state["categories"][0] = step % card["levels"][0]["categories"]
    else:
        state["codes"][0][0] = step % card["levels"][0]["codebook_size"]
    return state


def measure(name: str, images: torch.Tensor, labels: torch.Tensor, moves: int) -> list[float]:
    model = vaezoo.load(name)
    explorer = Explorer(model, name, images, labels)
    server, _ = serve(explorer)
    try:
        card = explorer.card()
        state = json.loads(post(server.url + "api/base", {"source": "test", "index": 0}))
        state = {k: v for k, v in state.items() if k not in ("image", "input")}
        post(server.url + "api/decode", state)  # the first call pays for allocation
        times = []
        for step in range(moves):
            body = moved(state, card, step)
            started = time.perf_counter()
            post(server.url + "api/decode", body)
            times.append(1000 * (time.perf_counter() - started))
        return times
    finally:
        server.shutdown()
        server.server_close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    test = fashion_mnist(None)
    images, labels = test.test_images[:500].float() / 255, test.test_labels[:500]
    print(f"slider move to decoded PNG over HTTP, {args.moves} moves, {args.threads} thread(s)")
    print(f"{'model':<22} {'median ms':>10} {'p95 ms':>8} {'worst ms':>9} {'ratio':>6}")
    first = None
    for name in args.models:
        times = sorted(measure(name, images, labels, args.moves))
        median = statistics.median(times)
        first = first or median
        p95 = times[int(0.95 * (len(times) - 1))]
        print(f"{name:<22} {median:>10.1f} {p95:>8.1f} {times[-1]:>9.1f} {median / first:>6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
