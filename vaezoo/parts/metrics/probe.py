"""How much of the class a model's posterior means hold, measured by the ``probe`` suite
(``vaezoo eval --probe``)."""

from __future__ import annotations

from typing import Any, Mapping

from .base import Metric, register_metric

__all__ = ["ProbeAccuracy"]


@register_metric
class ProbeAccuracy(Metric):
    """The test accuracy of a logistic regression fitted on the training images' posterior means."""

    name, label, unit = "probe-accuracy", "linear-probe accuracy", "fraction"
    suite, needs = "probe", ("posterior-means", "labels")
    higher_is_better = True
    protocol = ("probe",)
    tables, column, position, cell = ("quality",), "linear probe", 90, "{:.1%}"

    def protocol_from(self, report: Mapping[str, Any]) -> dict[str, Any]:
        return {"binarization": str(report.get("probe_inputs") or "none"), "probe": str(report["probe"])}
