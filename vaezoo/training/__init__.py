"""The shared training loop: ``vaezoo.train(config, overrides, out=..., resume=...)``.

Modules, one job each: :mod:`.setup` (data, model, optimizer, resume, DDP), :mod:`.step` (one
optimizer step), :mod:`.loop` (the :class:`Trainer`'s epoch loop), :mod:`.recipe` (optimizer,
schedule, KL warm-up, precision), :mod:`.loader` (device-resident batches with labels),
:mod:`.checkpoint` (crash-safe safetensors checkpoints), :mod:`.guards` (the NaN stop),
:mod:`.export` (the run folder as a Hub checkpoint), :mod:`.progress` (bar or plain lines),
:mod:`.records` (metrics.jsonl, TensorBoard), :mod:`.distributed` (DDP), :mod:`.code_prior` (a VQ-VAE's
second stage, a run of the same loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, TextIO

from ..errors import CheckpointError, NonFiniteLossError, UsageError
from ..layout.checkpoint import load_checkpoint
from ..models import BaseVAE
from ..zoo import get_config
from .code_prior import train_code_prior
from .loop import Trainer

__all__ = ["train", "train_code_prior", "Trainer", "NonFiniteLossError", "CheckpointError", "default_out"]


def default_out(name: str | None) -> Path:
    return Path("runs") / (name or "run")


def train(
    config: Any = None,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    resume: bool | str | Path = False,
    data_root: str | None = None,
    device: str | None = None,
    stream: TextIO | None = None,
    allow_changes: bool = False,
    progress: bool = True,
) -> tuple[BaseVAE, dict[str, Any]]:
    """Train a model and write its run folder; returns the model and the last epoch's metrics (with
    ``trainer.select: best_val``, the selected epoch's validation scores and ``selected_epoch``).

    ``config``: a zoo name, a YAML path, a dict or an ExperimentConfig (optional when resuming:
    the checkpoint holds the config). ``overrides``: dotted keys, ``{"trainer.epochs": 5}``.
    ``out``: the run folder (default ``runs/<name>``). ``resume``: True to continue the run in
    ``out``, or the folder of the run to continue (then ``out`` defaults to it); a resume with
    another recipe (model, data, batch size, seed, optimizer, schedule, ...) is refused unless
    ``allow_changes=True``. Progress (a line within seconds, then the rate and an ETA) goes to
    ``stream`` (stderr by default); ``progress=False`` silences it. Ctrl-C or SIGTERM stops the run
    after a checkpoint (``resume`` continues it).
    The folder ends up with ``config.json``, ``model.safetensors``, ``README.md``,
    ``metrics.jsonl``, ``loss.png``, ``samples.png`` and ``checkpoints/``; ``vaezoo.load(out)``
    reads it.
    """
    resume_dir: Path | None = None
    if resume is not False and resume is not None:
        if resume is True:
            if out is None:
                raise UsageError("resume=True continues the run in `out`; pass out= (or resume='runs/x')")
            resume_dir = Path(out)
        else:
            resume_dir = Path(resume)
        if out is None:
            out = resume_dir
    if config is None:
        if resume_dir is None:
            raise UsageError("train() needs a config (a zoo name, a YAML path, a dict), or a run to resume")
        config = load_checkpoint(resume_dir).state["experiment"]
    experiment = get_config(config, overrides)
    out = Path(out) if out is not None else default_out(experiment.name)
    trainer = Trainer(experiment, out, data_root=data_root, device=device, resume=resume_dir, stream=stream,
                      allow_changes=allow_changes, progress=progress)
    return trainer.fit()
