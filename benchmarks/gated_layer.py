"""Two ways to compute the gated dense layer ``h(x) * sigmoid(g(x))`` of the VampPrior-paper models,
timed side by side on full training steps (forward, backward, Adam) of the zoo's recipes.

    python benchmarks/gated_layer.py                       # fashion-vae40, -hvae40, -vae40-vamp; 1 thread
    python benchmarks/gated_layer.py configs/fashion-hvae40.yaml --steps 200 --rounds 5

- ``two matmuls``: two Linear layers, a sigmoid and a product (three kernels and their backward);
- ``one matmul + glu``: the two weight matrices stacked into one matmul of twice the width and
  ``F.glu`` (one fused kernel for the gate); the parameters stay two Linear layers, so state
  dicts and checkpoints are unchanged.

The contenders alternate round by round on the same batches, so that the machine's noise hits
both; the ratio of the medians is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import vaezoo
from vaezoo.parts.backbones.gated import GatedDense


def two_matmuls(self, x):
    return self.h(x) * torch.sigmoid(self.g(x))


def one_matmul_glu(self, x):
    weight = torch.cat([self.h.weight, self.g.weight])
    bias = torch.cat([self.h.bias, self.g.bias])
    return F.glu(F.linear(x, weight, bias), dim=-1)


CONTENDERS = {"two matmuls": two_matmuls, "one matmul + glu": one_matmul_glu}


def images_per_second(model, optimizer, batches) -> float:
    started = time.perf_counter()
    for x in batches:
        loss = model(x).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(batches) * batches[0].shape[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=["configs/fashion-vae40.yaml", "configs/fashion-hvae40.yaml",
                                                       "configs/fashion-vae40-vamp.yaml"])
    parser.add_argument("--steps", type=int, default=100, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for config in args.configs:
        torch.manual_seed(0)
        model = vaezoo.create(config).train()
        x = torch.rand(4, *model.config.input_shape)
        outputs = {}
        for name, forward in CONTENDERS.items():
            GatedDense.forward = forward
            torch.manual_seed(1)
            outputs[name] = model(x).loss.item()
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
        batches = [torch.bernoulli(torch.rand(args.batch_size, *model.config.input_shape))
                   for _ in range(args.steps)]
        rates = {name: [] for name in CONTENDERS}
        for _ in range(args.rounds):
            for name, forward in CONTENDERS.items():
                GatedDense.forward = forward
                rates[name].append(images_per_second(model, optimizer, batches))
        base = statistics.median(rates["two matmuls"])
        print(f"{config}: same loss to {abs(outputs['two matmuls'] - outputs['one matmul + glu']):.1e} nats")
        for name, values in rates.items():
            median = statistics.median(values)
            print(f"  {name:>18}: {median:7.0f} img/s (rounds {min(values):.0f}-{max(values):.0f}), "
                  f"{median / base:.2f}x", flush=True)
    GatedDense.forward = two_matmuls


if __name__ == "__main__":
    main()
