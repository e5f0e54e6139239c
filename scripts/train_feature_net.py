"""Train the ``fashion-v1`` feature network and write it to registry/features/ (float16 safetensors
and the JSON record that pins its sha256, recipe, seed and accuracy).

    python scripts/train_feature_net.py                      # the shipped recipe
    python scripts/train_feature_net.py --epochs 1 --out /tmp/features --limit 2000   # a quick trial

Training uses the 50,000 training images of the zoo's split (seeded hold-out of 10,000 for
validation, the same as every model's); the epoch is selected on validation accuracy; the test
set is scored once, at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import platform
from pathlib import Path

import torch
from safetensors.torch import save_file

from vaezoo.data.splits import load_splits
from vaezoo.data.binarize import to_float_images
from vaezoo.features.fashion import FEATURES_FOLDER, VERSION_TAG
from vaezoo.features.training import FeatureNetRecipe, accuracy, train_feature_net
from vaezoo.resources import registry_dir
from vaezoo.schemas import DataConfig


def main() -> None:
    defaults = FeatureNetRecipe()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--data", help="folder holding the Fashion-MNIST files (default: as the product finds it)")
    parser.add_argument("--limit", type=int, help="train on the first N training images only (a trial)")
    parser.add_argument("--out", type=Path, default=registry_dir() / FEATURES_FOLDER)
    args = parser.parse_args()

    recipe = dataclasses.replace(defaults, epochs=args.epochs, seed=args.seed)
    config = DataConfig(dataset="fashion-mnist", val_size=10000)
    splits = load_splits(config, root=args.data)
    train, train_labels = to_float_images(splits.train), splits.train_labels
    if args.limit:
        train, train_labels = train[: args.limit], train_labels[: args.limit]
    val, val_labels = to_float_images(splits.val), splits.val_labels
    result = train_feature_net(train, train_labels, val, val_labels, recipe)
    test_accuracy = accuracy(result.net, to_float_images(splits.test), splits.test_labels)
    result.net.calibrate(train)
    print(f"selected epoch {result.best_epoch}: val accuracy {result.val_accuracy:.4f}, test accuracy "
          f"{test_accuracy:.4f} ({result.seconds:.0f} s)")

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{VERSION_TAG}.safetensors"
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in result.net.state_dict().items()}
    save_file(state, str(weights), metadata={"format": "pt", "name": VERSION_TAG})
    record = {
        "name": VERSION_TAG,
        "description": f"{result.net.description} (vaezoo.features.fashion)",
        "weights": weights.name,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "storage_dtype": "float16",
        "num_features": result.net.num_features,
        "feature_scale": float(state["feature_scale"]),  # as stored (float16), the value the metrics use
        "recipe": dataclasses.asdict(recipe),
        "data": {"dataset": "fashion-mnist", "train_images": int(train.shape[0]), "val_images": int(val.shape[0]),
                 "split": "the zoo's seeded hold-out of the training set (vaezoo.data.splits.SPLIT_SEED)"},
        "selected_epoch": result.best_epoch,
        "val_accuracy": round(result.val_accuracy, 4),
        "test_accuracy": round(test_accuracy, 4),
        "history": result.history,
        "training_time_s": round(result.seconds, 1),
        "hardware": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)",
        "trained": datetime.date.today().isoformat(),
        "command": "python scripts/train_feature_net.py",
    }
    (args.out / f"{VERSION_TAG}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {weights} and {VERSION_TAG}.json")


if __name__ == "__main__":
    main()
