"""Priors p(z) over the top latent level; one module per family of priors."""

from . import autoregressive, gamma, mixture, normal, poincare, spherical, two_stage, vamp  # noqa: F401 - registers the built-ins
from .autoregressive import IAFPrior, MAFPrior
from .base import Prior
from .gamma import GammaPrior
from .mixture import MixturePrior
from .normal import StandardNormalPrior
from .poincare import PoincareNormalPrior
from .spherical import SphericalUniformPrior
from .two_stage import TwoStagePrior
from .vamp import VampPrior

__all__ = ["Prior", "StandardNormalPrior", "MixturePrior", "VampPrior", "TwoStagePrior", "MAFPrior", "IAFPrior",
           "SphericalUniformPrior", "PoincareNormalPrior", "GammaPrior"]
