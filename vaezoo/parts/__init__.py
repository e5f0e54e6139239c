"""Registered parts: backbones, priors, likelihoods, objectives (and datasets, in vaezoo.data)."""

from . import backbones, likelihoods, objectives, priors  # noqa: F401 - registers the built-ins
from . import likelihoods_zoo, objectives_zoo, priors_mixture  # noqa: F401 - more built-ins
from .likelihoods import Likelihood
from .objectives import Objective
from .priors import Prior
from .registry import (
    DATASETS, DECODERS, ENCODERS, LIKELIHOODS, OBJECTIVES, PRIORS, PartParams, register_backbone,
    register_dataset, register_likelihood, register_objective, register_prior,
)

__all__ = [
    "ENCODERS", "DECODERS", "PRIORS", "LIKELIHOODS", "OBJECTIVES", "DATASETS", "PartParams",
    "Prior", "Likelihood", "Objective", "register_backbone", "register_prior",
    "register_likelihood", "register_objective", "register_dataset",
]
