"""The recipe's pieces: optimizer, learning-rate schedule, KL warm-up, precision, memory format."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..devices import native_cpu_bf16
from ..schemas import OptimizerConfig, SchedulerConfig, TrainerConfig

__all__ = ["build_optimizer", "lr_lambda", "kl_scale_at", "resolve_precision", "wants_channels_last"]


def build_optimizer(params, cfg: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.name]
    # Fused kernels on GPUs; the multi-tensor (foreach) path on CPUs, where it was the faster.
    impl = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, **impl)


def lr_lambda(cfg: SchedulerConfig, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate after ``step`` optimizer steps: a linear warm-up
    over ``warmup_steps``, then constant or a cosine decay to ``min_lr_ratio`` at ``total_steps``."""
    warmup, floor = cfg.warmup_steps, cfg.min_lr_ratio

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.name == "constant":
            return 1.0
        span = max(1, total_steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def kl_scale_at(cfg: TrainerConfig, epoch: int, step_in_epoch: int, steps_per_epoch: int) -> float:
    """The KL weight of a step: a linear ramp from 0 to 1 over ``kl_warmup_epochs`` (a Python
    float, so the ramp costs no device work)."""
    if cfg.kl_warmup_epochs <= 0:
        return 1.0
    return min(1.0, (epoch + step_in_epoch / steps_per_epoch) / cfg.kl_warmup_epochs)


def short_run_notes(cfg: TrainerConfig, total_steps: int, steps_per_epoch: int) -> list[str]:
    """What a run shorter than its recipe's own ramps says at its start: a trial that ends inside a
    warm-up measures another objective, and its samples and scores mislead without a word."""
    notes = []
    epochs = total_steps / steps_per_epoch
    shown = f"{epochs:g}" if epochs == int(epochs) else f"{epochs:.2f}"
    if cfg.kl_warmup_epochs > epochs:
        final = kl_scale_at(cfg, 0, total_steps, steps_per_epoch)
        notes.append(f"this run trains {shown} epoch{'' if epochs == 1 else 's'} inside its {cfg.kl_warmup_epochs:g}-epoch KL warm-up "
                     f"(trainer.kl_warmup_epochs): the KL weight ends at {final:.2f}, so its -ELBO and samples are "
                     f"not the recipe's; for a short trial, --set trainer.kl_warmup_epochs=0")
    if cfg.scheduler.warmup_steps > total_steps:
        notes.append(f"this run trains {total_steps} steps inside its {cfg.scheduler.warmup_steps}-step learning-rate "
                     f"warm-up (trainer.scheduler.warmup_steps): the rate never reaches trainer.optimizer.lr; for a "
                     f"short trial, --set trainer.scheduler.warmup_steps=0")
    return notes


def resolve_precision(precision: str, device: torch.device, model: nn.Module) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. ``auto``: bf16 where the hardware multiplies bf16
    natively and it pays: GPUs from Ampere on, and CPUs with native bf16 for models with
    convolutions (their training step ran 1.1-3.8x faster there, benchmarks/cpu_bf16.py; the
    dense models gained 1.0-1.3x, too little to give up float32 steps that reproduce the published
    dense recipes bit for bit). Elsewhere fp32: older GPUs and other CPUs emulate bf16, slower
    than float32. Evaluation always runs in float32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    if device.type == "cpu" and model.has_convolutions() and native_cpu_bf16():
        return torch.bfloat16
    return None


def wants_channels_last(setting: str, model: nn.Module, device: torch.device) -> bool:
    if setting != "auto":
        return setting == "on"
    return model.prefers_channels_last(device)
