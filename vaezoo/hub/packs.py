"""Weight packs: companion distributions that carry shipped weights the vaezoo archives have no room for.

The vaezoo wheel and sdist keep to 95 MB each (registry/README.md, "The weight budget"). A model that
keeps to the 16 MB cap per model but not to the archives' budget ships in a pack: a data-only
distribution built from ``weightpacks/<key>/`` in vaezoo's repository and installed with
``pip install vaezoo-weights-<key>``. The entry, its sha256 pin and its metrics stay in vaezoo's own
registry; a pack carries bytes only, so an installed pack cannot change what a name means.

Finding a pack's files runs nothing: :func:`importlib.util.find_spec` locates an installed pack's
folder without importing it, and a source checkout has ``weightpacks/<key>/`` beside ``registry/``.
The packs are listed here, in code: a registry entry can only name one of them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import HubError

__all__ = ["WeightPack", "PACKS", "get_pack"]


@dataclass(frozen=True)
class WeightPack:
    key: str
    distribution: str  # what pip installs
    package: str  # the data-only package inside it: <package>/weights/<name>.safetensors
    holds: str  # which models go in it, in a phrase

    def source_folder(self, registry: Path) -> Path:
        """The package's folder in a source checkout whose registry folder is ``registry``."""
        return Path(registry).parent / "weightpacks" / self.key / self.package

    def installed_folders(self) -> list[Path]:
        """Where an installed copy of the package is (regular or editable install); nothing is imported."""
        spec = importlib.util.find_spec(self.package)
        return [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []

    def install_hint(self) -> str:
        return (f"`pip install {self.distribution}` (from a clone of vaezoo's repository: "
                f"`pip install ./weightpacks/{self.key}`)")


PACKS: dict[str, WeightPack] = {
    pack.key: pack
    for pack in (
        WeightPack("conv", "vaezoo-weights-conv", "vaezoo_weights_conv",
                   "convolutional models that the vaezoo archives have no room for"),
    )
}


def get_pack(key: str) -> WeightPack:
    if key not in PACKS:
        raise HubError(f"no weight pack named {key!r}; the packs are: {', '.join(sorted(PACKS))}")
    return PACKS[key]
