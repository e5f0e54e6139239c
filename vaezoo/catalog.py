"""Every registered part and model family with its arguments: what ``vaezoo parts`` prints and
what the parts table of ``docs/configs.md`` is generated from (by ``python -m
vaezoo.maintenance.parts_doc``), so that the two cannot drift.
"""

from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ._registry import Registry
from .config import describe_type
from .parts.kinds import (
    CODE_PRIORS, DATASETS, DECODERS, ENCODERS, LIKELIHOODS, OBJECTIVES, POSTERIORS, PRIORS, QUANTIZERS,
)
from .parts.metrics import METRICS
from .schemas import FAMILIES, ModelConfig

__all__ = ["KINDS", "Argument", "PartInfo", "describe_parts", "format_parts"]

KINDS: dict[str, Registry] = {
    "family": FAMILIES, "encoder": ENCODERS, "decoder": DECODERS, "prior": PRIORS, "posterior": POSTERIORS,
    "likelihood": LIKELIHOODS,
    "objective": OBJECTIVES, "dataset": DATASETS, "quantizer": QUANTIZERS, "code-prior": CODE_PRIORS,
    "metric": METRICS,
}
_DERIVED_DOC = BaseModel.__doc__  # what a schema derived from a builder's signature inherits


@dataclass(frozen=True)
class Argument:
    name: str
    type: str
    default: str  # its repr, or "required"
    help: str = ""


@dataclass(frozen=True)
class PartInfo:
    kind: str
    name: str
    summary: str
    arguments: tuple[Argument, ...]
    module: str

    @property
    def built_in(self) -> bool:
        return self.module.startswith("vaezoo.")


def _first_sentence(doc: str) -> str:
    paragraph = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()).replace("``", "`")
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(`])", paragraph, maxsplit=1)[0].rstrip(":")


def _summary(obj, schema: Optional[type] = None, prefer_module: bool = False) -> str:
    """The first sentence of the object's own docstring (never one it inherits), else of its
    params schema's, else of its module's: what the part is, in one line."""
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    candidates = [getattr(obj, "__doc__", None), getattr(schema, "__doc__", None), getattr(module, "__doc__", None)]
    if prefer_module:
        candidates.insert(0, candidates.pop())
    for doc in candidates:
        if doc and not doc.lstrip().startswith(("Base for", "Usage docs", "A base class")):
            return _first_sentence(doc)
    return ""


def _arguments(schema: Optional[type[BaseModel]], skip: Sequence[str] = ()) -> tuple[Argument, ...]:
    if schema is None:
        return ()
    out = []
    for name, field in schema.model_fields.items():
        if name in skip:
            continue
        default = field.get_default(call_default_factory=True)
        shown = "required" if default is PydanticUndefined else repr(_plain(default))
        out.append(Argument(name, describe_type(field.annotation, field.metadata), shown, field.description or ""))
    return tuple(out)


def _plain(value):
    """A default as a config would write it (a part spec as its name and arguments)."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def describe_parts(kind: Optional[str] = None) -> list[PartInfo]:
    """The registered parts of ``kind`` (all kinds by default), plugins included, in name order."""
    kinds = KINDS if kind is None else {kind: KINDS[kind]}
    base_fields = set(ModelConfig.model_fields)
    parts = []
    for kind_name, registry in kinds.items():
        for name in registry.names():
            entry = registry.entry(name)
            if kind_name == "family":
                # a family's own fields; the ones every family has (input_shape, likelihood, ...) are in the config docs
                arguments = _arguments(entry.params, skip=base_fields)
                summary = _summary(entry.obj, prefer_module=True)
            else:
                arguments = _arguments(entry.params)
                summary = _summary(entry.obj, entry.params if entry.params.__doc__ != _DERIVED_DOC else None)
            parts.append(PartInfo(kind_name, name, summary, arguments, entry.module))
    return parts


def format_parts(parts: Sequence[PartInfo]) -> str:
    """The text ``vaezoo parts`` prints: per part a line, then one per argument."""
    lines = []
    for part in parts:
        where = "" if part.built_in else f"  [{part.module}]"
        lines.append(f"{part.kind} {part.name}{where}: {part.summary or '-'}")
        for arg in part.arguments:
            help_text = f"  {arg.help}" if arg.help else ""
            lines.append(f"    {arg.name}: {arg.type}, default {arg.default}{help_text}")
    return "\n".join(lines)
