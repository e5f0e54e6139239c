"""``trainer.init_from``: a fresh run that starts from another model's weights.

Two uses: fine-tuning a published model further (its own recipe, more epochs), and putting a new
part over trained ones (a VampPrior over a trained encoder and decoder). Tensors are matched by
name; one whose shape differs is an error, since it means another architecture. Tensors the
source lacks keep their fresh initialization and tensors the run lacks are dropped: both are
listed in the run's notes, so nothing happens silently. A resumed run never re-reads the
source: its checkpoint holds the weights it has trained since.

The source is resolved like ``vaezoo.load``: a zoo name with published weights (sha256-verified
against the registry), ``hf-hub:org/repo@rev`` or a run folder; or a ``.safetensors`` file, read
as tensors by name (a retired entry's weights recovered with the ``git show`` its load error
prints: a recipe that started from it still runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError, HubError
from ..hub import load
from ..parts.priors.base import Prior

__all__ = ["warm_start", "initialize_priors_from_data"]


def warm_start(model: nn.Module, source: str) -> tuple[set[str], list[str]]:
    """Copy ``source``'s matching tensors into ``model``; returns (the names copied, notes)."""
    try:
        tensors = _weights_file(source) if source.endswith(".safetensors") else load(source).state_dict()
    except (HubError, CheckpointError) as exc:  # say which setting named it
        raise type(exc)(f"trainer.init_from: {exc}") from exc
    copied = copy_matching(model, tensors, source)
    fresh = sorted(set(model.state_dict()) - copied)
    unused = sorted(set(tensors) - copied)
    notes = [f"trainer.init_from: {len(copied)} tensors from {source}"]
    if fresh:
        notes.append(f"not in {source}, freshly initialized: {_listing(fresh)}")
    if unused:
        notes.append(f"in {source} but not in this model, left out: {_listing(unused)}")
    return copied, notes


def _weights_file(path: str) -> dict[str, torch.Tensor]:
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{path}: no such weights file (a .safetensors file of tensors by name)")
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc


def copy_matching(model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> set[str]:
    expected = model.state_dict()
    common = sorted(set(expected) & set(tensors))
    wrong = [f"{k} is {list(tensors[k].shape)} there, {list(expected[k].shape)} here"
             for k in common if tensors[k].shape != expected[k].shape]
    if wrong:
        raise CheckpointError(f"trainer.init_from: {source} is another architecture ({_listing(wrong)}); start from "
                              f"a model whose shared parts have the same shapes, or unset trainer.init_from")
    if not common:
        raise CheckpointError(f"trainer.init_from: no tensor of {source} has a name in this model (it has "
                              f"{_listing(sorted(tensors))}); start from a model of the same family")
    with torch.no_grad():
        for k in common:
            expected[k].copy_(tensors[k])  # casts fp16 shipped weights; keeps the memory format
    return set(common)


def initialize_priors_from_data(model: nn.Module, images: torch.Tensor, seed: int, skip: set[str]) -> list[str]:
    """Let each prior that asks for it (a VampPrior with ``init: data``) start from training
    images, unless its tensors came from ``trainer.init_from``. ``images``: uint8, (N, C, H, W)."""
    notes = []
    for name, module in model.named_modules():
        if not isinstance(module, Prior):
            continue
        own = {f"{name}.{k}" if name else k for k in module.state_dict(keep_vars=False)}
        if own & skip:
            continue
        done = module.initialize_from_data(images, torch.Generator().manual_seed(seed))
        if done:
            notes.append(f"{name or 'prior'}: {done}")
    return notes


def _listing(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
