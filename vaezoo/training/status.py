"""Where a run that has not ended stands: ``vaezoo info runs/NAME`` before its ``config.json`` exists.

A training writes ``config.json`` when it ends; until then its ``checkpoints/last.json`` (the
checkpoint's JSON, rewritten at every checkpoint) holds the epoch, the steps, each finished epoch's
record and the best validation so far. Reading it loads no tensor; whether a process is training
it now comes from the run folder's lock (:func:`vaezoo.layout.lock.holder`). The time left, here
and in the training's progress line, counts what each epoch spends beyond its steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..durations import format_duration
from ..errors import UsageError
from ..layout.checkpoint import best_weights_path, run_state_path
from ..layout.lock import holder
from ..safe_text import load_json

__all__ = ["RunStatus", "read_run_status", "epoch_overhead_s", "run_seconds_left"]

PACE_EPOCHS = 3  # the pace of the last few epochs gives the time left
TREND_EPOCHS = 5  # the validation's change per epoch, over the last few


def epoch_overhead_s(history: list[dict[str, Any]]) -> float:
    """The seconds the last finished epoch spent beyond its training steps: validation, a test pass,
    checkpoints (for a convolutional model on a CPU, validation alone was a fifth of the epoch)."""
    if not history:
        return 0.0
    last = history[-1]
    start = history[-2].get("wall_time_s", 0.0) if len(history) > 1 else 0.0
    return max(0.0, last.get("wall_time_s", 0.0) - start - last.get("epoch_time_s", 0.0))


def run_seconds_left(steps_left: int, seconds_per_step: float, steps_per_epoch: int,
                     history: list[dict[str, Any]]) -> float:
    """The training progress line's ETA: the steps left at the current pace, plus each epoch end
    still ahead at the last epoch's overhead beyond its steps."""
    epoch_ends_left = -(-steps_left // steps_per_epoch) if steps_left > 0 else 0
    return steps_left * seconds_per_step + epoch_ends_left * epoch_overhead_s(history)


@dataclass(frozen=True)
class RunStatus:
    folder: Path
    name: str
    epochs: int  # the recipe's
    history: list[dict[str, Any]]  # one record per finished epoch
    global_step: int
    step_in_epoch: int
    elapsed_s: float
    best: Optional[dict[str, Any]]
    eval_batch_size: Optional[int]
    writer: Optional[str]  # who holds the run folder's lock now; None: no process is training it

    @property
    def finished_epochs(self) -> int:
        return self.history[-1]["epoch"] if self.history else 0

    def seconds_per_epoch(self) -> Optional[float]:
        """Wall time per epoch over the last :data:`PACE_EPOCHS` finished ones, validation included."""
        walls = [r.get("wall_time_s") for r in self.history[-(PACE_EPOCHS + 1):]]
        if len(walls) < 2 or None in walls:
            return None
        return (walls[-1] - walls[0]) / (len(walls) - 1)

    def seconds_left(self) -> Optional[float]:
        pace = self.seconds_per_epoch()
        if pace is None or not self.history:
            return None
        steps_per_epoch = self.history[-1]["step"] / self.history[-1]["epoch"]
        return max(0.0, self.epochs - self.finished_epochs - self.step_in_epoch / steps_per_epoch) * pace

    def rows(self) -> list[tuple[str, str]]:
        resume = f"vaezoo train --resume {self.folder}"
        rows = [("name", self.name),
                ("status", f"training now ({self.writer})" if self.writer else f"stopped; `{resume}` continues it"),
                ("progress", f"epoch {self.finished_epochs} of {self.epochs} done"
                             + (f", {self.step_in_epoch} steps into the next" if self.step_in_epoch else "")
                             + f"; {self.global_step:,} steps, {format_duration(self.elapsed_s)} of training so far")]
        vals = [(r["epoch"], r["val_neg_elbo"]) for r in self.history if r.get("val_neg_elbo") is not None]
        if vals:
            text = f"-ELBO {vals[-1][1]:.2f} at epoch {vals[-1][0]}"
            if self.best:
                text += f"; the best {self.best['val_neg_elbo']:.2f} at epoch {self.best['epoch']}"
            recent = vals[-(TREND_EPOCHS + 1):]
            if len(recent) > 1:
                per_epoch = (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])
                text += f"; {per_epoch:+.2f} nats an epoch over the last {len(recent) - 1}"
            if self.eval_batch_size:
                text += f" (batches of {self.eval_batch_size})"
            rows.append(("validation", text))
        left = self.seconds_left()
        if left is not None:
            rows.append(("time left", f"about {format_duration(left)} at the last epochs' pace "
                                       f"({format_duration(self.seconds_per_epoch())} an epoch, validation included)"))
        rows.append(("weights", f"vaezoo.load('{self.folder}') once it ends; the best epoch so far is in "
                                f"{best_weights_path(self.folder)} (`vaezoo sample {self.folder}` draws from it, "
                                f"`vaezoo eval {self.folder} --split val` scores it)"
                     if self.best else f"vaezoo.load('{self.folder}') once it ends"))
        return rows


def _eval_batch_size(trainer: dict[str, Any], progress: dict[str, Any]) -> Optional[int]:
    """The size in effect: the recipe's number, or the one ``auto`` chose for the run (once it has)."""
    size = trainer.get("eval_batch_size", "auto")
    return size if isinstance(size, int) else progress.get("eval_batch_size")


def read_run_status(folder: str | Path) -> RunStatus:
    folder = Path(folder)
    path = run_state_path(folder)
    try:
        state = load_json(path.read_text())
        progress, experiment = state["progress"], state["experiment"]
        return RunStatus(
            folder=folder, name=experiment.get("name") or folder.name, epochs=int(experiment["trainer"]["epochs"]),
            history=list(progress.get("history") or []), global_step=int(state["global_step"]),
            step_in_epoch=int(state.get("step_in_epoch") or 0), elapsed_s=float(progress.get("elapsed") or 0.0),
            best=progress.get("best"), eval_batch_size=_eval_batch_size(experiment["trainer"], progress),
            writer=holder(folder))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read the run's state {path}: {exc}") from None
