"""The named datasets beyond the IDX pair: CIFAR-10, SVHN, CelebA and the CSV release of
Fashion-MNIST and MNIST. Each is found like Fashion-MNIST (``data.root``, ``$VAEZOO_DATA``, the
cache) or downloaded with torchvision's helpers into the cache, checksums verified; nothing is
unpickled (CIFAR-10 is read from its binary release, not the pickled Python one).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from pydantic import PositiveInt

from ..errors import DataError
from ..parts.kinds import register_dataset
from .datasets import FASHION_MNIST_CLASSES, MNIST_CLASSES, ImageData
from .generic import as_uint8_images
from .sources import Found, cache_dir, find_files

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_FILES", "SVHN_FILES", "CELEBA_FILES", "cifar10", "svhn", "celeba",
    "fashion_mnist_csv", "mnist_csv", "read_cifar_batch", "read_label_pixel_csv", "LOCATORS",
]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # of the archive (the release lists no per-file sums)
CIFAR10_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # a label byte, then the red, green and blue 32x32 planes

_SVHN = {  # torchvision's SVHN.split_list
    "train_32x32.mat": ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test_32x32.mat": ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
}
SVHN_FILES = tuple(_SVHN)

# the aligned-and-cropped release (torchvision's CelebA.file_list): 202,599 JPEGs of 178 x 218
CELEBA_FILES = ("img_align_celeba/", "list_eval_partition.txt")
CELEBA_MD5 = {"img_align_celeba.zip": "00d2c5bc6d35e252742224ab0c1e8fcb",
              "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668"}
_CELEBA_CROP = 148  # the usual VAE crop of the aligned faces (centre 148 x 148, then resized)


# ------------------------------------------------------------------------------ CIFAR-10


def read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One file of the binary release: (N, 3, 32, 32) uint8 images and (N,) labels."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _CIFAR10_RECORD:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records of {_CIFAR10_RECORD} "
                        f"bytes; the file is damaged or not from the binary release (cifar-10-binary.tar.gz)")
    records = raw.reshape(-1, _CIFAR10_RECORD)
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    if int(labels.max()) > 9:
        raise DataError(f"{path}: labels above 9; not a CIFAR-10 binary file")
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())
    return images, labels


def _download_cifar(target: Path) -> Path:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(_CIFAR10_URL, str(target), md5=_CIFAR10_MD5)
    return target / "cifar-10-batches-bin"


def locate_cifar10(root=None, download: bool = True) -> Found:
    return find_files("cifar10", CIFAR10_FILES, root, None, _download_cifar if download else None,
                      cache_subdir="cifar-10-batches-bin", subfolders=("cifar-10-batches-bin",))


@register_dataset("cifar10")
def cifar10(root: Optional[str]) -> ImageData:
    """CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 32x32 RGB images in 10 classes, from its binary release."""
    files = locate_cifar10(root).files
    train = [read_cifar_batch(files[name]) for name in CIFAR10_FILES[:-1]]
    test_x, test_y = read_cifar_batch(files["test_batch.bin"])
    return ImageData(torch.cat([x for x, _ in train]), test_x, torch.cat([y for _, y in train]), test_y,
                     classes=list(CIFAR10_CLASSES), source=str(files["test_batch.bin"].parent))


# ------------------------------------------------------------------------------ SVHN


def _read_svhn(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from scipy.io import loadmat  # MATLAB files: SVHN's release format (not pickle)
    except ImportError:
        raise DataError("the svhn dataset reads MATLAB files with scipy: "
                        "pip install 'vaezoo[svhn]' (or scipy)") from None
    try:
        mat = loadmat(str(path))
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable MATLAB file ({exc})") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected the variables X and y of SVHN's release, found {sorted(mat)}")
    # uint8 in the release; a float copy in [0, 1] is scaled, not cast to black
    images = as_uint8_images(torch.from_numpy(np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1))), path, "X")
    labels = torch.from_numpy(mat["y"].reshape(-1).astype(np.int64)) % 10  # the release labels digit 0 as 10
    return images, labels


def _download_svhn(target: Path) -> Path:
    from torchvision.datasets.utils import download_url

    for name, (url, md5) in _SVHN.items():
        download_url(url, str(target), filename=name, md5=md5)
    return target


def locate_svhn(root=None, download: bool = True) -> Found:
    return find_files("svhn", SVHN_FILES, root, None, _download_svhn if download else None)


@register_dataset("svhn")
def svhn(root: Optional[str]) -> ImageData:
    """SVHN (Netzer et al. 2011): 73,257 + 26,032 32x32 RGB house-number digits (its train and test sets)."""
    files = locate_svhn(root).files
    train_x, train_y = _read_svhn(files["train_32x32.mat"])
    test_x, test_y = _read_svhn(files["test_32x32.mat"])
    return ImageData(train_x, test_x, train_y, test_y, classes=[str(d) for d in range(10)],
                     source=str(files["test_32x32.mat"].parent))


# ------------------------------------------------------------------------------ CelebA


def _download_celeba(target: Path) -> Path:
    import torchvision.datasets

    torchvision.datasets.CelebA(str(target), split="all", target_type=[], download=True)  # Google Drive
    return target / "celeba"


def locate_celeba(root=None, download: bool = True) -> Found:
    return find_files("celeba", CELEBA_FILES, root, None, _download_celeba if download else None,
                      cache_subdir="celeba", subfolders=("celeba",))


def _crop_and_resize(path: Path, size: int):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            left, top = (img.width - _CELEBA_CROP) // 2, (img.height - _CELEBA_CROP) // 2
            img = img.crop((left, top, left + _CELEBA_CROP, top + _CELEBA_CROP))
            img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot decode {path}: {' '.join(str(exc).split())}") from None


def _partition(path: Path) -> dict[str, int]:
    split = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}, line {number}: expected '<file> <0|1|2>', got {line!r}")
        if Path(fields[0]).name != fields[0] or fields[0] in (".", "..") or "\\" in fields[0]:
            # a name read from a data file never reaches outside the image folder
            raise DataError(f"{path}, line {number}: {fields[0]!r} is not a file name inside img_align_celeba/")
        split[fields[0]] = int(fields[1])
    return split


@register_dataset("celeba")
def celeba(root: Optional[str], size: PositiveInt = 64) -> ImageData:
    """CelebA (Liu et al. 2015), aligned faces: the centre 148 x 148 crop resized to ``size`` (64), RGB;
    the official train partition (162,770) and test partition (19,962).

    The JPEGs are decoded once and the result is kept in the cache as a safetensors file, so
    later runs load it in seconds.
    """
    from safetensors.torch import load_file, save_file

    files = locate_celeba(root).files
    cached = cache_dir() / "celeba" / f"celeba-crop{_CELEBA_CROP}-{size}.safetensors"
    split = _partition(files["list_eval_partition.txt"])
    if cached.is_file():
        tensors = load_file(str(cached))
        if tensors["train_images"].shape[0] + tensors["test_images"].shape[0] == sum(v != 1 for v in split.values()):
            return ImageData(tensors["train_images"], tensors["test_images"], source=str(files["img_align_celeba/"]))
    folder = files["img_align_celeba/"]
    images = {part: [] for part in (0, 2)}
    for name, part in sorted(split.items()):
        if part in images:
            images[part].append(_crop_and_resize(folder / name, size))
    if not images[0] or not images[2]:
        raise DataError(f"{files['list_eval_partition.txt']}: no images in the train (0) or test (2) partition")
    train, test = (torch.from_numpy(np.stack(images[part])) for part in (0, 2))
    cached.parent.mkdir(parents=True, exist_ok=True)
    save_file({"train_images": train.contiguous(), "test_images": test.contiguous()}, str(cached))
    return ImageData(train, test, source=str(folder))


# ------------------------------------------------------------------------------ CSV


def read_label_pixel_csv(path: Path, shape: tuple[int, int, int] = (1, 28, 28)) -> tuple[torch.Tensor, torch.Tensor]:
    """A CSV with one image per row: the label, then the pixel values 0..255 (a header row is skipped)."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV (a compressed or binary file? decompress it first)") from None
    first, _, rest = text.partition("\n")
    body = rest if not first.split(",")[0].strip().isdigit() else text  # "label,pixel1,..." or no header
    try:
        table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: not a CSV of integers ({exc})") from None
    pixels = int(np.prod(shape))
    if table.shape[1] != 1 + pixels:
        raise DataError(f"{path}: rows have {table.shape[1]} values; expected a label then {pixels} pixels")
    if table[:, 1:].min() < 0 or table[:, 1:].max() > 255:
        raise DataError(f"{path}: pixel values must lie in 0..255")
    images = torch.from_numpy(table[:, 1:].astype(np.uint8).reshape(-1, *shape))
    return images, torch.from_numpy(table[:, 0])


def _csv(name: str, prefix: str, root, classes: list[str]) -> ImageData:
    names = (f"{prefix}_train.csv", f"{prefix}_test.csv")
    files = find_files(name, names, root, None, None).files
    (train_x, train_y), (test_x, test_y) = (read_label_pixel_csv(files[n]) for n in names)
    return ImageData(train_x, test_x, train_y, test_y, classes=classes, source=str(files[names[0]].parent))


@register_dataset("fashion-mnist-csv")
def fashion_mnist_csv(root: Optional[str]) -> ImageData:
    """Fashion-MNIST from its CSV release (`fashion-mnist_train.csv`, `fashion-mnist_test.csv`), as the seed
    notebook reads it."""
    return _csv("fashion-mnist-csv", "fashion-mnist", root, FASHION_MNIST_CLASSES)


@register_dataset("mnist-csv")
def mnist_csv(root: Optional[str]) -> ImageData:
    """MNIST from its CSV release (`mnist_train.csv`, `mnist_test.csv`): a label then 784 pixels per row."""
    return _csv("mnist-csv", "mnist", root, MNIST_CLASSES)


# name -> (how to find it, per-file md5 where the release gives one), for `vaezoo data`
LOCATORS = {
    "cifar10": (locate_cifar10, {}),
    "svhn": (locate_svhn, {name: md5 for name, (_, md5) in _SVHN.items()}),
    "celeba": (locate_celeba, {"list_eval_partition.txt": CELEBA_MD5["list_eval_partition.txt"]}),
}
