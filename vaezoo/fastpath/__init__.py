"""Fast scoring: the decoder's arithmetic and the shape of its passes, chosen per model and machine
(see :mod:`.plan`); the decoder prepared for it (:mod:`.decoder`); the timing of pass sizes
(:mod:`.calibration`)."""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .calibration import calibrated_decodes_per_pass
from .decoder import FastDecoder
from .plan import LONG_JOB_DECODES, PRECISIONS, ScoringPlan, plan_shape, scoring_dtype

__all__ = ["FastDecoder", "ScoringPlan", "PRECISIONS", "LONG_JOB_DECODES", "plan_scoring", "scoring_dtype"]


def plan_scoring(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, *, precision: str = "auto",
                 decodes: int, decodes_per_pass: Optional[int] = None,
                 say: Optional[Callable[[str], None]] = None) -> ScoringPlan:
    """The plan for scoring ``decodes`` latents of ``model`` on ``x``'s device (``x``: example
    images as the model takes them, used to time pass sizes on a long job)."""
    return plan_shape(model, x.device, precision, decodes, decodes_per_pass,
                      lambda base: calibrated_decodes_per_pass(model, x, y, base, say))
