"""Tools applied to a trained model: a prior fitted on its aggregate posterior, a Gaussian mixture,
a second-stage VAE or an autoregressive flow (a VQ-VAE's code prior is trained by the training loop
instead: :func:`vaezoo.training.train_code_prior`)."""

from .fitted_prior import fit_gaussian_mixture, fit_prior
from .flow_prior import fit_flow_prior
from .two_stage import fit_two_stage

__all__ = ["fit_prior", "fit_gaussian_mixture", "fit_two_stage", "fit_flow_prior"]
