"""Training objectives: given the model and a batch, the loss and its named terms."""

from . import adversarial, autoencoders, disentangling, elbo, factorvae, infovae, iwae, perceptual, tcvae, vaegan, vq  # noqa: F401 - registers the built-ins
from .adversarial import AdversarialAE
from .autoencoders import AEObjective, RegularizedAE, SlicedWassersteinAE, WAEMMD
from .base import Objective
from .disentangling import DIPVAE, AnnealedCapacity
from .elbo import ELBO, free_bits_kl
from .factorvae import FactorVAEObjective, permute_dims
from .infovae import InfoVAEObjective
from .iwae import CIWAEObjective, IWAEObjective, MIWAEObjective, PIWAEObjective
from .perceptual import MSSSIMVAE
from .tcvae import BetaTCVAE, tc_decomposition
from .vaegan import VAEGAN
from .vq import VQObjective

__all__ = [
    "Objective", "ELBO", "free_bits_kl", "IWAEObjective", "MIWAEObjective", "CIWAEObjective", "PIWAEObjective",
    "InfoVAEObjective", "BetaTCVAE", "tc_decomposition", "VQObjective", "FactorVAEObjective", "permute_dims",
    "AEObjective", "WAEMMD", "SlicedWassersteinAE", "RegularizedAE", "AdversarialAE", "MSSSIMVAE", "AnnealedCapacity", "DIPVAE",
    "VAEGAN",
]
