"""Finding a dataset's files: an explicit folder, $VAEZOO_DATA, the Debian package, a download."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["DataNotFoundError", "find_files", "cache_dir"]


class DataNotFoundError(FileNotFoundError):
    """No place held the dataset; the message lists every place tried and how to fix it."""


def cache_dir() -> Path:
    base = os.environ.get("VAEZOO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vaezoo"
    return Path(base)


def _complete(folder: Path, stems: Sequence[str]) -> dict[str, Path] | None:
    found = {}
    for stem in stems:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[stem] = candidate
                break
        else:
            return None
    return found


def find_files(
    dataset: str,
    stems: Sequence[str],
    root: str | os.PathLike | None,
    debian_dir: str | None,
    download: Callable[[Path], Path] | None,
) -> dict[str, Path]:
    """Map each file stem to a path, trying in order: ``root``, ``$VAEZOO_DATA`` (the folder or
    its ``dataset`` subfolder), the Debian package folder, then ``download`` into the cache."""
    tried: list[str] = []

    def attempt(folder: Path, label: str) -> dict[str, Path] | None:
        for place in (folder, folder / dataset):
            found = _complete(place, stems)
            if found:
                return found
        tried.append(f"{label}: {folder} (no complete set of {', '.join(stems)} [.gz])")
        return None

    if root is not None:
        found = attempt(Path(root).expanduser(), "data.root / --data")
        if found:
            return found
        raise DataNotFoundError(
            f"{dataset}: the folder given as data.root / --data does not hold the dataset.\n  tried " + tried[0]
        )
    env = os.environ.get("VAEZOO_DATA")
    if env:
        found = attempt(Path(env).expanduser(), "$VAEZOO_DATA")
        if found:
            return found
    else:
        tried.append("$VAEZOO_DATA: not set")
    if debian_dir:
        found = attempt(Path(debian_dir), "Debian package")
        if found:
            return found
    if download is not None:
        target = cache_dir() / dataset
        try:
            found = _complete(download(target), stems)
            if found:
                return found
            tried.append(f"download into {target}: finished without the files")
        except Exception as exc:  # noqa: BLE001 - no network is the common case here
            tried.append(f"download into {target}: {type(exc).__name__}: {exc}")
    hint = f"point data.root (or --data, or VAEZOO_DATA) at a folder holding {', '.join(stems)}"
    if debian_dir:
        hint += f", or install the Debian package that provides {debian_dir}"
    raise DataNotFoundError(f"{dataset} not found. Tried:\n  " + "\n  ".join(tried) + f"\nTo fix: {hint}.")
