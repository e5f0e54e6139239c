"""The end of a run: the run folder becomes a Hub-layout checkpoint with its card and pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..schemas import ExperimentConfig
from ..viz.curves import plot_loss_curves
from .records import LOSS_PLOT_NAME

__all__ = ["export_run", "final_record"]


def final_record(history: list[dict[str, Any]], selected_epoch: int | None) -> dict[str, Any]:
    """The last epoch's record; with a selected epoch (``trainer.select: best_val``), that epoch's
    validation scores, those of the exported weights, and ``selected_epoch``."""
    final = dict(history[-1]) if history else {}
    if selected_epoch is not None:
        chosen = next((r for r in history if r["epoch"] == selected_epoch), {})
        final.update({key: value for key, value in chosen.items() if key.startswith("val_")})
        final["selected_epoch"] = selected_epoch
    return final


def export_run(model, experiment: ExperimentConfig, out: Path, history: list[dict[str, Any]],
               final: dict[str, Any], *, steps: int, elapsed: float, device: torch.device, processes: int,
               val_examples: int, test_examples: int, batch_size: int,
               logged: Sequence[tuple[int, Mapping[str, float]]] = ()) -> None:
    """``config.json`` (with the final metrics of :func:`final_record` and what the run took),
    ``model.safetensors``, ``README.md``, ``samples.png`` and ``loss.png`` (per epoch, or per logged
    step, ``logged``, for a short run) in ``out``; a split that was not scored is left out."""
    model.to(memory_format=torch.contiguous_format)
    protocol = {"likelihood": experiment.model.likelihood.name, "binarization": experiment.data.binarize,
                "importance_samples": 1}
    metrics = {}
    val_examples = min(val_examples, experiment.trainer.val_limit or val_examples)
    for split, examples in (("test", test_examples), ("val", val_examples)):
        for score in ("neg_elbo", "loss"):  # the loss where a model has no bound (a deterministic encoder)
            value = final.get(f"{split}_{score}")
            if value is not None:  # a loss is no bound: no importance samples to name
                how = protocol if score == "neg_elbo" else {k: v for k, v in protocol.items() if k != "importance_samples"}
                metrics[f"{split}_{score}"] = {"value": round(value, 4), "num_examples": int(examples), **how,
                                               "split": "validation" if split == "val" else split}
    training = {"epochs": final.get("epoch", 0), "steps": steps, "batch_size": batch_size,
                "wall_time_s": round(elapsed, 1), "device": str(device), "processes": processes}
    if final.get("selected_epoch") is not None:
        training["selected_epoch"] = final["selected_epoch"]
    model.save_pretrained(out, experiment=experiment, metrics=metrics, training=training, samples=64)
    plot_loss_curves(history, out / LOSS_PLOT_NAME, title=experiment.name or "", steps=logged)
