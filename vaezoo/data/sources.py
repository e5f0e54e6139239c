"""Finding a dataset's files: an explicit folder, $VAEZOO_DATA, the Debian package, a download."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import DataNotFoundError
from ..resources import cache_dir

__all__ = ["DataNotFoundError", "Found", "find_files", "cache_dir", "one_line"]


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` squeezed onto one line and shortened.

    torchvision's download error spans several lines (one per mirror); inside a list of
    places tried, each place must stay one line or the list becomes unreadable.
    """
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Found:
    """The dataset's files, and which place in the search order held them."""

    files: dict[str, Path]
    place: str


def _present(folder: Path, stem: str) -> Path | None:
    """``stem`` (or ``stem.gz``) in ``folder``; a stem ending in ``/`` names a folder."""
    if stem.endswith("/"):
        candidate = folder / stem.rstrip("/")
        return candidate if candidate.is_dir() else None
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: Path, stems: Sequence[str]) -> dict[str, Path] | None:
    found = {stem: _present(folder, stem) for stem in stems}
    return found if all(found.values()) else None


def _missing(folder: Path, stems: Sequence[str]) -> str:
    if not folder.exists():
        return "no such folder"
    if not folder.is_dir():
        return "not a folder"
    missing = [s for s in stems if _present(folder, s) is None]
    return "missing " + ", ".join(missing)


def find_files(
    dataset: str,
    stems: Sequence[str],
    root: str | os.PathLike | None,
    debian_dir: str | os.PathLike | None,
    download: Callable[[Path], Path] | None,
    cache_subdir: str = "",
    subfolders: Sequence[str] = (),
) -> Found:
    """Map each file stem to a path (``stem`` or ``stem.gz``), trying in order:

    1. ``root`` (``data.root`` / ``--data``), the folder or its ``dataset`` subfolder. When
       given, it is the only place tried: a wrong explicit path is an error, not a fallback.
    2. ``$VAEZOO_DATA``, the folder or its ``dataset`` subfolder.
    3. ``debian_dir``, the Debian package's folder.
    4. the cache, ``cache_dir() / dataset / cache_subdir`` (where a download puts the files).
    5. ``download(cache_dir() / dataset)``, which returns the folder holding the files.

    In each place the files may also sit in one of ``subfolders`` (a release's own folder,
    like ``cifar-10-batches-bin``), of the place or of its ``dataset`` subfolder.

    Raises :class:`DataNotFoundError` listing every place tried, one line each, and the fix.
    """
    tried: list[str] = []

    def attempt(folder: Path, label: str) -> dict[str, Path] | None:
        bases = (folder, folder / dataset)
        for place in (*bases, *(base / sub for base in bases for sub in subfolders)):
            found = _complete(place, stems)
            if found:
                return found
        detail = _missing(folder, stems)
        if folder.is_dir():
            detail += f"; nor in {folder / dataset}"
        tried.append(f"{label}: {folder} ({detail})")
        return None

    wanted = ", ".join(stems)
    if root is not None:
        found = attempt(Path(root).expanduser(), "data.root / --data")
        if found:
            return Found(found, "data.root / --data")
        raise DataNotFoundError(
            f"{dataset} not found in the folder given as data.root / --data.\n"
            f"  tried {tried[0]}\n"
            f"To fix: point data.root / --data at the folder holding {wanted} (each may be .gz), "
            f"or leave it unset to use $VAEZOO_DATA, the Debian package or a download."
        )
    tried.append("data.root / --data: not given")
    env = os.environ.get("VAEZOO_DATA")
    if env:
        found = attempt(Path(env).expanduser(), "$VAEZOO_DATA")
        if found:
            return Found(found, "$VAEZOO_DATA")
    else:
        tried.append("$VAEZOO_DATA: not set")
    if debian_dir:
        found = attempt(Path(debian_dir), "Debian package")
        if found:
            return Found(found, "Debian package")
    target = cache_dir() / dataset
    found = _complete(target / cache_subdir, stems)
    if found:
        return Found(found, "cache")
    tried.append(f"cache: {target / cache_subdir} ({_missing(target / cache_subdir, stems)})")
    if download is not None:
        try:
            found = _complete(Path(download(target)), stems)
            if found:
                return Found(found, "download")
            tried.append(f"download into {target}: finished without the files")
        except Exception as exc:  # noqa: BLE001 - no network is the common case; reported below
            tried.append(f"download into {target}: {one_line(exc)}")
    hint = f"point data.root (or --data, or VAEZOO_DATA) at a folder holding {wanted} (each may be .gz)"
    if debian_dir:
        hint += f", or install the Debian package that provides {debian_dir}"
    if download is not None:
        hint += f", or run `vaezoo data {dataset}` once where the internet is reachable to download it"
    raise DataNotFoundError(
        f"{dataset} not found. Tried, in order:\n" + "".join(f"  {i}. {t}\n" for i, t in enumerate(tried, 1))
        + f"To fix: {hint}."
    )
