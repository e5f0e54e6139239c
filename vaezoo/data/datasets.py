"""Registered datasets. Each builder returns an :class:`ImageData`: uint8 image tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..errors import DataError
from ..parts.kinds import register_dataset
from .idx import read_idx
from .sources import Found, find_files

__all__ = ["ImageData", "FASHION_MNIST_CLASSES", "MNIST_CLASSES", "DEBIAN_DIRS", "IDX_STEMS", "locate_idx"]

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
MNIST_CLASSES = [str(d) for d in range(10)]
# The Debian packages' folders, by dataset name; a module constant so tests can point it elsewhere.
DEBIAN_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist", "mnist": "/usr/share/datasets/mnist"}
_TORCHVISION_NAMES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass
class ImageData:
    """Images as uint8 tensors of shape (N, C, H, W), labels as int64 (or None)."""

    train_images: torch.Tensor
    test_images: torch.Tensor
    train_labels: Optional[torch.Tensor] = None
    test_labels: Optional[torch.Tensor] = None
    classes: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        # every dataset comes through here: labels that do not pair with their images are refused
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if labels is None:
                continue
            where = f"dataset {self.source or '(in memory)'}: the {split} labels"
            if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
                raise DataError(f"{where} are {tuple(labels.shape)} for {images.shape[0]} images: one label per image")
            if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
                raise DataError(f"{where} are {labels.dtype}: class labels are integers")
            if labels.numel() and (int(labels.min()) < 0 or (self.classes and int(labels.max()) >= len(self.classes))):
                top = f"{len(self.classes) - 1}" if self.classes else "..."
                raise DataError(f"{where} run from {int(labels.min())} to {int(labels.max())}; classes are 0-{top}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


def _torchvision_download(cls_name: str):
    def download(target: Path) -> Path:
        import torchvision.datasets

        getattr(torchvision.datasets, cls_name)(str(target), download=True)
        return target / cls_name / "raw"

    return download


def locate_idx(name: str, root=None, download: bool = True) -> Found:
    """Where the four IDX files of ``name`` (``fashion-mnist``, ``mnist``) are, by the search order
    of :func:`find_files`; ``download=False`` stops before downloading."""
    tv_name = _TORCHVISION_NAMES[name]
    return find_files(name, IDX_STEMS, root, DEBIAN_DIRS.get(name),
                      _torchvision_download(tv_name) if download else None, cache_subdir=f"{tv_name}/raw")


def _load_idx(name: str, root, classes: list[str]) -> ImageData:
    files = locate_idx(name, root).files
    train_x, train_y, test_x, test_y = (read_idx(files[stem]) for stem in IDX_STEMS)
    return ImageData(
        train_images=train_x.unsqueeze(1), test_images=test_x.unsqueeze(1),
        train_labels=train_y.long(), test_labels=test_y.long(), classes=classes,
        source=str(files[IDX_STEMS[0]].parent),
    )


@register_dataset("fashion-mnist")
def fashion_mnist(root: Optional[str]) -> ImageData:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 28x28 grayscale images, 10 classes, MIT."""
    return _load_idx("fashion-mnist", root, FASHION_MNIST_CLASSES)


@register_dataset("mnist")
def mnist(root: Optional[str]) -> ImageData:
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 28x28 grayscale digits."""
    return _load_idx("mnist", root, MNIST_CLASSES)
