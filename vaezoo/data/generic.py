"""Generic datasets for a user's own data: a safetensors file of tensors, or a folder of images.

Both are registered parts, so a config names them like any other dataset::

    data:
      dataset: {name: tensors, path: my_data.safetensors}
    data:
      dataset: {name: image-folder, path: ~/faces, size: 64, channels: 3}

``path`` may be left out: ``data.root`` (or ``--data``) is then the file or folder. A
relative ``path`` with ``data.root`` set is taken relative to ``data.root``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import torch
from pydantic import Field, PositiveInt

from ..errors import DataError, DataNotFoundError
from ..parts.kinds import register_dataset
from .datasets import ImageData

__all__ = ["tensors", "image_folder", "hold_out", "as_uint8_images", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
HOLD_OUT_SEED = 0  # a user's test split must not move between runs
Fraction = Annotated[float, Field(gt=0, lt=1)]


def _resolve(root: Optional[str], path: Optional[str], dataset: str, what: str) -> Path:
    if path is None and root is None:
        raise DataError(
            f"dataset '{dataset}' needs the {what}: set data.dataset.path (or data.root / --data)"
        )
    if path is None:
        return Path(root).expanduser()  # type: ignore[arg-type]
    p = Path(path).expanduser()
    if not p.is_absolute() and root is not None:
        p = Path(root).expanduser() / p
    return p


def hold_out(
    images: torch.Tensor, labels: Optional[torch.Tensor], fraction: float, seed: int = HOLD_OUT_SEED, what: str = ""
) -> tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor, Optional[torch.Tensor]]:
    """Split off ``fraction`` of the images (at least one) as a test set, by a seeded permutation."""
    n = images.shape[0]
    n_test = max(1, round(n * fraction))
    if n < 2 or n_test >= n:
        raise DataError(
            f"{what}: cannot hold out a test fraction of {fraction} from {n} image(s); "
            f"give more images or a separate test set"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_idx, train_idx = order[:n_test].sort().values, order[n_test:].sort().values

    def pick(t, idx):
        return None if t is None else t[idx]

    return images[train_idx], pick(labels, train_idx), images[test_idx], pick(labels, test_idx)


# ---------------------------------------------------------------------------------- tensors


def as_uint8_images(x: torch.Tensor, file: Path, key: str) -> torch.Tensor:
    """Images as uint8 (N, C, H, W): uint8 as they are, bool as 0/255, floats in [0, 1] scaled by 255,
    other integers in 0..255; anything else (NaN, another range, channels last) one line naming them."""
    if x.dim() == 3:
        x = x.unsqueeze(1)  # (N, H, W) grayscale
    if x.dim() != 4:
        raise DataError(f"{file}: '{key}' has shape {tuple(x.shape)}; expected (N, C, H, W) or (N, H, W)")
    if x.shape[1] not in (1, 3, 4) and x.shape[-1] in (1, 3, 4):
        raise DataError(
            f"{file}: '{key}' has shape {tuple(x.shape)}, which looks channels-last; "
            f"store it as (N, C, H, W), e.g. x.permute(0, 3, 1, 2).contiguous()"
        )
    if x.dtype == torch.uint8:
        return x.contiguous()
    if x.dtype == torch.bool:
        return x.to(torch.uint8).mul_(255)
    if x.is_floating_point():
        if not bool(torch.isfinite(x).all()):  # NaN would pass the range check below and become 0
            count = int((~torch.isfinite(x)).sum())
            raise DataError(f"{file}: '{key}' holds {count:,} NaN or infinite pixel value(s); every pixel must be "
                            f"a finite number in [0, 1]")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise DataError(
                f"{file}: '{key}' is {x.dtype} with values in [{lo:g}, {hi:g}]; float images must lie "
                f"in [0, 1] (or store uint8 0..255)"
            )
        return (x.float() * 255).round_().clamp_(0, 255).to(torch.uint8)
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi > 255:
        raise DataError(f"{file}: '{key}' is {x.dtype} with values in [{lo}, {hi}]; expected 0..255")
    return x.to(torch.uint8)


def _labels(y: Optional[torch.Tensor], n: int, file: Path, key: str) -> Optional[torch.Tensor]:
    if y is None:
        return None
    if y.dim() != 1 or y.shape[0] != n or y.is_floating_point():
        raise DataError(
            f"{file}: '{key}' must be integer labels of shape ({n},), got {y.dtype} {tuple(y.shape)}"
        )
    return y.long()


@register_dataset("tensors")
def tensors(
    root: Optional[str],
    path: Optional[str] = None,
    test_fraction: Fraction = 0.1,
) -> ImageData:
    """Images from a safetensors file: ``train_images`` and (optionally) ``test_images``.

    Images are uint8 0..255 of shape (N, C, H, W) or (N, H, W). Float images in [0, 1]
    are accepted and converted to uint8 (``round(x * 255)``): an image stored as float is
    quantized to 256 grey levels, as vaezoo keeps every dataset as uint8 on the device.
    Optional ``train_labels`` / ``test_labels`` are integer (N,) tensors; the class names
    may be given as a JSON list under the file's ``classes`` metadata key. Without
    ``test_images``, ``test_fraction`` of the training images (fixed seed) become the
    test set.
    """
    from safetensors import SafetensorError, safe_open

    file = _resolve(root, path, "tensors", "safetensors file")
    if not file.is_file():
        raise DataNotFoundError(f"dataset 'tensors': no file at {file} (data.dataset.path / data.root)")
    try:
        with safe_open(str(file), framework="pt") as f:
            keys = set(f.keys())
            metadata = f.metadata() or {}
            loaded = {k: f.get_tensor(k) for k in keys if k.endswith(("_images", "_labels"))}
    except SafetensorError as exc:
        raise DataError(f"{file} is not a readable safetensors file: {exc}") from None
    if "train_images" not in loaded:
        raise DataError(
            f"{file} has no 'train_images' tensor (keys found: {', '.join(sorted(keys)) or 'none'}); "
            f"expected train_images, optional test_images, train_labels, test_labels"
        )
    for key in loaded:
        if key not in ("train_images", "test_images", "train_labels", "test_labels"):
            raise DataError(f"{file}: unexpected tensor '{key}'; expected train_/test_ + images/labels")
    if "test_labels" in loaded and "test_images" not in loaded:
        raise DataError(f"{file} has 'test_labels' but no 'test_images'")
    train_x = as_uint8_images(loaded["train_images"], file, "train_images")
    train_y = _labels(loaded.get("train_labels"), train_x.shape[0], file, "train_labels")
    if "test_images" in loaded:
        test_x = as_uint8_images(loaded["test_images"], file, "test_images")
        test_y = _labels(loaded.get("test_labels"), test_x.shape[0], file, "test_labels")
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DataError(
                f"{file}: test_images are {tuple(test_x.shape[1:])} per image but train_images are "
                f"{tuple(train_x.shape[1:])}"
            )
        if (train_y is None) != (test_y is None):
            raise DataError(f"{file}: give labels for both train and test images, or for neither")
    else:
        train_x, train_y, test_x, test_y = hold_out(train_x, train_y, test_fraction, what=str(file))
    classes: list[str] = []
    if "classes" in metadata:
        try:
            classes = [str(c) for c in json.loads(metadata["classes"])]
        except (ValueError, TypeError):
            raise DataError(f"{file}: metadata 'classes' must be a JSON list of names") from None
    return ImageData(train_x, test_x, train_y, test_y, classes=classes, source=str(file))


# ---------------------------------------------------------------------------- image-folder


def _inside(path: Path, top: Path) -> bool:
    """Whether ``path`` is no link, or a link that stays inside ``top`` (resolved): a folder walk
    follows no link out of the dataset's folder, and none back into it (a loop, a second copy)."""
    if not path.is_symlink():
        return True
    target = path.resolve()
    return not target.is_dir() and target.is_relative_to(top.resolve())


def _images_in(folder: Path, recursive: bool, top: Path) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()  # rglob does not descend into linked folders
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and _inside(p, top))


def _scan(folder: Path) -> tuple[list[Path], Optional[list[str]]]:
    """Image files and, when the folder has class subfolders, each file's class name."""
    subdirs = sorted(d for d in folder.iterdir()
                     if d.is_dir() and not d.is_symlink() and not d.name.startswith("."))
    loose = _images_in(folder, recursive=False, top=folder)
    if subdirs and loose:
        raise DataError(
            f"{folder} has both images ({loose[0].name}, ...) and subfolders ({subdirs[0].name}, ...); "
            f"put every image in a class subfolder, or none"
        )
    if not subdirs:
        return loose, None
    files, names = [], []
    for d in subdirs:
        inside = _images_in(d, recursive=True, top=folder)
        files += inside
        names += [d.name] * len(inside)
    return files, names


def _decode(file: Path, channels: int, size: Optional[tuple[int, int]]) -> torch.Tensor:
    # PIL rather than torchvision.io, whose image decoding is deprecated since torchvision 0.29.
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            if img.mode.startswith("I;16") or (img.mode == "I" and np.asarray(img).max() > 255):
                # 16-bit grey levels: scaled to 8 bits, not clipped at 255 (which would whiten the image)
                wide = np.asarray(img).astype(np.float64)
                img = Image.fromarray((wide * 255 / 65535).round().clip(0, 255).astype(np.uint8), mode="L")
            img = img.convert("L" if channels == 1 else "RGB")
            if size is not None and (img.height, img.width) != size:
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=None)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:  # a bomb: refused, not decoded
        raise DataError(f"cannot decode image {file}: {' '.join(str(exc).split())}") from None
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()


def _load_folder(folder: Path, channels: int, size: Optional[tuple[int, int]]):
    files, names = _scan(folder)
    if not files:
        raise DataNotFoundError(
            f"no {'/'.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)} images in {folder} "
            f"(nor in its subfolders)"
        )
    images = []
    for file in files:
        img = _decode(file, channels, size)
        if images and img.shape != images[0].shape:
            raise DataError(
                f"{file} is {tuple(img.shape[1:])} but {files[0]} is {tuple(images[0].shape[1:])}; "
                f"images differ in size: set data.dataset.size (e.g. [64, 64]) to resize them all"
            )
        images.append(img)
    return torch.stack(images), names


@register_dataset("image-folder")
def image_folder(
    root: Optional[str],
    path: Optional[str] = None,
    size: Union[PositiveInt, tuple[PositiveInt, PositiveInt], None] = None,
    channels: Optional[Literal[1, 3]] = None,
    test_fraction: Fraction = 0.1,
    *,
    expected_shape: Optional[tuple[int, int, int]] = None,
) -> ImageData:
    """A folder of PNG/JPEG images, decoded once into uint8 tensors.

    Layout: ``path/train/`` and ``path/test/`` when ``train/`` exists (``test/`` optional),
    else ``path/`` itself with ``test_fraction`` of it (fixed seed) held out as the test
    set. In each, images either lie directly in the folder (no labels) or in class
    subfolders (``cat/``, ``dog/``...; nested folders allowed): the sorted subfolder names
    become ``classes`` and their indices the labels. ``channels`` 1 decodes to grayscale,
    3 to RGB; by default the model's (its ``input_shape``), else 1. ``size`` (an int or
    ``[h, w]``) resizes every image (PIL bilinear, antialiased), and is needed when the images
    differ in size or from the model's input size.
    """
    if channels is None:
        channels = expected_shape[0] if expected_shape is not None and expected_shape[0] in (1, 3) else 1
    folder = _resolve(root, path, "image-folder", "image folder")
    if not folder.is_dir():
        raise DataNotFoundError(f"dataset 'image-folder': no folder at {folder} (data.dataset.path / data.root)")
    hw = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
    train_dir, test_dir = folder / "train", folder / "test"
    if train_dir.is_dir():
        train_x, train_names = _load_folder(train_dir, channels, hw)
        test_x, test_names = _load_folder(test_dir, channels, hw) if test_dir.is_dir() else (None, None)
    else:
        train_x, train_names = _load_folder(folder, channels, hw)
        test_x, test_names = None, None
    if test_x is not None and test_x.shape[1:] != train_x.shape[1:]:
        raise DataError(
            f"{test_dir} images are {tuple(test_x.shape[2:])} but {train_dir} images are "
            f"{tuple(train_x.shape[2:])}: set the dataset's 'size' to resize them all"
        )
    if test_x is not None and (train_names is None) != (test_names is None):
        raise DataError(f"{train_dir} and {test_dir} must both have class subfolders, or neither")
    classes = sorted(set(train_names or []) | set(test_names or []))
    index = {c: i for i, c in enumerate(classes)}

    def labels(names):
        return None if names is None else torch.tensor([index[n] for n in names], dtype=torch.long)

    train_y, test_y = labels(train_names), labels(test_names)
    if test_x is None:
        train_x, train_y, test_x, test_y = hold_out(train_x, train_y, test_fraction, what=str(folder))
    return ImageData(train_x, test_x, train_y, test_y, classes=classes, source=str(folder))
