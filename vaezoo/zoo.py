"""Model names: the zoo's variants (``configs/*.yaml``) and ones users register in code."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Union

from ._registry import Registry, _fnmatch_all, natural_key
from .config import load_experiment, validate_experiment
from .errors import ConfigError
from .factory import build_model
from .models import BaseVAE
from .resources import configs_dir, registry_dir
from .safe_text import load_json
from .schemas import ExperimentConfig, ModelConfig

__all__ = ["MODELS", "register_model", "list_models", "get_config", "create", "is_pretrained", "model_family"]

# name -> a YAML path, or a function returning the experiment as a dict
MODELS: Registry[Union[Path, Callable[[], Mapping[str, Any]]]] = Registry("model")


def _register_zoo_configs() -> None:
    for path in sorted(configs_dir().glob("*.yaml")):
        MODELS.add(path.stem, path)


def register_model(name: str):
    """Decorator: register a function that returns an experiment dict under ``name``.

    >>> @vaezoo.register_model("my-vae")
    ... def my_vae():
    ...     return {"model": {"input_shape": [1, 28, 28], "latent_dim": 16,
    ...                       "encoder": "mlp", "decoder": "mlp"}}
    """
    return MODELS.register(name)


def pretrained_names() -> set[str]:
    """Names with published weights: one ``registry/<name>.json`` entry each."""
    return {p.stem for p in registry_dir().glob("*.json")}


def _loadable_names() -> set[str]:
    """Published names whose weights ship (with vaezoo or in a weight pack, which ``load`` names when
    it is not installed) or are on the Hub: all but retired entries not on the Hub."""
    names = set()
    for path in registry_dir().glob("*.json"):
        entry = load_json(path.read_text())
        if entry.get("shipped") or entry["weights"].get("revision"):
            names.add(path.stem)
    return names


def is_pretrained(name: str) -> bool:
    return name in pretrained_names()


def list_models(
    filter: str | Iterable[str] = "*", exclude: str | Iterable[str] = (), pretrained: bool = False,
    family: str | Iterable[str] | None = None,
) -> list[str]:
    """Model names matching the fnmatch ``filter``, minus ``exclude``, in natural order.

    ``pretrained=True`` keeps only those with published weights (shipped, in a weight pack or on the Hub; not retired ones); ``family`` (a name or several)
    keeps only models of those families (``list_models(family="hvae")``).
    """
    names = MODELS.names(filter, exclude)
    if pretrained:  # the configs with weights, and published runs of a config under names of their own (a seed)
        published = _loadable_names()
        names = sorted({n for n in names if n in published} | set(_fnmatch_all(published - set(MODELS), filter, exclude)),
                       key=natural_key)
    if family is not None:
        wanted = {family} if isinstance(family, str) else set(family)
        names = [n for n in names if model_family(n) in wanted]
    return names


def model_family(name: str) -> str:
    """The family of a zoo model name, read from its config (a published run's, from its entry)."""
    if name not in MODELS and name in pretrained_names():
        return load_json((registry_dir() / f"{name}.json").read_text())["model"].get("family", "vae")
    return get_config(name).model.family


ConfigSource = Union[str, Path, Mapping[str, Any], ExperimentConfig, ModelConfig]


def get_config(source: ConfigSource, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """The validated experiment for a model name, a YAML path, a dict or a config object.

    ``overrides`` are dotted keys into the experiment (``{"trainer.epochs": 5}``).
    """
    if isinstance(source, ModelConfig):
        source = {"model": source.model_dump()}
    if isinstance(source, Mapping) and "model" not in source and "input_shape" in source:
        source = {"model": dict(source)}  # a bare model section
    if isinstance(source, ExperimentConfig):
        return validate_experiment(source.model_dump(), overrides, source=source.name or "")
    if isinstance(source, Mapping):
        return validate_experiment(source, overrides)
    text = str(source)
    if text in MODELS:
        entry = MODELS.get(text)
        if isinstance(entry, Path):
            return load_experiment(entry, overrides)
        data = dict(entry())
        data.setdefault("name", text)
        return validate_experiment(data, overrides, source=text)
    path = Path(text).expanduser()
    if path.is_file():
        return load_experiment(path, overrides)
    if path.suffix in (".yaml", ".yml") or "/" in text:
        raise ConfigError(text, [("", "no such config file")])
    raise ConfigError("", [("", MODELS.unknown_message(text) + ". Or pass the path of a YAML config file.")])


def create(source: ConfigSource, **overrides: Any) -> BaseVAE:
    """A freshly initialized model from a zoo name, a YAML path, a dict or a config.

    Keyword arguments override fields of the ``model`` section; dotted keys reach inside
    parts: ``create("fashion-conv64", latent_dim=32)``,
    ``create("fashion-conv", **{"encoder.channels": [16, 32]})``.
    """
    experiment = get_config(source, {f"model.{key}": value for key, value in overrides.items()})
    return build_model(experiment.model, source=experiment.name or "")


_register_zoo_configs()
