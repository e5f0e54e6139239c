"""What an evaluation runs on: images as floats, plus the facts that make up its protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch

from pydantic import ValidationError

from ..config import describe_errors
from ..data.splits import DataSplits, load_splits
from ..errors import UsageError
from ..schemas import DataConfig
from ..data.binarize import (
    STATIC_BINARIZE_SEED, TEST_BINARIZE_SEED, VAL_BINARIZE_SEED, dynamic_binarize, static_binarize, to_float_images,
)

__all__ = ["EvalData", "resolve_data", "as_data_config", "to_float_images", "training_images", "TEST_BINARIZE_SEED",
           "TRAIN_BINARIZE_SEED", "VAL_BINARIZE_SEED", "SPLITS", "DataSource"]

# The one binary draw of the training images that a dynamically binarizing recipe's model is
# encoded on after training (a fitted prior for sampling, a linear probe)
TRAIN_BINARIZE_SEED = 4242

# the splits an evaluation can score, and the seed of the one binary draw of each (a dynamic recipe)
SPLITS = {"test": TEST_BINARIZE_SEED, "val": VAL_BINARIZE_SEED, "train": TRAIN_BINARIZE_SEED}

DataSource = Union[torch.Tensor, DataConfig, DataSplits, str]


@dataclass
class EvalData:
    images: torch.Tensor  # float (N, C, H, W), the model's input scale
    labels: Optional[torch.Tensor] = None
    classes: list[str] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)


def training_images(config: DataConfig, root: Optional[str] = None, expected_shape=None,
                    draw_seed: int = TRAIN_BINARIZE_SEED) -> tuple[torch.Tensor, Optional[torch.Tensor], list[str]]:
    """The training split's images as the model took them (floats in [0, 1]; a dynamically
    binarizing recipe's as one binary draw from ``draw_seed``), its labels and class names."""
    splits = load_splits(config, root=root, expected_shape=expected_shape)
    train = splits.train
    if config.binarize == "dynamic":  # a static recipe's split comes binarized already
        train = static_binarize(train, draw_seed)
    return to_float_images(train), splits.train_labels, list(splits.classes)


def as_data_config(data: Union[str, DataConfig]) -> DataConfig:
    """A dataset name as the DataConfig of its defaults; a wrong name is one line with the known ones."""
    if not isinstance(data, str):
        return data
    try:
        return DataConfig(dataset=data)
    except ValidationError as exc:
        raise UsageError("; ".join(message for _, message in describe_errors(exc, DataConfig, {"dataset": data}))
                         ) from None


def resolve_data(
    data: DataSource,
    *,
    binarize: str | None = None,
    limit: int | None = None,
    root: str | None = None,
    expected_shape: Optional[tuple[int, int, int]] = None,
    start: int = 0,
    split: str = "test",
) -> EvalData:
    """Images, labels and protocol for ``data``.

    - a uint8 tensor (pixels 0..255, scaled to [0, 1]) or a float tensor (used as given);
    - a :class:`DataConfig`, a dataset name (``"fashion-mnist"``) or :class:`DataSplits`:
      its ``split`` (``root``: the dataset folder, as ``--data``): ``"test"``, or the ``"val"``
      images that training held out (``data.val_size`` of the config, the same ones for every
      run) to select checkpoints on, or the ``"train"`` images it learned from.

    ``binarize``: ``"none"`` keeps grey levels (scored by a Bernoulli likelihood this is the
    "grayscale BCE" protocol); ``"static"`` and ``"dynamic"`` both score one fixed binary
    draw of the split, the one :func:`vaezoo.data.load_splits` makes for a static config, else
    one from the split's seed in :data:`SPLITS` (dynamic binarization is a training-time
    augmentation; an evaluation uses one draw).
    Default: the DataConfig's setting, else ``"none"``. ``limit`` keeps the first N
    examples (after binarizing the whole set, so a subset's images are the full set's);
    ``start`` skips the first ones (a shard of the set: examples start .. start + limit - 1).
    """
    labels, classes = None, []
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if isinstance(data, str):
        data = as_data_config(data)
    if binarize is not None and binarize not in ("none", "static", "dynamic"):
        raise ValueError(f"binarize must be 'none', 'static' or 'dynamic', got {binarize!r}")
    if isinstance(data, DataConfig):
        if binarize is not None and binarize != data.binarize:
            data = data.model_copy(update={"binarize": binarize})
        protocol = {"dataset": data.dataset.name, "split": split}
        data = load_splits(data, root=root, expected_shape=expected_shape)  # binarizes a static recipe's splits itself
    elif isinstance(data, DataSplits):
        protocol = {"dataset": data.source or "given splits", "split": split}
    elif isinstance(data, torch.Tensor):
        if split != "test":
            raise UsageError(f"split={split!r} picks a split of a dataset; the data given is a tensor of images")
        protocol = {"dataset": "tensor", "split": "given"}
    else:
        raise ValueError(
            f"data must be an image tensor, a DataConfig, a dataset name or DataSplits, got {type(data).__name__}"
        )
    already_binary = False
    if isinstance(data, DataSplits):
        images, labels, classes = getattr(data, split), getattr(data, f"{split}_labels"), list(data.classes)
        if images.shape[0] == 0:
            raise UsageError(f"the {split} split is empty" + (" (the recipe's data.val_size is 0)" if split == "val"
                                                               else ""))
        split_binarize = getattr(data, "binarize", "none")
        already_binary = split_binarize == "static"
        binarize = binarize or split_binarize
    else:
        images = data
    if images.ndim == 3:  # (N, H, W) grayscale
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    binarize = binarize or "none"
    was_uint8 = images.dtype == torch.uint8
    # a static recipe's splits come drawn by load_splits: the test set from its seed, the training
    # images (validation among them) from STATIC_BINARIZE_SEED, before the hold-out
    draw_seed = STATIC_BINARIZE_SEED if already_binary and split != "test" else SPLITS[split]
    if binarize != "none" and not already_binary:
        if was_uint8:
            images = static_binarize(images, draw_seed)
        else:
            generator = torch.Generator(device=images.device).manual_seed(draw_seed)
            images = dynamic_binarize(images, generator=generator)
    total = images.shape[0]
    if start < 0 or start >= total:
        raise UsageError(f"start (--start) must be the index of a {split} image, 0 to {total - 1}, got {start}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    stop = total if limit is None else min(total, start + limit)
    images = images[start:stop]
    labels = None if labels is None else labels[start:stop]
    images = to_float_images(images)
    if binarize == "none":
        protocol["binarization"] = "none (grayscale in [0, 1])" if was_uint8 else "none (values as given)"
    else:
        protocol["binarization"] = f"binarized: one fixed Bernoulli draw (seed {draw_seed})"
    protocol["examples"] = int(images.shape[0])
    protocol["examples_available"] = int(total)
    if start:
        protocol["first_example"] = int(start)
    return EvalData(images=images, labels=labels, classes=classes, protocol=protocol)
