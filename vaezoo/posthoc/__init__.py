"""Tools applied to a trained model: priors fitted on its aggregate posterior or on its codes."""

from .code_prior import encode_codes, fit_code_prior
from .fitted_prior import fit_gaussian_mixture, fit_prior

__all__ = ["fit_prior", "fit_gaussian_mixture", "fit_code_prior", "encode_codes"]
