"""How close each test image's reconstruction is to it: measured for every family, in the pass
that scores the test images."""

from __future__ import annotations

import torch

from ...ops.images import psnr
from .base import ImageBatch, ImageMetric, register_metric

__all__ = ["MeanSquaredError", "PSNR"]


def _mse(batch: ImageBatch) -> torch.Tensor:
    return (batch.reconstruction.double() - batch.x.double()).pow(2).flatten(1).mean(1)


@register_metric
class MeanSquaredError(ImageMetric):
    """The mean squared error of the mean reconstruction, per pixel."""

    name, label, unit = "mse", "reconstruction MSE", "per pixel"
    higher_is_better = False
    description = "mean squared error of the mean reconstruction, images in [0, 1]"
    tables, column, position, cell = ("codes",), "MSE", 40, "{:.4f}"

    def measure(self, batch: ImageBatch) -> torch.Tensor:
        return _mse(batch)


@register_metric
class PSNR(ImageMetric):
    """The peak signal-to-noise ratio of the mean reconstruction, 10 log10(1 / MSE) per image."""

    name, label, unit = "psnr", "PSNR", "dB"
    higher_is_better = True
    description = "PSNR of the mean reconstruction, 10 log10(1 / MSE) per image, averaged"
    tables, column, position, cell = ("codes",), "PSNR", 30, "{:.2f} dB"

    def measure(self, batch: ImageBatch) -> torch.Tensor:
        return psnr(_mse(batch))
