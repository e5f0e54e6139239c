"""Reading experiment files: YAML, dotted overrides, and errors a person can act on.

Every failure becomes a :class:`ConfigError` whose lines read
``configs/x.yaml: model.encoder.channels: expected a list of int, got 'abc'``.
"""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Union

import yaml
from pydantic import BaseModel, ValidationError

from ._registry import suggest
from .errors import ConfigError
from .safe_text import MAX_BYTES, decode_text, load_yaml
from .schemas import FAMILIES, ExperimentConfig, ModelConfig, PartSpec

__all__ = ["ConfigError", "load_experiment", "validate_experiment", "apply_overrides", "parse_set_args",
           "describe_errors", "describe_type"]


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    source = display_path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # before reading it: a config is never this large
            raise ConfigError(source, [("", f"is {size:,} bytes; a config is at most {MAX_BYTES:,}")])
        text = decode_text(path.read_bytes())
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read the file: {exc.strerror or exc}")]) from None
    except ValueError as exc:
        raise ConfigError(source, [("", str(exc))]) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [("", f"invalid YAML: {where}{problem}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [("", f"expected a mapping at the top level, got {type(data).__name__}")])
    return data


def load_experiment(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read, override and validate an experiment YAML; its name defaults to the file stem."""
    path = Path(path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    return validate_experiment(data, overrides, source=display_path(path))


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def validate_experiment(
    data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, source: str = ""
) -> ExperimentConfig:
    overrides = dict(overrides or {})
    data = apply_overrides(data, overrides, source=source)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(exc, ExperimentConfig, data)
        sources = [_override_behind(path, overrides) or source for path, _ in problems]
        raise ConfigError(source, problems, sources=sources) from None


def _override_behind(path: str, overrides: Mapping[str, Any]) -> str:
    """``override KEY=VALUE`` when an override set the field at ``path`` (or a field inside it):
    the problem is the flag's, not the file's."""
    for key, value in overrides.items():
        if path == key or path.startswith(key + ".") or key.startswith(path + ".") and path:
            shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            return f"override {key}={shown}"
    return ""


# ---------------------------------------------------------------------------- overrides


def parse_set_args(items: Iterable[str]) -> dict[str, Any]:
    """``["trainer.epochs=10", "model.encoder.channels=[32, 64]"]`` -> dotted key -> value.

    Values are parsed as YAML, so numbers, booleans, lists and null come out typed.
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", [("", f"expected KEY=VALUE (for example trainer.epochs=10), got {item!r}")])
        try:
            overrides[key.strip()] = load_yaml(raw)
        except yaml.YAMLError as exc:
            why = getattr(exc, "problem", None)
            raise ConfigError("--set", [(key.strip(), f"cannot parse the value {raw!r} as YAML"
                                                      + (f": {why}" if why else ""))]) from None
    return overrides


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """A deep copy of ``data`` with each dotted key set; a part's bare name becomes ``{name: ...}``."""
    result = copy.deepcopy(dict(data))
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        if not all(keys):
            raise ConfigError(source, [(dotted, "an override key must be dotted field names, like trainer.epochs")])
        node = result
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif isinstance(child, str):  # a part given by name: `prior: normal`
                child = node[key] = {"name": child}
            elif not isinstance(child, dict):
                where = ".".join(keys[: i + 1])
                raise ConfigError(source, [(dotted, f"cannot set a field inside {where}, which is {child!r}")])
            node = child
        node[keys[-1]] = value
    return result


# ---------------------------------------------------------------------------- messages


def describe_errors(exc: ValidationError, schema: type[BaseModel], data: Any) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "missing" and loc and isinstance(loc[-1], int):
            # a fixed-length list short of an item: say what the whole list should be
            target = _locate(schema, data, loc[:-1])
            if typing.get_origin(target.annotation) is tuple:
                loc = loc[:-1]
                error = {**error, "type": "tuple_length", "input": _value_at(data, loc)}
        path = ".".join(str(part) for part in loc)
        problems.append((path, _message(error, schema, data, loc)))
    return problems


def _value_at(data: Any, loc: tuple) -> Any:
    for key in loc:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def _message(error: dict, schema: type[BaseModel], data: Any, loc: tuple) -> str:
    kind, value = error["type"], error.get("input")
    target = _locate(schema, data, loc)
    if kind == "extra_forbidden":
        owner, label = target.parent, target.part_label
        allowed = sorted(owner.model_fields) if owner is not None else []
        field = str(loc[-1])
        where = f" for {label}" if label else ""
        allowed_text = f" Allowed: {', '.join(allowed)}." if allowed else f" {label} takes no arguments." if label else ""
        return f"unknown field '{field}'{where}.{suggest(field, allowed)}{allowed_text}"
    if kind in ("unknown_part", "unknown_family"):
        return error["msg"]
    if kind == "missing":
        expected = f" (expected {describe_type(target.annotation, target.metadata)})" if target.annotation else ""
        return f"required field is missing{expected}"
    if kind in ("value_error", "assertion_error"):
        return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if target.annotation is not None:
        hint = ""
        if kind == "literal_error" and isinstance(value, str):
            hint = suggest(value, typing.get_args(target.annotation))
        return f"expected {describe_type(target.annotation, target.metadata)}, got {value!r}.{hint}".rstrip(".")
    return f"{error['msg']}, got {value!r}"


class _Target:
    def __init__(self, annotation=None, metadata=(), parent=None, part_label=""):
        self.annotation, self.metadata, self.parent, self.part_label = annotation, list(metadata), parent, part_label


def _locate(schema: type[BaseModel], data: Any, loc: tuple) -> _Target:
    """Follow ``loc`` through the schema (and through part parameter schemas) to the field."""
    annotation: Any = schema
    metadata: list = []
    parent, label = None, ""
    for key in loc:
        annotation = _strip_optional(annotation)
        if annotation is ModelConfig:  # the model section: its family's schema
            family = data.get("family", "vae") if isinstance(data, dict) else None
            if not isinstance(family, str) or family not in FAMILIES:
                return _Target(str, (), ModelConfig, "") if key == "family" else _Target()
            annotation = FAMILIES.entry(family).params
            label = f"model family '{family}'"
        if isinstance(annotation, type) and issubclass(annotation, PartSpec):
            name = data if isinstance(data, str) else data.get("name") if isinstance(data, dict) else None
            if key == "name":
                return _Target(str, (), annotation, "")
            if not isinstance(name, str) or name not in annotation.registry:
                return _Target()
            label = f"{annotation.registry.kind} '{name}'"
            annotation = annotation.registry.entry(name).params
            if annotation is None:
                return _Target(None, (), None, label)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parent = annotation
            field = annotation.model_fields.get(str(key))
            if field is None:
                return _Target(None, (), parent, label)
            annotation, metadata = field.annotation, field.metadata
            data = data.get(key) if isinstance(data, dict) else None
            continue
        if isinstance(key, int) and typing.get_origin(annotation) in (list, tuple):
            args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
            inner = args[key] if typing.get_origin(annotation) is tuple and len(args) > key else args[0] if args else Any
            annotation, metadata = _split_annotated(inner)
            data = data[key] if isinstance(data, list) and key < len(data) else None
            continue
        if typing.get_origin(annotation) in (Union, types.UnionType):
            # pydantic names the union member it tried (e.g. 'list[int]'); describe the whole union
            return _Target(annotation, metadata, parent, label)
        return _Target()
    return _Target(annotation, metadata, parent, label)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _split_annotated(annotation: Any) -> tuple[Any, list]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return base, extra
    return annotation, []


_NAMES = {int: "int", float: "number", str: "string", bool: "boolean (true/false)"}
_ARTICLES = {int: "an int", float: "a number", str: "a string", bool: "true or false"}


def _bounds(metadata: list) -> str:
    words = []
    for item in metadata:
        for attr, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            bound = getattr(item, attr, None)
            if bound is not None:
                words.append(f"{symbol} {bound}")
        if getattr(item, "min_length", None):
            words.append(f"with at least {item.min_length} item{'s' if item.min_length > 1 else ''}")
    return (" " + " and ".join(words)) if words else ""


def describe_type(annotation: Any, metadata: list = (), plural: bool = False) -> str:
    """A type annotation in words: ``a list of int > 0``, ``one of 'relu', 'silu'``."""
    annotation, extra = _split_annotated(annotation)
    metadata = list(metadata) + extra
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _NAMES:
        base = _NAMES[annotation] if plural else _ARTICLES[annotation]
        return base + _bounds(metadata)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        # a field's own bounds (Optional[float] = Field(None, gt=0, lt=1)) bound its one member
        text = " or ".join(describe_type(a, metadata if len(members) == 1 else ()) for a in members)
        return text + (" or null" if len(members) < len(args) else "")
    if origin is list:
        inner, inner_meta = _split_annotated(args[0]) if args else (Any, [])
        return f"a list of {describe_type(inner, inner_meta, plural=True)}{_bounds(metadata)}"
    if origin is tuple:
        inner, inner_meta = _split_annotated(args[0]) if args else (Any, [])
        count = len(args) if Ellipsis not in args else None
        size = f"{count} " if count else ""
        return f"a list of {size}{describe_type(inner, inner_meta, plural=True)}"
    if isinstance(annotation, type) and issubclass(annotation, PartSpec):
        kind = annotation.registry.kind
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} name or a mapping with 'name'"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))
