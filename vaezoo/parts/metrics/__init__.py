"""Registered metrics, one module per family of metrics: bounds, codes, reconstructions, samples,
the linear probe, disentanglement. What a metric is and how to add one: :mod:`.base`."""

from . import bounds, codes, disentanglement, probe, reconstruction, samples  # noqa: F401 - registers the built-ins
from .base import (
    METRICS, NEEDS, PROTOCOL_FIELDS, SUITES, UNITS, ImageBatch, ImageMetric, Metric, find_metric, metrics_of,
    register_metric,
)

__all__ = ["METRICS", "NEEDS", "PROTOCOL_FIELDS", "SUITES", "UNITS", "ImageBatch", "ImageMetric", "Metric",
           "find_metric", "register_metric", "metrics_of"]
