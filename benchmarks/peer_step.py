"""One training step of vaezoo and pythae 0.1.2 compared: the same initial weights, batch and draws,
both libraries' losses and their gradients in every encoder and decoder tensor.

    python benchmarks/peer_step.py   # every pair listed in SAME_DRAWS

Where ``peer_pythae.py`` finds two libraries apart after training, this separates the function
being optimized from the trajectory: equal losses and gradients on one step mean the gap comes from
training dynamics (batch order, selection), not from the loss. The pairs are ``peer_pythae.py``'s;
the ones listed here draw their noise in the same order in both libraries (the posterior's draw,
then the prior's), so one seed gives both the same draws. An autoencoder's two losses differ by a
constant, 784/2 log(pi) = 448.73 nats: vaezoo's Gaussian of variance 1/2 normalizes the squared error
that pythae sums; their gradients are the same. The adversarial autoencoder's loss is its model update's
(pythae's ``autoencoder_loss``), the one its encoder and decoder step on.
"""

from __future__ import annotations

import argparse

import torch

import vaezoo
from peer_pythae import PAIRS, experiment, pythae_model
from vaezoo.data.splits import load_splits
from vaezoo.passes import StepContext

SAME_DRAWS = ("vae", "beta", "betatc", "annealed", "infovae", "vamp", "iaf", "ae", "wae", "aae")
# what the training loop tells each library's loss: the training set's size (the total correlation's
# estimate), and a point of the capacity schedule where both are at C = 50 nats (vaezoo's line ends at
# step 2,750; pythae's stairs reach it at epoch 5)
TRAINING_SET = 55_000
VAEZOO_CONTEXT = StepContext(dataset_size=TRAINING_SET, step=2750)
PYTHAE_KWARGS = {"dataset_size": TRAINING_SET, "epoch": 5}


def compare(name: str, batch: int, seed: int) -> None:
    pair = PAIRS[name]
    config = experiment(pair, epochs=1, seed=seed)
    torch.manual_seed(seed)
    model = vaezoo.create(config)
    peer = pythae_model(pair, model)
    x = load_splits(vaezoo.get_config(config).data).train[:batch].float() / 255
    params = [*model.encoder.parameters(), *model.decoder.parameters()]
    torch.manual_seed(seed + 1)
    ours = model(x, context=VAEZOO_CONTEXT).loss
    torch.manual_seed(seed + 1)
    output = peer({"data": x}, **PYTHAE_KWARGS)
    # an adversarial model's loss adds its discriminator's, which pythae steps with another optimizer
    theirs = output["autoencoder_loss"] if "autoencoder_loss" in output else output.loss
    gaps = [float((a - b).norm() / a.norm()) for a, b in
            zip(torch.autograd.grad(ours, params), torch.autograd.grad(theirs, params))]
    print(f"{name:8} loss vaezoo {ours.item():.6f}  pythae {theirs.item():.6f}  (difference {(ours - theirs).item():.4f})  "
          f"largest relative gradient difference {max(gaps):.2e} over {len(gaps)} tensors")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=SAME_DRAWS, default=list(SAME_DRAWS))
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.models:
        compare(name, args.batch, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
