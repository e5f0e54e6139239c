"""Evaluation: bounds on log p(x), bits/dim, active units, and per-example posterior refinement.

>>> report = vaezoo.evaluate(model, "fashion-mnist", iw_samples=5000)
>>> print(report.format_table()); report.to_json()
>>> q = model.refine(x, steps=100)      # per-example (mu_i, logvar_i), decoder frozen
"""

from __future__ import annotations

from .data import EvalData, resolve_data, to_float_images
from .evaluate import evaluate
from .metrics import (
    ACTIVE_UNIT_THRESHOLD, active_units, bits_per_dim, elbo, elbo_terms, iwae_bound, iwae_log_likelihood,
    kl_per_dimension, log_weights, num_pixels,
)
from .noise import NoiseSource
from .refine import refine
from .report import EvalReport, Metric

__all__ = [
    "evaluate", "EvalReport", "Metric", "refine", "elbo", "iwae_log_likelihood", "iwae_bound", "elbo_terms",
    "log_weights", "kl_per_dimension", "active_units", "bits_per_dim", "num_pixels", "ACTIVE_UNIT_THRESHOLD",
    "NoiseSource", "EvalData", "resolve_data", "to_float_images",
]
