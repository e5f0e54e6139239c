"""Registered image metrics (:class:`~vaezoo.parts.metrics.ImageMetric`) in the pass that scores
the test images, whatever the family: which ones apply to a model, and their per-image columns."""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import torch

from .._registry import suggest
from ..errors import UsageError
from ..models.base import CodeLatents, PointLatents
from ..ops.point import NO_DENSITY
from ..parts.metrics import METRICS, ImageBatch, ImageMetric, metrics_of
from ..progress import progress_callback
from .data import DataSource, resolve_data
from .metrics import measurement, num_pixels
from .report import EvalReport, Measurement

__all__ = ["provided_needs", "image_metric", "select_image_metrics", "ImageColumns", "SUITE_FLAGS", "evaluate_images"]

# the `vaezoo eval` call that measures each suite's metrics
SUITE_FLAGS = {"bounds": "vaezoo eval", "codes": "vaezoo eval", "images": "vaezoo eval",
               "samples": "vaezoo eval --fid", "probe": "vaezoo eval --probe",
               "disentanglement": "vaezoo eval --disentanglement"}


def provided_needs(model, labels: bool) -> set[str]:
    """What a pass over the test images has for a metric of ``model``."""
    needs = {"reconstructions", "posterior-means"}
    if isinstance(model, CodeLatents):
        needs.add("codes")
    elif not isinstance(model, PointLatents):
        needs.add("density")
    if labels:
        needs.add("labels")
    return needs


def image_metric(name: str) -> ImageMetric:
    """The registered per-image metric ``name``, or one line saying what is wrong with it."""
    if name not in METRICS:
        images = [m.name for m in metrics_of("images")]
        raise UsageError(f"unknown metric '{name}'.{suggest(name, METRICS.names())} Per-image metrics: "
                         f"{', '.join(images) or '(none registered)'}")
    metric = METRICS.get(name)
    if metric.suite != "images":
        raise UsageError(f"'{name}' is measured by `{SUITE_FLAGS[metric.suite]}`, not per image")
    return metric


def select_image_metrics(model, labels: bool, names: Optional[Sequence[str]] = None) -> list[ImageMetric]:
    """The image metrics to measure: every registered one whose needs the model and data meet, or
    exactly ``names`` (an empty list for none), each checked with a message saying what is wrong."""
    have = provided_needs(model, labels)
    if names is None:
        return [m for m in metrics_of("images") if set(m.needs) <= have]
    chosen = []
    for name in names:
        try:
            metric = image_metric(name)
        except UsageError as exc:
            raise UsageError(f"metrics: {exc}") from None
        missing = sorted(set(metric.needs) - have)
        if missing:
            raise UsageError(f"metrics: '{name}' needs {', '.join(missing)}, which the '{model.family}' family "
                             f"or the data does not have")
        chosen.append(metric)
    return chosen


class ImageColumns:
    """The per-image values of the chosen metrics, batch by batch, then their means and standard errors."""

    def __init__(self, metrics: Sequence[ImageMetric]):
        self.metrics = list(metrics)
        self.values: dict[str, list[torch.Tensor]] = {m.name: [] for m in self.metrics}

    def add(self, batch: ImageBatch) -> None:
        for metric in self.metrics:
            values = metric.measure(batch)
            if values.shape != (batch.x.shape[0],):
                raise ValueError(f"metric '{metric.name}' measured shape {tuple(values.shape)}; expected one value "
                                 f"per image, ({batch.x.shape[0]},)")
            self.values[metric.name].append(values.detach().double().cpu())

    def measurements(self) -> dict[str, Measurement]:
        return {m.name: measurement(m, torch.cat(self.values[m.name]), m.description) for m in self.metrics}


@torch.no_grad()
def evaluate_images(
    model,
    data: DataSource,
    *,
    batch_size: int = 64,
    limit: int | None = None,
    binarize: str | None = None,
    root: str | None = None,
    model_name: str | None = None,
    progress: bool | Callable[[int, int], None] | None = True,
    start: int = 0,
    metrics: Sequence[str] | None = None,
    split: str = "test",
) -> EvalReport:
    """The image metrics of a model without a density (a deterministic encoder): its report has no
    bound, and its protocol says why in one line."""
    say = progress_callback(progress)
    evaluation = resolve_data(data, binarize=binarize, limit=limit, root=root, expected_shape=tuple(model.input_shape),
                              start=start, split=split)
    images, labels = evaluation.images, evaluation.labels
    model.check_input(images, what="the data")
    columns = ImageColumns(select_image_metrics(model, labels is not None, metrics))
    parameter = next(model.parameters())
    n = images.shape[0]
    was_training = model.training
    model.eval()
    start_time = time.perf_counter()
    try:
        for first in range(0, n, batch_size):
            x = images[first: first + batch_size].to(device=parameter.device, dtype=parameter.dtype)
            y = None if labels is None or not model.conditional else labels[first: first + batch_size].to(x.device)
            columns.add(ImageBatch(x, y, lambda: model.reconstruct(x, y)))
            if say is not None:
                say(min(n, first + batch_size), n)
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - start_time
    protocol = {"model": model_name, **evaluation.protocol, "family": model.family,
                "pixels": num_pixels(model.input_shape), "no_bounds": NO_DENSITY}
    timing = {"seconds": seconds, "examples_per_s": n / seconds if seconds > 0 else 0.0,
              "device": str(parameter.device)}
    return EvalReport(protocol=protocol, metrics=columns.measurements(), timing=timing)
