"""The registry of model families: ``@register_family("hvae", config=HVAEConfig)`` on the class."""

from __future__ import annotations

from typing import Callable

from ..schemas import FAMILIES, ModelConfig

__all__ = ["FAMILIES", "register_family", "family_class"]


def register_family(name: str, *, config: type[ModelConfig]) -> Callable[[type], type]:
    """Register a model family: the class built for ``model: {family: name, ...}`` and its config schema.

    The schema must derive from :class:`vaezoo.ModelConfig` with ``family: Literal[name]``; the
    class takes that config and keeps the contract of :class:`vaezoo.models.BaseVAE`.
    """
    if not (isinstance(config, type) and issubclass(config, ModelConfig)):
        raise TypeError(f"family '{name}': config must be a subclass of vaezoo.ModelConfig, got {config!r}")
    default = config.model_fields["family"].default
    if default != name:
        raise TypeError(f"family '{name}': its config's `family` field must default to {name!r}, not {default!r}")

    def decorator(cls: type) -> type:
        FAMILIES.add(name, cls, params=config)
        cls.family = name
        return cls

    return decorator


def family_class(name: str) -> type:
    return FAMILIES.get(name)
