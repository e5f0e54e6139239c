"""Where the zoo's ``configs/`` and ``registry/`` folders are, and the user's cache.

A wheel carries them inside the package (``vaezoo/_zoo/``, see pyproject.toml); a source
checkout or an editable install has them beside the package at the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resource_dir", "configs_dir", "registry_dir", "cache_dir"]

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_zoo" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"vaezoo's '{name}' folder is missing: looked in {_PACKAGE / '_zoo' / name} (installed wheel) "
        f"and {_PACKAGE.parent / name} (source checkout); reinstall vaezoo"
    )


def configs_dir() -> Path:
    return resource_dir("configs")


def registry_dir() -> Path:
    return resource_dir("registry")


def cache_dir() -> Path:
    """Where downloads and measurements of this machine go: ``$VAEZOO_CACHE``, else
    ``$XDG_CACHE_HOME/vaezoo``, else ``~/.cache/vaezoo``."""
    base = os.environ.get("VAEZOO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vaezoo"
    return Path(base)
