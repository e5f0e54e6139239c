"""``vaezoo train CONFIG [--set a.b=v ...] [--out DIR] [--resume DIR] [--data ROOT] [--device DEV]``.

Also under ``torchrun --nproc-per-node N -m vaezoo train ...``: every process runs this
command; the trainer joins the process group that torchrun describes, and rank 0 alone
prints and writes files.
"""

from __future__ import annotations

import argparse
import sys

from ..config import parse_set_args
from ..training import train
from .arguments import device_name

__all__ = ["add_commands", "RUN_KEPT"]

RUN_KEPT = "the run folder keeps its last checkpoint, if one was written: --resume DIR continues from it"


def _cmd_train(args: argparse.Namespace) -> int:
    if args.config is None and args.resume is None:
        print("error: give a CONFIG (a zoo name or a YAML file), or --resume DIR to continue a run",
              file=sys.stderr)
        return 2
    overrides = parse_set_args(args.set)
    _, metrics = train(args.config, overrides, out=args.out, resume=args.resume or False,
                       data_root=args.data, device=args.device, allow_changes=args.allow_changes)
    if metrics and _is_main():
        scores = [f"{split} {label} {metrics[f'{split}_{key}']:.3f}" for split in ("val", "test")
                  for key, label in (("neg_elbo", "-ELBO"), ("loss", "loss"))
                  if metrics.get(f"{split}_{key}") is not None]
        chosen = f" (the weights of epoch {metrics['selected_epoch']}, selected on validation)" \
            if metrics.get("selected_epoch") else ""
        print(f"{', '.join(scores) or 'not scored'} nats/image after {metrics['step']} steps{chosen}", file=sys.stderr)
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def add_commands(commands) -> None:
    p = commands.add_parser(
        "train", help="train a model from a config; resumable, multi-GPU through torchrun",
        description="Train a model and write a run folder in Hub layout (config.json, model.safetensors, "
                    "README.md) plus metrics.jsonl, loss.png, samples.png and checkpoints/. Resumable after a "
                    "crash; under torchrun, on several processes.\n\n"
                    "A short trial (400 steps, about a minute on a CPU; its samples.png already shows clothes, "
                    "loss.png the loss per step):\n"
                    "  vaezoo train fashion-mlp16 --out runs/trial --set trainer.max_steps=400 "
                    "--set trainer.val_limit=1000 --set trainer.test=never\n"
                    "Ctrl-C stops after a checkpoint (--resume continues); `vaezoo info NAME --resolved` shows "
                    "every setting first.\n"
                    "Examples:\n  vaezoo train configs/fashion-conv64.yaml --set trainer.epochs=5 --out runs/fc64\n"
                    "  vaezoo train --resume runs/fc64\n"
                    "  torchrun --nproc-per-node 2 -m vaezoo train configs/fashion-conv64.yaml --out runs/ddp",
    )
    p.add_argument("config", nargs="?", help="a zoo name or a YAML config (optional with --resume)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. trainer.epochs=5 (repeatable)")
    p.add_argument("--out", metavar="DIR", help="the run folder (default: runs/<name>, or the --resume folder)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--data", metavar="ROOT", help="folder holding the dataset's files (overrides data.root)")
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: continue even though the recipe changed (batch size, seed, optimizer, ...)")
    p.add_argument("--device", type=device_name, help="cpu, cuda, cuda:1, ... (default: trainer.device, auto)")
    p.set_defaults(func=_cmd_train, interrupted=RUN_KEPT)
