"""Train / validation / test splits of a configured dataset, as uint8 tensors."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..errors import DataError
from ..schemas import DataConfig
from .binarize import STATIC_BINARIZE_SEED, TEST_BINARIZE_SEED, static_binarize
from .datasets import ImageData

__all__ = ["DataSplits", "load_splits", "SPLIT_SEED"]

SPLIT_SEED = 0  # the validation hold-out is the same for every run, whatever the training seed


@dataclass
class DataSplits:
    train: torch.Tensor  # uint8 (N, C, H, W)
    val: torch.Tensor
    test: torch.Tensor
    train_labels: Optional[torch.Tensor] = None
    val_labels: Optional[torch.Tensor] = None
    test_labels: Optional[torch.Tensor] = None
    classes: list[str] = field(default_factory=list)
    source: str = ""
    # "static": the images above are already binary (uint8 0/255); "dynamic": the training
    # loop draws dynamic_binarize(to_float(batch), generator) per batch; "none": grey levels.
    binarize: str = "none"

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])  # type: ignore[return-value]


def load_splits(config: DataConfig, root: str | None = None,
                expected_shape: Optional[tuple[int, int, int]] = None) -> DataSplits:
    """Load the dataset and hold ``config.val_size`` training images out for validation.

    ``root`` (``--data``) overrides ``config.root``. ``expected_shape``, the model's
    ``input_shape``, reaches datasets that can use it (``image-folder`` decodes to its channels).
    With ``config.binarize == "static"``
    the images come back binarized once with a fixed seed (see :mod:`.binarize`); the draw
    happens before the split, so an image's binary version does not depend on ``val_size``.
    """
    spec = config.dataset
    builder = spec.registry.get(spec.name)
    takes_shape = "expected_shape" in inspect.signature(builder).parameters
    extra = {"expected_shape": expected_shape} if takes_shape and expected_shape is not None else {}
    data: ImageData = builder(root if root is not None else config.root, **spec.params, **extra)
    if config.binarize == "static":
        # Separate seeds for the two sets so that the test draw does not depend on the train size.
        data.train_images = static_binarize(data.train_images, STATIC_BINARIZE_SEED)
        data.test_images = static_binarize(data.test_images, TEST_BINARIZE_SEED)
    n = data.train_images.shape[0]
    if config.val_size >= n:
        raise DataError(f"data.val_size is {config.val_size} but the training set has only {n} images: set "
                        f"data.val_size below {n} (e.g. --set data.val_size={max(1, n // 10)})")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[: config.val_size], order[config.val_size:]

    def pick(labels, idx):
        return None if labels is None else labels[idx]

    return DataSplits(
        train=data.train_images[train_idx], val=data.train_images[val_idx], test=data.test_images,
        train_labels=pick(data.train_labels, train_idx), val_labels=pick(data.train_labels, val_idx),
        test_labels=data.test_labels, classes=list(data.classes), source=data.source,
        binarize=config.binarize,
    )
