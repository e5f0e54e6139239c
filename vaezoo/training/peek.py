"""The best epoch so far of a training that has not ended, as a model in eval mode.

A run exports its model (``config.json``, ``model.safetensors``) when it ends. A long run can be
followed before that: ``trainer.select: best_val`` keeps the weights of its epoch with the lowest
validation -ELBO in ``checkpoints/best.safetensors`` (sha256-checked), and ``checkpoints/last.json``
holds the recipe that builds the architecture. ``vaezoo sample RUN`` draws from them and ``vaezoo
eval RUN --split val`` scores them on the validation images; the test set waits for the run's end.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError
from ..factory import build_model
from ..layout.checkpoint import best_weights_path, load_best_weights, run_state_path
from ..layout.files import load_state, no_pretrained_downloads
from ..models import BaseVAE
from ..safe_text import load_json
from ..schemas import DataConfig, ExperimentConfig

__all__ = ["BestSoFar", "best_model_so_far"]


class BestSoFar(NamedTuple):
    model: BaseVAE  # in eval mode, on the CPU
    epoch: int
    data: DataConfig  # the recipe's data: its validation split is the one the epoch was chosen on


def best_model_so_far(folder: str | Path) -> BestSoFar:
    """The run's best validated epoch so far. Raises a one-line :class:`UsageError` when the run
    keeps no such weights (``trainer.select: last``, or no epoch validated yet)."""
    folder = Path(folder)
    sidecar = run_state_path(folder)
    try:
        state = load_json(sidecar.read_text())
        no_pretrained_downloads(state["experiment"].get("model"), str(sidecar))  # the weights come from the run
        experiment = ExperimentConfig.model_validate(state["experiment"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # pydantic's ValidationError too
        raise UsageError(f"cannot read the run's state {sidecar}: {exc}") from None
    path = best_weights_path(folder)
    if experiment.trainer.select != "best_val" or not path.is_file():
        why = ("its recipe exports the last epoch (trainer.select: last)" if experiment.trainer.select != "best_val"
               else "no epoch has been validated yet")
        raise UsageError(f"{folder} keeps no best epoch to score before it ends: {why}")
    model = build_model(experiment.model, source=str(sidecar))
    tensors, epoch = load_best_weights(folder)
    load_state(model, tensors, source=str(path))
    return BestSoFar(model.eval(), epoch, experiment.data)
