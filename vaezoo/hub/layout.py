"""The Hub repository layout: ``config.json`` + ``model.safetensors`` + ``README.md``.

``config.json`` holds the full validated model config, the vaezoo version and the class to
build; no code travels in a checkpoint, parts are rebuilt from the registries by name.
Loading validates everything before a tensor is copied: the config against vaezoo's
schemas (unknown keys are errors), the tensor names and shapes against the built model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional

import torch
from pydantic import ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..model import VAE
from ..schemas import DataConfig, ExperimentConfig, ModelConfig, Strict, TrainerConfig
from .card import SAMPLES_NAME, render_card
from .errors import CheckpointError

__all__ = [
    "save_pretrained", "load_local", "read_config", "build_from_config", "load_weights", "save_samples",
    "CheckpointConfig", "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "SAMPLES_NAME", "MODEL_CLASS",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MODEL_CLASS = "vaezoo.VAE"

# which decorator registers each kind of part, for "unknown part" messages
_REGISTER_HINT = {
    "encoder": "@vaezoo.register_backbone('{name}')",
    "decoder": "@vaezoo.register_backbone('{name}', role='decoder')",
    "prior": "@vaezoo.register_prior('{name}')",
    "likelihood": "@vaezoo.register_likelihood('{name}')",
    "objective": "@vaezoo.register_objective('{name}')",
    "dataset": "@vaezoo.register_dataset('{name}')",
}


class CheckpointConfig(Strict):
    """The schema of ``config.json``. Unknown keys are errors, unlike diffusers' warnings."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_class: Literal["vaezoo.VAE"]
    vaezoo_version: str
    name: Optional[str] = None
    model: ModelConfig
    data: Optional[DataConfig] = None
    trainer: Optional[TrainerConfig] = None
    metrics: Any = None
    training: Optional[dict[str, Any]] = None


def save_pretrained(
    model: VAE,
    directory: str | Path,
    *,
    experiment: ExperimentConfig | None = None,
    metrics: Any = None,
    training: Mapping[str, Any] | None = None,
    samples: int | torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    repo_id: str | None = None,
    license: str = "mit",
    tags: Iterable[str] = (),
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and a ``README.md`` model card to ``directory``.

    ``metrics``: ``{name: value}`` or records with their protocol (see the registry schema).
    ``training``: what the run took (epochs, time, hardware). ``samples``: an image batch
    or a count to draw from the model, saved as ``samples.png`` and shown in the card (an
    existing ``samples.png`` is kept and shown). ``dtype=torch.float16`` halves the file;
    loading casts back to float32. ``repo_id`` makes the card's snippet ``hf-hub:repo_id``.
    """
    from .. import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = (experiment.name if experiment else None) or (repo_id.split("/")[-1] if repo_id else None)
    config: dict[str, Any] = {
        "model_class": MODEL_CLASS,
        "vaezoo_version": __version__,
        "name": name,
        "model": model.config.model_dump(mode="json"),
    }
    if experiment is not None:
        config["data"] = experiment.data.model_dump(mode="json")
        config["trainer"] = experiment.trainer.model_dump(mode="json")
    if metrics:
        config["metrics"] = metrics.model_dump(mode="json") if hasattr(metrics, "model_dump") else metrics
    if training:
        config["training"] = dict(training)
    CheckpointConfig.model_validate(config)  # never write a checkpoint that would not load

    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    if samples is not None:
        save_samples(model, directory / SAMPLES_NAME, samples)
    card = render_card(
        name=name or directory.resolve().name,
        config=config,
        num_parameters=model.num_parameters(),
        load_ref=f"hf-hub:{repo_id}" if repo_id else str(directory),
        metrics=config.get("metrics"),
        license=license,
        tags=tags,
        has_samples=(directory / SAMPLES_NAME).is_file(),
        training=training,
    )
    (directory / CARD_NAME).write_text(card)
    return directory


def save_samples(model: VAE, path: str | Path, samples: int | torch.Tensor, nrow: int = 8, seed: int = 0) -> Path:
    """A grid of images as PNG; an int draws that many from the model with a fixed seed."""
    from torchvision.utils import save_image

    if isinstance(samples, int):
        # a fixed seed makes the card's picture reproducible; fork_rng leaves the caller's RNG alone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            was_training = model.training
            model.eval()
            images = model.sample(samples)
            model.train(was_training)
    else:
        images = samples
    images = images.detach().float().cpu().clamp(0, 1)
    save_image(images, str(path), nrow=nrow, padding=2, pad_value=1.0)
    return Path(path)


# ------------------------------------------------------------------------------ loading


def read_config(path: str | Path) -> CheckpointConfig:
    """``config.json`` validated; every problem names the file and the key."""
    from ..config import ConfigError, describe_errors

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a vaezoo checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    model_class = data.get("model_class")
    if model_class is not None and model_class != MODEL_CLASS:
        raise CheckpointError(
            f"{path}: model_class: '{model_class}' is not a class vaezoo builds (expected '{MODEL_CLASS}'); "
            f"this is not a vaezoo checkpoint, or it was written by a newer vaezoo"
        )
    try:
        return CheckpointConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(exc, CheckpointConfig, data)
        for i, error in enumerate(exc.errors(include_url=False)):
            if error["type"] == "unknown_part":
                problems[i] = (problems[i][0], problems[i][1] + _register_hint(error["loc"], error.get("input")))
        raise ConfigError(str(path), problems) from None


def _register_hint(loc: tuple, name: Any) -> str:
    kind = str(loc[-2]) if len(loc) >= 2 else ""
    decorator = _REGISTER_HINT.get(kind, "the matching @vaezoo.register_* decorator").format(name=name)
    return (
        f". The checkpoint was made with a custom {kind or 'part'}: register it before loading "
        f"({decorator} in code you import first), or install the package that provides it "
        f"(it registers through the 'vaezoo.plugins' entry-point group)"
    )


def build_from_config(config: CheckpointConfig | ModelConfig, source: str = "") -> VAE:
    from ..zoo import build_model

    model_config = config.model if isinstance(config, CheckpointConfig) else config
    return build_model(model_config, source=source)


def load_weights(model: VAE, path: str | Path, map_location: str | torch.device = "cpu") -> VAE:
    """Copy the tensors of a safetensors file into ``model``, after checking names and shapes.

    Floating tensors stored in another dtype (fp16 shipped weights) are cast to the model's.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a vaezoo checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing tensors: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_listing(unexpected)}")
    wrong = [f"{k} has shape {list(tensors[k].shape)}, the model expects {list(expected[k].shape)}"
             for k in sorted(set(expected) & set(tensors)) if tensors[k].shape != expected[k].shape]
    if wrong:
        problems.append("wrong shapes: " + _listing(wrong))
    if problems:
        raise CheckpointError(f"{path}: does not match the architecture in its config: " + "; ".join(problems))
    state = {}
    for key, value in tensors.items():
        target = expected[key]
        if value.is_floating_point() and target.is_floating_point() and value.dtype != target.dtype:
            value = value.to(target.dtype)
        state[key] = value
    model.load_state_dict(state, strict=True)
    return model.to(map_location)


def _listing(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def load_local(directory: str | Path, map_location: str | torch.device = "cpu") -> VAE:
    """A model from a folder in Hub layout, in eval mode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such folder")
    config = read_config(directory / CONFIG_NAME)
    model = build_from_config(config, source=str(directory / CONFIG_NAME))
    load_weights(model, directory / WEIGHTS_NAME, map_location=map_location)
    return model.eval()
