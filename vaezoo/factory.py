"""Config -> model: the family a config names, built from its registered parts."""

from __future__ import annotations

from typing import Any, Mapping, Union

from .errors import ConfigError
from .models import FAMILIES, BaseVAE, PartBuildError
from .schemas import ModelConfig, validate_model_config

__all__ = ["build_model"]


def build_model(config: Union[ModelConfig, Mapping[str, Any]], source: str = "") -> BaseVAE:
    """Build the network of ``config`` (its ``family`` picks the class); a part that cannot take
    the configured shapes becomes a :class:`ConfigError` naming ``model.<field>``."""
    if not isinstance(config, ModelConfig) or type(config) is ModelConfig:
        config = validate_model_config(config)
    cls = FAMILIES.get(config.family)
    try:
        model = cls(config)
        _bind_objective(model, config)
    except PartBuildError as exc:
        raise ConfigError(source, [(f"model.{exc.field}", str(exc))]) from None
    model.materialize()
    return model


def _bind_objective(model: BaseVAE, config: ModelConfig) -> None:
    """The objective's networks that depend on the assembled model (a discriminator over its latents)."""
    try:
        model.objective.bind(model)
    except ValueError as exc:
        raise PartBuildError("objective", f"objective '{config.objective.name}': {exc}") from exc
