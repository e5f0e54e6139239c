"""What ``trainer.ema_decay`` buys: the same recipe trained with the raw weights and with moving
averages of them, side by side in one run, each scored on the validation split every epoch.

    python benchmarks/weight_average.py                                   # fashion-vae40, 30 epochs
    python benchmarks/weight_average.py configs/fashion-vae40.yaml --epochs 60 --decays 0.999 0.9995
    python benchmarks/weight_average.py --set trainer.scheduler.name=constant   # no learning-rate decay

Every contender starts from the same seed, sees the same batches and takes the same optimizer
steps (the average never feeds back into training), so the differences are the averaging's
alone. Prints each one's validation -ELBO at the end and at its best epoch, and the gain in nats
over the raw weights. Validation only: the test split is not touched.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import torch

import vaezoo
from vaezoo.config import parse_set_args
from vaezoo.training.records import read_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default="configs/fashion-vae40.yaml")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--decays", type=float, nargs="+", default=[0.999])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=None, help="folder holding the dataset's files")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of the recipe for every contender (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for decay in [None, *args.decays]:
            label = "raw weights" if decay is None else f"ema_decay {decay}"
            out = Path(scratch) / label.replace(" ", "-")
            overrides = {**parse_set_args(args.set), "trainer.epochs": args.epochs, "trainer.ema_decay": decay,
                         "trainer.test": "never", "trainer.select": "last"}
            vaezoo.train(args.config, overrides=overrides, out=out, data_root=args.data, stream=io.StringIO())
            curve = [r["val_neg_elbo"] for r in read_metrics(out)]
            results[label] = (curve[-1], min(curve), 1 + curve.index(min(curve)))
            print(f"{label:>20}: validation -ELBO {curve[-1]:.3f} at the end, {min(curve):.3f} at its best "
                  f"(epoch {results[label][2]})", flush=True)
    raw_end, raw_best, _ = results["raw weights"]
    print(f"\n{args.config} {' '.join(args.set)}, {args.epochs} epochs; gain over the raw weights in nats (positive: better)")
    for label, (end, best, _) in results.items():
        if label != "raw weights":
            print(f"{label:>20}: {raw_end - end:+.3f} at the end, {raw_best - best:+.3f} at the best epochs")


if __name__ == "__main__":
    main()
