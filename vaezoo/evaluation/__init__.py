"""Evaluation: bounds on log p(x), bits/dim, active units, and per-example posterior refinement.

>>> report = vaezoo.evaluate(model, "fashion-mnist", iw_samples=5000, limit=100)
>>> print(report.format_table()); report.to_json()
>>> q = model.refine(x, steps=100)      # per-example (mu_i, logvar_i), decoder frozen
>>> vaezoo.sample_quality(model, "fashion-mnist")   # FD, KID, precision/recall, ... in fashion-v1 features
>>> vaezoo.linear_probe(model, "fashion-mnist")     # logistic regression on the posterior means
>>> vaezoo.evaluate_disentanglement(model, "shapes2d")   # MIG, FactorVAE score, ... on known factors
"""

from __future__ import annotations

from ..models.refine import refine
from ..ops.noise import NoiseSource
from .data import EvalData, resolve_data, to_float_images
from .disentanglement import evaluate_disentanglement
from .evaluate import evaluate
from .metrics import (
    ACTIVE_UNIT_THRESHOLD, active_units, bits_per_dim, elbo, elbo_terms, iwae_bound, iwae_log_likelihood, num_pixels,
)
from .probe import linear_probe
from .quality import sample_quality
from .report import EvalReport, Measurement

__all__ = [
    "evaluate", "EvalReport", "Measurement", "refine", "elbo", "iwae_log_likelihood", "iwae_bound", "elbo_terms",
    "active_units", "bits_per_dim", "num_pixels", "ACTIVE_UNIT_THRESHOLD", "NoiseSource", "EvalData",
    "resolve_data", "to_float_images", "sample_quality", "linear_probe", "evaluate_disentanglement",
]
