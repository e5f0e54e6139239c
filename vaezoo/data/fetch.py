"""``vaezoo data NAME``: find a named dataset (or download it into the cache) and verify its files.

A file is verified when its bytes match a published checksum: the MD5 of the original
``.gz`` release (the one torchvision lists), or the sha256 of the decompressed IDX bytes,
which also covers the Debian package's copies (same content, re-written gzip headers); the
MD5s SVHN and CelebA publish per file. A download is verified by torchvision against the
release's MD5 (CIFAR-10's archive) before it is unpacked.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DataError, UsageError
from .datasets import IDX_STEMS, locate_idx
from .releases import LOCATORS

__all__ = ["FetchedFile", "Fetched", "fetch", "FETCHABLE", "ChecksumMismatchError"]

# stem -> (md5 of the original .gz, sha256 of the decompressed IDX file or None where unknown)
_CHECKSUMS: dict[str, dict[str, tuple[str, Optional[str]]]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe",
                                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79",
                                   "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310",
                                   "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    "mnist": {
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", None),
        "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", None),
        "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", None),
        "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", None),
    },
}
FETCHABLE = tuple(sorted([*_CHECKSUMS, *LOCATORS]))


class ChecksumMismatchError(DataError):
    """A dataset file whose bytes are not the published release's."""


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    check: str  # how it was verified: "md5 of the .gz", "sha256 of the content", or "unverified"


@dataclass(frozen=True)
class Fetched:
    name: str
    place: str
    folder: Path
    files: list[FetchedFile]

    def summary(self) -> str:
        checks = sorted({f.check for f in self.files})
        return f"{self.name}: {self.folder} (found via {self.place}; {len(self.files)} files, {', '.join(checks)})"


def _digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def _verify(name: str, stem: str, path: Path) -> FetchedFile:
    md5, sha256 = _CHECKSUMS[name][stem]
    raw = path.read_bytes()
    if path.suffix == ".gz" and _digest(raw, "md5") == md5:
        return FetchedFile(path, "md5 of the .gz")
    if sha256 is None:
        return FetchedFile(path, "unverified")
    content = gzip.decompress(raw) if path.suffix == ".gz" else raw
    actual = _digest(content, "sha256")
    if actual != sha256:
        raise ChecksumMismatchError(
            f"{path}: its content has sha256 {actual}, the {name} release has {sha256}; the file is damaged or "
            f"from another release: delete it and run `vaezoo data {name}` again"
        )
    return FetchedFile(path, "sha256 of the content")


def fetch(name: str, root: str | Path | None = None, download: bool = True) -> Fetched:
    """Find ``name`` (``data.root``, ``$VAEZOO_DATA``, the Debian package, the cache), else download
    it into the cache (``download=True``); then check every file against the published checksums."""
    if name not in FETCHABLE:
        raise UsageError(f"vaezoo data knows how to fetch {', '.join(FETCHABLE)}, not {name!r}; other datasets "
                         f"are read from the path in their config (data.dataset.path / data.root)")
    if name in LOCATORS:
        locate, md5s = LOCATORS[name]
        found = locate(root, download=download)
        files = [_verify_md5(name, path, md5s.get(stem)) for stem, path in found.files.items()]
        return Fetched(name=name, place=found.place, folder=next(iter(found.files.values())).parent, files=files)
    found = locate_idx(name, root, download=download)
    files = [_verify(name, stem, found.files[stem]) for stem in IDX_STEMS]
    return Fetched(name=name, place=found.place, folder=found.files[IDX_STEMS[0]].parent, files=files)


def _verify_md5(name: str, path: Path, md5: Optional[str]) -> FetchedFile:
    if md5 is None or path.is_dir():
        return FetchedFile(path, "unverified (the release publishes no checksum for it)")
    actual = _digest(path.read_bytes(), "md5")
    if actual != md5:
        raise ChecksumMismatchError(f"{path}: md5 {actual}, the {name} release has {md5}; delete it and run "
                                    f"`vaezoo data {name}` again")
    return FetchedFile(path, "md5 of the release")
