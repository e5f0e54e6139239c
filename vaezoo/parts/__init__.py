"""Registered parts, one package per kind: backbones, priors, posteriors, likelihoods, objectives,
quantizers, code priors, metrics (datasets register from vaezoo.data). Each kind's registry and decorator live in
:mod:`.kinds`, but a metric's, which :mod:`.metrics.base` holds with what a metric declares."""

from . import backbones, code_priors, likelihoods, metrics, objectives, posteriors, priors, quantizers  # noqa: F401
from .code_priors import CodePrior
from .kinds import (
    CODE_PRIORS, DATASETS, DECODERS, ENCODERS, LIKELIHOODS, OBJECTIVES, POSTERIORS, PRIORS, QUANTIZERS, PartParams,
    register_backbone, register_code_prior, register_dataset, register_likelihood, register_objective,
    register_posterior, register_prior, register_quantizer,
)
from .likelihoods import Likelihood
from .metrics import METRICS, ImageMetric, Metric, register_metric
from .objectives import Objective
from .posteriors import Flow, FlowPosterior
from .priors import Prior
from .quantizers import Quantizer

__all__ = [
    "ENCODERS", "DECODERS", "PRIORS", "LIKELIHOODS", "OBJECTIVES", "DATASETS", "QUANTIZERS", "CODE_PRIORS",
    "POSTERIORS", "METRICS", "Metric", "ImageMetric", "register_metric", "PartParams", "Prior", "Likelihood",
    "Objective", "Quantizer", "CodePrior", "Flow", "FlowPosterior", "register_backbone", "register_prior", "register_likelihood", "register_objective",
    "register_dataset", "register_quantizer", "register_code_prior", "register_posterior",
]
