"""Image-quality arithmetic shared by the objectives and the evaluation."""

from __future__ import annotations

import torch

__all__ = ["psnr"]


def psnr(mse: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of per-image MSEs of [0, 1] images (peak 1)."""
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))
