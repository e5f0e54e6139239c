"""How disentangled a model's posterior means are, measured by the ``disentanglement`` suite
(``vaezoo eval --disentanglement``) on a dataset with known factors (``shapes2d``, ``color-squares``).
The computations and their defaults (disentanglement_lib's) are in
:mod:`vaezoo.evaluation.disentanglement`; these declarations are what the report, publishing and
the docs read."""

from __future__ import annotations

from typing import Any, Mapping

from .base import Metric, register_metric

__all__ = ["MutualInformationGap", "Modularity", "FactorVAEScore", "BetaVAEScore", "DCIDisentanglement",
           "DCICompleteness", "DCIInformativeness", "SAPScore", "Explicitness", "GaussianTotalCorrelation",
           "CodeMutualInformation"]


class _CodesMetric(Metric):
    """A number of the posterior means alone (no factors needed), in nats."""

    suite, needs, unit = "disentanglement", ("posterior-means",), "information"
    higher_is_better = False
    protocol = ("disentanglement",)
    tables = ("disentanglement",)

    def protocol_from(self, report: Mapping[str, Any]) -> dict[str, Any]:
        # the test images as encoded (a binarized draw for a binarized model); a factor grid is as rendered
        return {"binarization": str(report.get("binarization", "none")), "disentanglement": str(report["disentanglement"])}


class _FactorMetric(_CodesMetric):
    """A score of the posterior means against the known factors, in [0, 1]."""

    needs, unit = ("posterior-means", "factors"), "fraction"
    higher_is_better = True


@register_metric
class MutualInformationGap(_FactorMetric):
    """The mutual information gap (Chen et al. 2018): per factor, the gap between its two most informative codes."""

    name, label = "mig", "mutual information gap"
    description = "MIG: the two codes most informative about each factor, their gap over its entropy (20 bins)"
    column, position = "MIG", 10


@register_metric
class Modularity(_FactorMetric):
    """Modularity (Ridgeway & Zemel 2018): how much of each code's information is about one factor."""

    name, label = "modularity", "modularity"
    description = "modularity: per code, the share of its squared mutual information on one factor (20 bins)"
    column, position = "modularity", 20


@register_metric
class FactorVAEScore(_FactorMetric):
    """The FactorVAE score (Kim & Mnih 2018): a majority vote names the fixed factor from the stillest code."""

    name, label = "factor-vae-score", "FactorVAE score"
    description = "FactorVAE score: majority-vote accuracy naming a fixed factor from the code of least variance"
    column, position = "FactorVAE score", 30


@register_metric
class BetaVAEScore(_FactorMetric):
    """The BetaVAE score (Higgins et al. 2017): a linear classifier names the fixed factor from code differences."""

    name, label = "beta-vae-score", "BetaVAE score"
    description = "BetaVAE score: logistic-regression accuracy naming a fixed factor from |z1 - z2| of 64 pairs"
    column, position = "BetaVAE score", 40


@register_metric
class DCIDisentanglement(_FactorMetric):
    """DCI disentanglement (Eastwood & Williams 2018): how much each code's importance is for one factor."""

    name, label = "dci-disentanglement", "DCI disentanglement"
    description = "DCI disentanglement: 1 - entropy of each code's gradient-boosted-tree importances over the factors"
    column, position = "DCI D", 41


@register_metric
class DCICompleteness(_FactorMetric):
    """DCI completeness (Eastwood & Williams 2018): how much each factor is captured by one code."""

    name, label = "dci-completeness", "DCI completeness"
    description = "DCI completeness: 1 - entropy of each factor's gradient-boosted-tree importances over the codes"
    column, position = "DCI C", 42


@register_metric
class DCIInformativeness(_FactorMetric):
    """DCI informativeness (Eastwood & Williams 2018): how well gradient-boosted trees predict the factors."""

    name, label = "dci-informativeness", "DCI informativeness"
    description = "DCI informativeness: test accuracy of gradient-boosted trees predicting each factor from the codes"
    column, position = "DCI I", 43


@register_metric
class SAPScore(_FactorMetric):
    """The SAP score (Kumar et al. 2018): per factor, the accuracy gap between its two most predictive codes."""

    name, label = "sap", "SAP score"
    description = "SAP: per factor, the test-accuracy gap of linear SVMs on its two most predictive single codes"
    column, position = "SAP", 44


@register_metric
class Explicitness(_FactorMetric):
    """Explicitness (Ridgeway & Zemel 2018): how well a linear classifier predicts each factor from all codes."""

    name, label = "explicitness", "explicitness"
    description = "explicitness: one-vs-rest ROC AUC of a logistic regression predicting each factor from the codes"
    column, position = "explicitness", 45


@register_metric
class GaussianTotalCorrelation(_CodesMetric):
    """The total correlation of a Gaussian fitted to the posterior means: how far the codes are from independent."""

    name, label = "gaussian-tc", "Gaussian total correlation"
    description = "total correlation of the Gaussian with the posterior means' covariance, in nats"
    column, position = "Gaussian TC (nats)", 50


@register_metric
class CodeMutualInformation(_CodesMetric):
    """The mean mutual information between two different codes (discretized in 20 bins)."""

    name, label = "code-mi", "mutual information between codes"
    description = "mean discrete mutual information between two different codes, in nats (20 bins)"
    column, position = "MI between codes (nats)", 60
