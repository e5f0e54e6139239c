"""How close a model's samples are to the test images in a feature network's space, measured by the
``samples`` suite (``vaezoo eval --fid``). Each is published under the network's name
(``fd-fashion-v1``), and under ``@gmm`` for samples from a Gaussian mixture fitted on the training
images' posterior means."""

from __future__ import annotations

from typing import Any, Mapping

from .base import Metric, register_metric

__all__ = ["FrechetDistance", "KernelDistance", "Precision", "Recall", "Density", "Coverage", "ClassCoverage",
           "ReconstructionFrechetDistance"]


class _SampleMetric(Metric):
    suite = "samples"
    needs = ("samples", "features")
    features, per_prior = True, True
    protocol = ("features", "samples", "sampled_from")
    tables = ("quality",)

    def protocol_from(self, report: Mapping[str, Any]) -> dict[str, Any]:
        # set against the grey test images, whatever the model was trained on
        return {"binarization": "none", "features": report["features"], "seed": report.get("sample_seed"),
                "samples": int(report["samples"]), "sampled_from": report.get("prior", "model")}


@register_metric
class FrechetDistance(_SampleMetric):
    """The Fréchet distance between Gaussians fitted to the samples' and the test images' features."""

    name, label, unit = "fd", "Fréchet distance", "score"
    higher_is_better = False
    column, position, cell = "FD", 10, "{:.1f}"


@register_metric
class KernelDistance(_SampleMetric):
    """The kernel distance (KID): an unbiased MMD² with a cubic polynomial kernel, over subsets."""

    name, label, unit = "kid", "kernel distance (KID)", "score"
    higher_is_better = False
    column, position = "KID", 20


@register_metric
class Precision(_SampleMetric):
    """The share of samples within the test images' k-nearest-neighbour balls (Kynkäänniemi et al. 2019)."""

    name, label, unit = "precision", "precision", "fraction"
    higher_is_better = True
    column, position = "precision", 30


@register_metric
class Recall(_SampleMetric):
    """The share of test images within the samples' k-nearest-neighbour balls (Kynkäänniemi et al. 2019)."""

    name, label, unit = "recall", "recall", "fraction"
    higher_is_better = True
    column, position = "recall", 40


@register_metric
class Density(_SampleMetric):
    """How many test images' neighbourhoods hold each sample, on average, over k (Naeem et al. 2020)."""

    name, label, unit = "density", "density", "ratio"
    column, position = "density", 50


@register_metric
class Coverage(_SampleMetric):
    """The share of test images with a sample in their nearest-neighbour ball (Naeem et al. 2020)."""

    name, label, unit = "coverage", "coverage", "fraction"
    higher_is_better = True
    column, position = "coverage", 60


@register_metric
class ClassCoverage(_SampleMetric):
    """exp(entropy) of the classes the feature network predicts for the samples, over the classes."""

    name, label, unit = "class-coverage", "class coverage", "fraction"
    higher_is_better = True
    column, position = "class coverage", 70


@register_metric
class ReconstructionFrechetDistance(Metric):
    """The Fréchet distance of the test images' reconstructions: a ceiling for samples through the same decoder."""

    name, label, unit = "fd-recon", "Fréchet distance of reconstructions", "score"
    suite, needs = "samples", ("reconstructions", "features")
    features = True
    higher_is_better = False
    protocol = ("features",)
    tables, column, position, cell = ("quality",), "FD of reconstructions", 80, "{:.1f}"

    def protocol_from(self, report: Mapping[str, Any]) -> dict[str, Any]:
        return {"binarization": "none", "features": report["features"], "seed": report.get("sample_seed")}
