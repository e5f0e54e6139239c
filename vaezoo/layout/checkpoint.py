"""Crash-safe training checkpoints: safetensors plus JSON, written atomically. No pickle.

The newest checkpoint is one file, ``checkpoints/last.safetensors``, and the one before it is
kept as ``checkpoints/previous.safetensors``:

* tensors: ``model.<name>`` (the state dict, training-only parts such as a discriminator
  included), ``optim.<optimizer>.<param index>.<key>`` (each named optimizer's state,
  flattened), ``rng.<name>`` (RNG byte states as uint8 tensors), ``ema.<name>`` (the moving
  average of the weights, where the run keeps one);
* the safetensors header's metadata, key ``vaezoo.trainer_state``: JSON with everything
  else (epoch, step, each optimizer's param groups, the schedulers, metrics history, ...).

Checkpoints of format 1 held one optimizer (``optim.<param index>.<key>``, ``optimizer`` and
``scheduler`` in the JSON); they load as the optimizer and scheduler named ``model``.

The header also holds the sha256 of the tensors' bytes and of the JSON, so that loading tells
a corrupted or truncated checkpoint from a good one instead of resuming from it.

Keeping the JSON inside the one file makes the commit a single ``os.replace``: there is no
moment at which the tensors and the scalars on disk belong to different steps. The sidecar
``checkpoints/last.json`` is a copy of the JSON for people and tools (``jq .step``); loading
never reads it.

A write goes to a temporary file in the same folder, is flushed and fsynced, renamed over
the previous checkpoint with ``os.replace`` (atomic on POSIX and Windows), and the folder is
fsynced so that the rename itself survives a power cut. A crash at any point leaves either
the previous checkpoint or the new one, never a torn file (between the two renames, only
``previous.safetensors``: loading a run folder then reads it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from ..errors import CheckpointError
from ..parts.objectives.base import MAIN_UPDATE

__all__ = [
    "CHECKPOINT_DIR", "CHECKPOINT_NAME", "run_state_path", "has_run_state", "BEST_NAME", "best_weights_path", "save_best_weights", "load_best_weights", "PREVIOUS_NAME", "SIDECAR_NAME", "FORMAT", "Checkpoint", "CheckpointError",
    "atomic_write_bytes", "save_checkpoint", "load_checkpoint", "checkpoint_path",
    "flatten_optimizer_state", "unflatten_optimizer_state", "MAIN_OPTIMIZER",
]

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "last.safetensors"
PREVIOUS_NAME = "previous.safetensors"
SIDECAR_NAME = "last.json"
STATE_KEY = "vaezoo.trainer_state"
TENSORS_SHA_KEY = "vaezoo.tensors_sha256"
STATE_SHA_KEY = "vaezoo.state_sha256"
FORMAT = "vaezoo-train-checkpoint/2"
_FORMAT_1 = "vaezoo-train-checkpoint/1"  # one optimizer: read as the one named "model"
MAIN_OPTIMIZER = MAIN_UPDATE


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / CHECKPOINT_NAME


def run_state_path(folder: str | Path) -> Path:
    """The readable copy of a run's checkpoint scalars and recipe (``checkpoints/last.json``)."""
    return Path(folder) / CHECKPOINT_DIR / SIDECAR_NAME


def has_run_state(folder: str | Path) -> bool:
    """Whether ``folder`` holds a training's resumable state (a run folder, ended or not)."""
    return run_state_path(folder).is_file()


# ---------------------------------------------------------------------------- atomic files


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, keep_previous: str | None = None) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part;
    ``keep_previous``: the name (in the same folder) the old file moves to first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, path.with_name(keep_previous))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


# ---------------------------------------------------------------------------- optimizer state


def flatten_optimizer_state(state_dict: dict[str, Any], prefix: str = "optim."
                            ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` -> (tensors keyed ``<prefix><index>.<key>``, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_optimizer_state`; ``tensors`` keyed ``<index>.<key>``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])  # Adam unpacks them; JSON made them a list
        groups.append(group)
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------------------- checkpoints


@dataclass
class Checkpoint:
    """What a run needs to continue: tensors grouped by owner, plus the JSON state."""

    state: dict[str, Any]
    model: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> optimizer.state_dict()
    rng: dict[str, torch.Tensor] = field(default_factory=dict)
    averaged: dict[str, torch.Tensor] = field(default_factory=dict)  # the moving average's state dict
    path: Path | None = None

    @property
    def step(self) -> int:
        return int(self.state["global_step"])


def save_checkpoint(
    run_dir: str | Path,
    *,
    model: torch.nn.Module,
    optimizers: Mapping[str, torch.optim.Optimizer],
    rng: dict[str, torch.Tensor],
    state: dict[str, Any],
    averaged: torch.nn.Module | None = None,
) -> Path:
    """Write ``run_dir/checkpoints/last.safetensors`` atomically, replacing the previous one.

    ``optimizers``: every optimizer of the run by name (names without dots); ``state`` must be
    JSON-able (epoch, step, scheduler states, history, ...); ``rng`` maps names to uint8
    byte-state tensors; ``averaged``: the module holding the moving average.
    """
    tensors: dict[str, torch.Tensor] = {}
    for owner, module in (("model", model), ("ema", averaged)):
        for name, value in (module.state_dict().items() if module is not None else ()):
            tensors[f"{owner}.{name}"] = value.detach()
    optim_meta = {}
    for name, optimizer in optimizers.items():
        if not name or "." in name:
            raise ValueError(f"optimizer name {name!r}: a checkpoint needs a non-empty name without dots")
        optim_tensors, optim_meta[name] = flatten_optimizer_state(optimizer.state_dict(), f"optim.{name}.")
        tensors.update(optim_tensors)
    for name, value in rng.items():
        tensors[f"rng.{name}"] = value
    # safetensors wants contiguous CPU tensors that share no storage
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    full_state = {"format": FORMAT, **state, "optimizers": optim_meta}
    text = json.dumps(full_state, sort_keys=True)
    path = checkpoint_path(run_dir)
    metadata = {STATE_KEY: text, STATE_SHA_KEY: _sha256_text(text), TENSORS_SHA_KEY: tensors_sha256(tensors),
                "format": "pt"}
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata=metadata), keep_previous=PREVIOUS_NAME)
    atomic_write_bytes(path.with_name(SIDECAR_NAME), (json.dumps(full_state, indent=2, sort_keys=True) + "\n").encode())
    return path


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{value.dtype}|{list(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_checkpoint(run_dir_or_file: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and verify a checkpoint written by :func:`save_checkpoint` (a run folder or the file
    itself). A run folder whose ``last.safetensors`` is missing (a crash between the two renames
    of a write) gives its ``previous.safetensors``."""
    path = Path(run_dir_or_file)
    if path.is_dir():
        path = checkpoint_path(path)
        if not path.is_file() and path.with_name(PREVIOUS_NAME).is_file():
            path = path.with_name(PREVIOUS_NAME)
    if not path.is_file():
        raise CheckpointError(
            f"no training checkpoint at {path}; --resume takes the --out folder of an earlier run "
            f"(it holds {CHECKPOINT_DIR}/{CHECKPOINT_NAME})"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({exc}){_fallback(path)}") from None
    if STATE_KEY not in meta:
        raise CheckpointError(f"{path} is a safetensors file but not a vaezoo training checkpoint (no trainer state)")
    text = meta[STATE_KEY]
    if STATE_SHA_KEY in meta and _sha256_text(text) != meta[STATE_SHA_KEY]:
        raise CheckpointError(f"{path}: its trainer state does not match its checksum{_fallback(path)}")
    if TENSORS_SHA_KEY in meta and tensors_sha256(tensors) != meta[TENSORS_SHA_KEY]:
        raise CheckpointError(f"{path}: its tensors do not match their checksum (corrupted bytes){_fallback(path)}")
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{path}: its trainer state is not valid JSON ({exc}){_fallback(path)}") from None
    if not isinstance(state, dict) or state.get("format") not in (FORMAT, _FORMAT_1):
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} has checkpoint format {found!r}; this vaezoo reads {FORMAT!r} and {_FORMAT_1!r}")
    if state["format"] == _FORMAT_1:
        state, tensors = _migrate_format_1(state, tensors)
    metas = state.get("optimizers")
    if not isinstance(metas, dict) or not metas or not all(isinstance(m, dict) and "param_groups" in m
                                                           for m in metas.values()):
        raise CheckpointError(f"{path}: its trainer state has no optimizer state{_fallback(path)}")
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "optim": {}, "rng": {}, "ema": {}}
    for key, value in tensors.items():
        owner, _, name = key.partition(".")
        if owner in groups:
            groups[owner][name] = value.to(map_location) if owner in ("model", "ema") else value
    optimizers = {}
    for name, meta in state.pop("optimizers").items():
        mine = {key[len(name) + 1:]: value for key, value in groups["optim"].items() if key.startswith(f"{name}.")}
        optimizers[name] = unflatten_optimizer_state(mine, meta)
    return Checkpoint(state=state, model=groups["model"], optimizers=optimizers, rng=groups["rng"],
                      averaged=groups["ema"], path=path)


def _migrate_format_1(state: dict[str, Any], tensors: dict[str, torch.Tensor]
                      ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A one-optimizer checkpoint as format 2: its optimizer and scheduler become ``model``'s."""
    state = dict(state)
    if "optimizer" in state:
        state["optimizers"] = {MAIN_OPTIMIZER: state.pop("optimizer")}
    if "scheduler" in state:
        state["schedulers"] = {MAIN_OPTIMIZER: state.pop("scheduler")}
    renamed = {(f"optim.{MAIN_OPTIMIZER}.{key[6:]}" if key.startswith("optim.") else key): value
               for key, value in tensors.items()}
    return state, renamed


# ---------------------------------------------------------------------------- the selected weights

BEST_NAME = "best.safetensors"


def best_weights_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / BEST_NAME


def save_best_weights(run_dir: str | Path, model: torch.nn.Module, epoch: int) -> Path:
    """The weights of the epoch with the lowest validation -ELBO (``trainer.select: best_val``),
    written atomically with the sha256 of their bytes."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {TENSORS_SHA_KEY: tensors_sha256(tensors), "epoch": str(epoch), "format": "pt"}
    return atomic_write_bytes(best_weights_path(run_dir), safetensors_bytes(tensors, metadata=metadata))


def load_best_weights(run_dir: str | Path, map_location: str | torch.device = "cpu"
                      ) -> tuple[dict[str, torch.Tensor], int]:
    """(the selected weights, their epoch), read from one open file: an epoch end that replaces it
    meanwhile cannot pair one epoch's number with another's tensors."""
    path = best_weights_path(run_dir)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: the selected weights cannot be read ({exc}); the run can only export its "
                              f"last weights: set trainer.select=last") from None
    if tensors_sha256(tensors) != meta.get(TENSORS_SHA_KEY):
        raise CheckpointError(f"{path}: the selected weights do not match their checksum (corrupted bytes)")
    return {k: v.to(map_location) for k, v in tensors.items()}, int(meta.get("epoch", 0))


def _fallback(path: Path) -> str:
    """What to do when ``path`` cannot be resumed from."""
    previous = path.with_name(PREVIOUS_NAME)
    if path.name == CHECKPOINT_NAME and previous.is_file():
        return (f"; it cannot be resumed from. The checkpoint before it is kept: continue from it with "
                f"`mv {previous} {path}` and the same --resume")
    return "; it cannot be resumed from: start the run again (or from a copy of the run folder you kept)"
