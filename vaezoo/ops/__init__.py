"""Shared math, written once: Gaussian densities and KL divergences, mixtures, log-mean-exp."""

from .gaussian import (
    LOG_2PI, DiagonalGaussian, diagonal_gaussian_mixture_log_prob, gaussian_log_prob, kl_diagonal_gaussians,
    kl_to_standard_normal, standard_normal_log_prob,
)
from .bounds import ACTIVE_UNIT_THRESHOLD, logmeanexp

__all__ = [
    "LOG_2PI", "DiagonalGaussian", "gaussian_log_prob", "standard_normal_log_prob", "kl_to_standard_normal",
    "kl_diagonal_gaussians", "diagonal_gaussian_mixture_log_prob", "logmeanexp", "ACTIVE_UNIT_THRESHOLD",
]
