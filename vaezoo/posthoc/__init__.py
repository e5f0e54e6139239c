"""Tools applied to a trained model: priors fitted on its aggregate posterior."""

from .fitted_prior import fit_gaussian_mixture, fit_prior

__all__ = ["fit_prior", "fit_gaussian_mixture"]
