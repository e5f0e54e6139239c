"""How a model's importance-weighted bound is computed on this machine: the decoder's arithmetic,
whether it is compiled, and how many latents one decoder pass takes.

The arithmetic: ``auto`` runs the decoder backbone in bf16 on CPUs that multiply bf16 natively
(AMX, AVX-512 BF16) for decoders with convolutions, where ``benchmarks/iwae_precision.py``
measured the NLL within 0.02 nats of float32 (docs/performance.md has the figures); elsewhere
float32. A likelihood whose parameters must stay float32 (the discretized logistic) always
gets float32. The densities and the log-sum-exp are float32 (float64 across chunks) in both.

The shape: a default tuned on one CPU was 6x too slow on another, so a long job times a few
pass sizes on the model itself first and keeps the fastest (:mod:`.calibration`, cached per
model architecture and machine). A short job, where that would cost more than it saves, takes
the static default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
from torch import nn

from ..devices import native_cpu_bf16
from ..errors import UsageError
from .decoder import FastDecoder

__all__ = ["PRECISIONS", "ScoringPlan", "scoring_dtype", "default_decodes_per_pass", "plan_shape",
           "MIN_SAMPLES_PER_IMAGE", "COMPILE_MIN_DECODES", "LONG_JOB_DECODES"]

PRECISIONS = ("auto", "float32", "bfloat16")
# Every pass encodes its images once: 32 samples or more per image keep the encoder's share of a
# pass at 1/32 of the decoder's or less, whatever the pass size.
MIN_SAMPLES_PER_IMAGE = 32
# Compiling the decoder takes seconds, once per model and plan (the compiled decoder is kept):
# it pays from about k = 5000 on 2 images.
COMPILE_MIN_DECODES = 10_000
# A job of this many decodes or more (k = 5000 on 40 images) takes minutes eagerly: it pays for
# timing pass sizes (10-30 s, once per model and machine).
LONG_JOB_DECODES = 200_000
DECODES_PER_PASS = 2048  # the static default: MLP decoders ran fastest on large passes
CPU_CONV_DECODES_PER_PASS = 128  # conv decoders on a CPU: feature maps that stay in cache


@dataclass(frozen=True)
class ScoringPlan:
    dtype: torch.dtype  # of the decoder backbone's arithmetic
    decodes_per_pass: int
    compile: bool
    channels_last: bool
    chosen: str  # how decodes_per_pass was chosen, for the report

    def images_per_pass(self, batch: int) -> int:
        return max(1, min(batch, self.decodes_per_pass // MIN_SAMPLES_PER_IMAGE))

    def samples_per_pass(self, images: int) -> int:
        return max(1, self.decodes_per_pass // images)

    def decoder(self, model: nn.Module) -> Optional[FastDecoder]:
        """The decoder to score with, or None where the model's own (eager float32) is it. Kept on
        the model for the next call with the same plan (a loop of ``model.iwae`` calls compiles
        once) while the decoder's weights stay as they were: an optimizer step or a
        ``load_state_dict`` writes them in place, which bumps their version counters."""
        if self.dtype == torch.float32 and not self.compile:
            return None
        key = (self.dtype, self.decodes_per_pass, self.compile, self.channels_last)
        weights = tuple((t.data_ptr(), t._version) for t in (*model.decoder.parameters(), *model.decoder.buffers()))
        kept = model.__dict__.get("_scoring_decoders", {}).get(key)
        if kept is not None and kept[0] == weights:
            return kept[1]
        decoder = FastDecoder(model.decoder, self.dtype, self.decodes_per_pass, self.channels_last, self.compile)
        model.__dict__["_scoring_decoders"] = {key: (weights, decoder)}  # one kept: a new plan replaces it
        return decoder

    def protocol(self) -> dict:
        return {"decoder_arithmetic": str(self.dtype).removeprefix("torch."),
                "densities_arithmetic": "float32; log-sum-exp over chunks in float64",
                "decodes_per_pass": self.decodes_per_pass, "decoder_compiled": self.compile}


def _decoder(model: nn.Module) -> Optional[nn.Module]:
    decoder = getattr(model, "decoder", None)
    return decoder if isinstance(decoder, nn.Module) else None


def scoring_dtype(model: nn.Module, device: torch.device, precision: str) -> torch.dtype:
    """The decoder's arithmetic for ``precision`` (one of :data:`PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    float32_only = getattr(model.likelihood, "float32_params", False)
    decoder = _decoder(model)
    if precision == "bfloat16":
        if float32_only or decoder is None:
            raise UsageError(f"precision 'bfloat16' is not available for this model: "
                             f"{'its likelihood needs float32 parameters' if float32_only else 'it has no decoder backbone'}"
                             f"; use 'float32' or 'auto'")
        return torch.bfloat16
    if precision == "float32" or float32_only or decoder is None:
        return torch.float32
    convolutional = any(isinstance(m, nn.modules.conv._ConvNd) for m in decoder.modules())
    if device.type == "cpu" and convolutional and native_cpu_bf16():
        return torch.bfloat16
    return torch.float32


def default_decodes_per_pass(model: nn.Module, device: torch.device) -> int:
    """The static default, for jobs too short to calibrate."""
    return CPU_CONV_DECODES_PER_PASS if device.type == "cpu" and model.has_convolutions() else DECODES_PER_PASS


def plan_shape(model: nn.Module, device: torch.device, precision: str, decodes: int,
               decodes_per_pass: Optional[int], calibrate: Callable[[ScoringPlan], int]) -> ScoringPlan:
    """The plan for a job of ``decodes`` decoder evaluations: ``decodes_per_pass`` when given, the
    calibrated size for a long job (``calibrate`` times candidates), else the static default. A
    job of :data:`COMPILE_MIN_DECODES` or more on a CPU compiles the decoder (where that fails, for
    want of a C++ compiler say, it runs eagerly with a warning)."""
    dtype = scoring_dtype(model, device, precision)
    long_job = decodes >= LONG_JOB_DECODES
    base = ScoringPlan(dtype=dtype, decodes_per_pass=default_decodes_per_pass(model, device),
                       compile=decodes >= COMPILE_MIN_DECODES and device.type == "cpu" and _decoder(model) is not None,
                       channels_last=model.prefers_channels_last(device), chosen="the static default (a short job)")
    if decodes_per_pass is not None:
        return replace(base, decodes_per_pass=decodes_per_pass, chosen="given")
    if long_job:
        return replace(base, decodes_per_pass=calibrate(base),
                       chosen="timed on this machine (vaezoo.fastpath.calibration)")
    return base
