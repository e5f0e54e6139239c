"""Likelihoods p(x|z); one module per family of likelihoods."""

from . import bernoulli, continuous_bernoulli, discretized_logistic, gaussian, logcosh, pixelcnn  # noqa: F401 - registers them
from .base import Likelihood
from .bernoulli import BernoulliLikelihood
from .continuous_bernoulli import ContinuousBernoulliImage, ContinuousBernoulliLikelihood
from .discretized_logistic import DiscretizedLogisticLikelihood, DiscretizedLogisticMixture
from .gaussian import GaussianLikelihood
from .logcosh import LogCoshImage, LogCoshLikelihood
from .pixelcnn import AutoregressiveBernoulli, PixelCNNLikelihood

__all__ = [
    "Likelihood", "BernoulliLikelihood", "GaussianLikelihood", "ContinuousBernoulliLikelihood",
    "ContinuousBernoulliImage", "DiscretizedLogisticLikelihood", "DiscretizedLogisticMixture",
    "PixelCNNLikelihood", "AutoregressiveBernoulli", "LogCoshLikelihood", "LogCoshImage",
]
