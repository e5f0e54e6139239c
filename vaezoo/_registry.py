"""The one generic registry behind every kind of part and every model name.

Strict in the torchvision way: registering a name twice is an error, and asking for an
unknown name lists the known ones with a "did you mean" suggestion. Third-party packages
add parts through the ``vaezoo.plugins`` entry-point group; plugins are imported lazily,
the first time any registry is looked up, so ``import vaezoo`` stays cheap.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from .errors import DuplicateNameError

__all__ = ["Registry", "RegistryEntry", "natural_key", "PLUGIN_GROUP", "load_plugins", "suggest"]

PLUGIN_GROUP = "vaezoo.plugins"

T = TypeVar("T")


def natural_key(name: str) -> list:
    """Sort key that orders ``vae2`` before ``vae10`` (timm's natural sort)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def suggest(name: str, known: Iterable[str]) -> str:
    """A " did you mean 'x'?" fragment, or an empty string when nothing is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class RegistryEntry(Generic[T]):
    name: str
    obj: T
    params: Any = None  # a pydantic model class validating the part's arguments, if any
    module: str = ""


_plugins_loaded = False


def load_plugins() -> None:
    """Import every module advertised under the ``vaezoo.plugins`` entry-point group, once.

    Importing a plugin module runs its ``@register_*`` decorators. A broken plugin must not
    take vaezoo down with it, so its error becomes a warning that names the plugin.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            loaded = ep.load()
            if callable(loaded) and not isinstance(loaded, type):
                loaded()  # an entry point may name a setup function instead of a module
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed
            warnings.warn(
                f"vaezoo plugin '{ep.name}' ({ep.value}) failed to load: {exc!r}",
                RuntimeWarning,
                stacklevel=2,
            )


class Registry(Generic[T]):
    """Name -> object map for one kind of part (``encoder``, ``prior``, ``model``, ...)."""

    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"  # "model families", not "familys"
        self._entries: dict[str, RegistryEntry[T]] = {}

    def register(self, name: str, *, params: Any = None) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name")``. A duplicate name raises ``ValueError``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def decorator(obj: T) -> T:
            self.add(name, obj, params=params)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, params: Any = None) -> None:
        if name in self._entries:
            existing = self._entries[name]
            raise DuplicateNameError(
                f"{self.kind} '{name}' is already registered (by {existing.module or 'unknown module'}); "
                f"choose another name"
            )
        module = getattr(obj, "__module__", "") or ""
        self._entries[name] = RegistryEntry(name=name, obj=obj, params=params, module=module)

    def remove(self, name: str) -> None:
        """Unregister ``name`` (for tests and interactive sessions that redefine a part)."""
        self.entry(name)
        del self._entries[name]

    def entry(self, name: str) -> RegistryEntry[T]:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(self.unknown_message(name)) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def unknown_message(self, name: Any) -> str:
        known = self.names()
        listing = ", ".join(known) if known else "(none registered)"
        return f"unknown {self.kind} '{name}'.{suggest(str(name), known)} Known {self.plural}: {listing}"

    def names(self, filter: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
        """Registered names matching the fnmatch pattern(s), minus ``exclude``, naturally sorted."""
        load_plugins()
        return sorted(_fnmatch_all(self._entries, filter, exclude), key=natural_key)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        load_plugins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def _as_patterns(patterns: str | Iterable[str]) -> list[str]:
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _fnmatch_all(names: Iterable[str], filter: str | Iterable[str], exclude: str | Iterable[str]) -> set[str]:
    names = list(names)
    include = _as_patterns(filter) or ["*"]
    selected = {n for pattern in include for n in fnmatch.filter(names, pattern)}
    for pattern in _as_patterns(exclude):
        selected -= set(fnmatch.filter(selected, pattern))
    return selected
