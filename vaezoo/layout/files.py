"""The files of a checkpoint folder: ``config.json``, ``model.safetensors`` and their checks.

``config.json`` holds the full validated model config (its ``family`` says which class to
build), the config version and the vaezoo version; no code travels in a checkpoint, parts are
rebuilt from the registries by name. Reading validates everything before a tensor is copied:
the config against vaezoo's schemas (unknown keys are errors), the tensor names, shapes and
dtypes against the built model. Configs written by earlier releases are migrated on reading.
"""

from __future__ import annotations

import json
import warnings
import os
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

import torch
from pydantic import ConfigDict, SerializeAsAny, ValidationError, model_validator
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..config import describe_errors
from ..errors import CheckpointError, ConfigError
from ..safe_text import decode_text, load_json
from ..schemas import DataConfig, ModelConfig, Strict, TrainerConfig
from .checkpoint import atomic_write_bytes, has_run_state

__all__ = [
    "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "CONFIG_VERSION", "CheckpointConfig", "migrate_config",
    "read_config", "write_config", "write_weights", "read_weights", "load_state", "file_mode", "without_local_paths",
    "no_pretrained_downloads", "training_in_progress",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
CONFIG_VERSION = 2  # 1: vaezoo 0.1's `model_class: vaezoo.VAE`, one family; 2: `family` + `config_version`

# which decorator registers each kind of part, for "unknown part" messages
_REGISTER_HINT = {
    "encoder": "@vaezoo.register_backbone('{name}')",
    "decoder": "@vaezoo.register_backbone('{name}', role='decoder')",
    "prior": "@vaezoo.register_prior('{name}')",
    "likelihood": "@vaezoo.register_likelihood('{name}')",
    "objective": "@vaezoo.register_objective('{name}')",
    "dataset": "@vaezoo.register_dataset('{name}')",
    "quantizer": "@vaezoo.register_quantizer('{name}')",
    "code_prior": "@vaezoo.register_code_prior('{name}')",
    "family": "@vaezoo.register_family('{name}', config=...)",
}


class CheckpointConfig(Strict):
    """The schema of ``config.json``. Unknown keys are errors, unlike diffusers' warnings."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    config_version: Literal[2]
    family: str
    vaezoo_version: str
    name: Optional[str] = None
    model: SerializeAsAny[ModelConfig]
    data: Optional[DataConfig] = None
    trainer: Optional[TrainerConfig] = None
    metrics: Any = None
    training: Optional[dict[str, Any]] = None

    @model_validator(mode="after")
    def _family_matches(self):
        if self.family != self.model.family:
            raise ValueError(f"family is '{self.family}' but model.family is '{self.model.family}'")
        return self


def migrate_config(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A ``config.json`` of any earlier version, in today's form (timm's ``_parse_model_cfg`` way)."""
    version = data.get("config_version")
    if version is None and "model_class" in data:  # version 1: one family, named by its class
        model_class = data["model_class"]
        if model_class != "vaezoo.VAE":
            raise CheckpointError(f"{source}: model_class: '{model_class}' is not a class vaezoo builds (expected "
                                  f"'vaezoo.VAE'); this is not a vaezoo checkpoint")
        data = {k: v for k, v in data.items() if k != "model_class"}
        model = dict(data.get("model") or {})
        model.setdefault("family", "vae")
        return {"config_version": CONFIG_VERSION, "family": model["family"], **data, "model": model}
    if isinstance(version, int) and version > CONFIG_VERSION:
        raise CheckpointError(f"{source}: config_version {version} was written by a newer vaezoo (this one reads "
                              f"up to {CONFIG_VERSION}); upgrade vaezoo")
    return data


def file_mode() -> int:
    """The mode of a new file under the process umask (what ``open`` gives), e.g. 0644."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    CheckpointConfig.model_validate(config)  # never write a checkpoint that would not load
    atomic_write_bytes(path, (json.dumps(config, indent=2) + "\n").encode())


def without_local_paths(config_text: str) -> str:
    """A ``config.json`` as it goes to the Hub: without ``data.root``, a folder on the pusher's
    machine (the run remembers it for itself; another machine finds its data its own way)."""
    config = json.loads(config_text)
    if isinstance(config.get("data"), dict) and config["data"].get("root") is not None:
        config["data"]["root"] = None
    return json.dumps(config, indent=2) + "\n"


def write_weights(path: Path, state: Mapping[str, torch.Tensor], dtype: Optional[torch.dtype] = None) -> None:
    """The state dict as safetensors (floating tensors cast to ``dtype`` when given), mode as any new file."""
    tensors = {}
    for key, value in state.items():
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    # the bytes, then one atomic replace: a crash leaves the old file or the new one, never a part
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata={"format": "pt"}))
    os.chmod(path, file_mode())


def training_in_progress(folder: str | Path) -> bool:
    """A run folder whose training has not ended: its state, and no ``config.json`` yet (written at the end)."""
    return not (Path(folder) / CONFIG_NAME).is_file() and has_run_state(folder)


def read_config(path: str | Path) -> CheckpointConfig:
    """``config.json`` validated (and migrated from earlier versions); every problem names the file and key."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a vaezoo checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        data = load_json(decode_text(path.read_bytes(), "config.json"))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:  # not UTF-8, not JSON, a key twice
        raise CheckpointError(f"{path}: not a valid config.json: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    data = migrate_config(data, str(path))
    no_pretrained_downloads(data.get("model"), str(path))
    try:
        return CheckpointConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(exc, CheckpointConfig, data)
        for i, error in enumerate(exc.errors(include_url=False)):
            if error["type"] in ("unknown_part", "unknown_family"):
                problems[i] = (problems[i][0], problems[i][1] + _register_hint(error["loc"], error.get("input")))
        raise ConfigError(str(path), problems) from None


def no_pretrained_downloads(section: Any, source: str, where: str = "model") -> None:
    """A checkpoint's weights are its model.safetensors: a part's own ``pretrained`` switch (timm's
    download) is forced off, with a warning, wherever it is in the model section."""
    if isinstance(section, dict):
        for key, value in section.items():
            if key == "pretrained" and value not in (False, None):
                section[key] = False
                warnings.warn(f"{source}: {where}.pretrained is {value!r}; ignored (set to false): a checkpoint's "
                              f"weights come from its {WEIGHTS_NAME}, and loading one downloads nothing",
                              UserWarning, stacklevel=3)
            else:
                no_pretrained_downloads(value, source, f"{where}.{key}")
    elif isinstance(section, list):
        for i, value in enumerate(section):
            no_pretrained_downloads(value, source, f"{where}[{i}]")


def _register_hint(loc: tuple, name: Any) -> str:
    kind = str(loc[-2]) if len(loc) >= 2 and loc[-1] == "name" else str(loc[-1])
    decorator = _REGISTER_HINT.get(kind, "the matching @vaezoo.register_* decorator").format(name=name)
    what = "model family" if kind == "family" else kind or "part"
    return (
        f". The checkpoint was made with a custom {what}: register it before loading "
        f"({decorator} in code you import first), or install the package that provides it "
        f"(it registers through the 'vaezoo.plugins' entry-point group)"
    )


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a vaezoo checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def load_state(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str,
               published: bool = False) -> None:
    """Copy ``tensors`` into ``model`` after checking names and shapes, all problems in one message.

    Floating tensors stored in another floating dtype (fp16 shipped weights) are cast to the
    model's; any other dtype difference (an integer tensor where a float was saved) is refused.
    ``published``: the tensors are published weights, which leave out the model's training parts
    (a discriminator): those keep their fresh values, and holding them is an error.
    """
    expected = model.state_dict()
    if published:
        training_only = model.training_only_keys()
        expected = {k: v for k, v in expected.items() if k not in training_only}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing tensors: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_listing(unexpected)}")
    common = sorted(set(expected) & set(tensors))
    wrong = [f"{k} has shape {list(tensors[k].shape)}, the model expects {list(expected[k].shape)}"
             for k in common if tensors[k].shape != expected[k].shape]
    if wrong:
        problems.append("wrong shapes: " + _listing(wrong))
    kinds = [f"{k} is {str(tensors[k].dtype).removeprefix('torch.')}, the model expects "
             f"{str(expected[k].dtype).removeprefix('torch.')}" for k in common
             if tensors[k].dtype != expected[k].dtype
             and not (tensors[k].is_floating_point() and expected[k].is_floating_point())]
    if kinds:
        problems.append("wrong dtypes: " + _listing(kinds))
    if problems:
        raise CheckpointError(f"{source}: does not match the architecture in its config: " + "; ".join(problems))
    # NaN anywhere, or an infinite weight, would load and then give NaN bounds, misleading codebook
    # statistics or a crash deep in a linear-algebra library; a buffer may hold -inf (a causal mask)
    parameters = {name for name, _ in model.named_parameters()}
    broken = [k for k in common if tensors[k].is_floating_point() and (
        bool(tensors[k].isnan().any()) or (k in parameters and not bool(tensors[k].isfinite().all())))]
    if broken:
        raise CheckpointError(f"{source}: non-finite values (NaN or inf) in {_listing(broken)}; these weights "
                              f"cannot be used (a diverged training? its last good checkpoint may be kept)")
    state = {k: v.to(expected[k].dtype) if v.dtype != expected[k].dtype else v for k, v in tensors.items()}
    model.load_state_dict(state, strict=not published)


def _listing(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")
