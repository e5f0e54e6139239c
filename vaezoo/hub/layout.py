"""The Hub repository layout: ``config.json`` + ``model.safetensors`` + ``README.md``.

``config.json`` holds the full validated model config, the vaezoo version and the class to
build; no code travels in a checkpoint, parts are rebuilt from the registries by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..model import VAE
from ..schemas import ExperimentConfig, ModelConfig

__all__ = ["save_pretrained", "load_local", "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "MODEL_CLASS"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MODEL_CLASS = "vaezoo.VAE"


def save_pretrained(
    model: VAE,
    directory: str | Path,
    *,
    experiment: ExperimentConfig | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    from .. import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "model_class": MODEL_CLASS,
        "vaezoo_version": __version__,
        "name": experiment.name if experiment else None,
        "model": model.config.model_dump(mode="json"),
    }
    if experiment is not None:
        config["data"] = experiment.data.model_dump(mode="json")
        config["trainer"] = experiment.trainer.model_dump(mode="json")
    if metrics:
        config["metrics"] = metrics
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    name = config["name"] or directory.name
    (directory / CARD_NAME).write_text(f"---\nlibrary_name: vaezoo\n---\n\n# {name}\n\n```python\nimport vaezoo\n"
                                       f"model = vaezoo.load(\"{directory}\")\n```\n")
    return directory


def load_local(directory: str | Path, map_location: str | torch.device = "cpu") -> VAE:
    directory = Path(directory)
    config = json.loads((directory / CONFIG_NAME).read_text())
    model = VAE(ModelConfig.model_validate(config["model"]))
    model.load_state_dict(load_file(str(directory / WEIGHTS_NAME), device=str(map_location)))
    return model.eval()
