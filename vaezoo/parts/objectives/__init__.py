"""Training objectives: given the model and a batch, the loss and its named terms."""

from . import autoencoders, disentangling, elbo, factorvae, iwae, tcvae, vq  # noqa: F401 - registers the built-ins
from .autoencoders import AEObjective, WAEMMD
from .base import Objective
from .disentangling import DIPVAE, AnnealedCapacity
from .elbo import ELBO, free_bits_kl
from .factorvae import FactorVAEObjective, permute_dims
from .iwae import IWAEObjective
from .tcvae import BetaTCVAE, tc_decomposition
from .vq import VQObjective

__all__ = ["Objective", "ELBO", "IWAEObjective", "BetaTCVAE", "free_bits_kl", "tc_decomposition", "VQObjective",
           "FactorVAEObjective", "permute_dims", "AEObjective", "WAEMMD",
           "AnnealedCapacity", "DIPVAE"]
