"""A checkpoint folder in Hub layout -> a model: config validated, family built, tensors checked."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError
from ..factory import build_model
from ..layout import CONFIG_NAME, WEIGHTS_NAME, CheckpointConfig, load_state, read_config, read_weights
from ..layout.files import training_in_progress
from ..models import BaseVAE

__all__ = ["load_local", "load_weights", "build_from_checkpoint", "validate_folder"]


def build_from_checkpoint(config: CheckpointConfig, source: str) -> BaseVAE:
    """The architecture of a ``config.json``, with fresh weights; nothing the file names is fetched."""
    return build_model(config.model, source=source)


def load_weights(model: BaseVAE, path: str | Path, map_location: str | torch.device = "cpu") -> BaseVAE:
    """The tensors of a safetensors file copied into ``model`` after checking names, shapes and dtypes."""
    load_state(model, read_weights(path), source=str(path), published=True)
    return model.to(map_location)


def validate_folder(directory: Path) -> BaseVAE:
    """Read a folder the way loading does (config, then tensors), raising what loading would."""
    config = read_config(directory / CONFIG_NAME)
    model = build_from_checkpoint(config, source=str(directory / CONFIG_NAME))
    return load_weights(model, directory / WEIGHTS_NAME)


def load_local(directory: str | Path, map_location: str | torch.device = "cpu") -> BaseVAE:
    """A model from a folder in Hub layout, in eval mode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such folder")
    if training_in_progress(directory):
        raise CheckpointError(f"{directory} is a training that has not ended: its {CONFIG_NAME} and {WEIGHTS_NAME} "
                              f"are written when it does. `vaezoo info {directory}` says where it stands, and "
                              f"`vaezoo train --resume {directory}` continues it")
    return validate_folder(directory).to(map_location).eval()
