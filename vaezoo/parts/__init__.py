"""Registered parts, one package per kind: backbones, priors, likelihoods, objectives (datasets
register from vaezoo.data). Each kind's registry and decorator live in :mod:`.kinds`."""

from . import backbones, likelihoods, objectives, priors, quantizers  # noqa: F401 - registers the built-ins
from .kinds import (
    DATASETS, DECODERS, ENCODERS, LIKELIHOODS, OBJECTIVES, PRIORS, QUANTIZERS, PartParams, register_backbone,
    register_dataset, register_likelihood, register_objective, register_prior, register_quantizer,
)
from .likelihoods import Likelihood
from .objectives import Objective
from .priors import Prior
from .quantizers import Quantizer

__all__ = [
    "ENCODERS", "DECODERS", "PRIORS", "LIKELIHOODS", "OBJECTIVES", "DATASETS", "QUANTIZERS", "PartParams",
    "Prior", "Likelihood", "Objective", "Quantizer", "register_backbone", "register_prior",
    "register_likelihood", "register_objective", "register_dataset", "register_quantizer",
]
