"""Your own encoder and decoder, end to end: register, name in a YAML, train, save, push, load by name.

    python examples/custom_backbone_e2e.py                                   # trains, saves, loads back
    HF_TOKEN=hf_... python examples/custom_backbone_e2e.py --repo you/residual-mlp-vae --tag v1   # + push

The parts are registered by decorator below. A checkpoint names its parts and never carries
code, so another Python process loads the pushed model only once the same parts are
registered there: install examples/plugin/ (the same code behind a 'vaezoo.plugins' entry
point), then `vaezoo.load("hf-hub:you/residual-mlp-vae@v1")` works with no import.
"""

import argparse
import math
from pathlib import Path

import torch
from huggingface_hub import get_token
from torch import nn

import vaezoo


def _blocks(width: int, blocks: int) -> nn.ModuleList:
    return nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU()) for _ in range(blocks))


@vaezoo.register_backbone("residual-mlp")  # the arguments after (in_shape, out_features) become YAML fields
class ResidualMLPEncoder(nn.Module):
    def __init__(self, in_shape, out_features, width: int = 256, blocks: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), width))
        self.blocks = _blocks(width, blocks)
        self.head = nn.Linear(width, out_features)

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


@vaezoo.register_backbone("residual-mlp", role="decoder")  # decoders take (in_features, out_shape)
class ResidualMLPDecoder(nn.Module):
    def __init__(self, in_features, out_shape, width: int = 256, blocks: int = 2):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.stem = nn.Linear(in_features, width)
        self.blocks = _blocks(width, blocks)
        self.head = nn.Linear(width, math.prod(out_shape))

    def forward(self, z):
        h = self.stem(z)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h).view(-1, *self.out_shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(Path(__file__).with_name("custom-backbone.yaml")))
    parser.add_argument("--out", default="runs/custom-backbone", help="the run folder (a loadable checkpoint)")
    parser.add_argument("--steps", type=int, help="override trainer.max_steps")
    parser.add_argument("--repo", help="Hub repository to push to, e.g. you/residual-mlp-vae")
    parser.add_argument("--tag", default="v1")
    args = parser.parse_args()

    overrides = {"trainer.max_steps": args.steps} if args.steps else {}
    model, metrics = vaezoo.train(args.config, overrides=overrides, out=args.out)  # writes the run folder
    print(f"trained: {metrics['step']} steps, test -ELBO {metrics['test_neg_elbo']:.1f} nats")
    print(f"saved: {args.out}")

    ref = args.out  # a run folder is a checkpoint: vaezoo.load reads it
    if get_token() is None or args.repo is None:  # HF_TOKEN, or `hf auth login`; HF_ENDPOINT picks the Hub
        print("not pushing: set HF_TOKEN (and HF_ENDPOINT for a Hub other than huggingface.co) "
              "and pass --repo you/name to push")
    else:
        result = model.push_to_hub(args.repo, tag=args.tag)
        print(f"pushed: {args.repo} commit {result.commit} tagged {args.tag}")
        ref = f"hf-hub:{args.repo}@{args.tag}"

    loaded = vaezoo.load(ref)  # rebuilt from the registries by name, then the weights are read
    x = torch.rand(4, *model.input_shape)
    model.eval()
    trained, read = model.state_dict(), loaded.state_dict()
    same_weights = trained.keys() == read.keys() and all(torch.equal(trained[k], read[k]) for k in trained)
    same_outputs = torch.equal(model.reconstruct(x), loaded.reconstruct(x))
    print(f"loaded: {ref} ({type(loaded.encoder).__name__} + {type(loaded.decoder).__name__}), "
          f"same weights: {same_weights}, same reconstructions: {same_outputs}")


if __name__ == "__main__":
    main()
