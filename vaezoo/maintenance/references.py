"""The hand-kept reference files of ``registry/references/`` (the coverage table, the side by side
with pythae), read and validated the same way: errors name the file and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, TypeVar

from pydantic import BaseModel, ValidationError

from .. import resources
from ..config import describe_errors
from ..errors import ConfigError

__all__ = ["reference_path", "read_reference"]

Schema = TypeVar("Schema", bound=BaseModel)


def reference_path(file: str, registry: str | Path | None = None) -> Path:
    root = Path(registry) if registry is not None else resources.registry_dir()
    return root / "references" / file


def read_reference(file: str, schema: type[Schema], registry: str | Path | None = None) -> Optional[Schema]:
    """``registry/references/<file>`` validated against ``schema``; None for a registry without it
    (a user's own)."""
    path = reference_path(file, registry)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), describe_errors(exc, schema, data)) from None
