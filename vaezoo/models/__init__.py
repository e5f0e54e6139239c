"""Model families over one contract (:class:`BaseVAE`): ``vae``, ``cvae``, ``hvae``, ``ladder``, ``vqvae``,
``categorical``, ``ae``, ``svae``, ``joint``, ``pvae``, ``hamiltonian``, ``gamma``, ``vnd``."""

from . import ae, categorical, cvae, gamma, hamiltonian, hvae, joint, ladder, nested_dropout, pvae, svae, vae, vqvae  # noqa: F401 - registers the built-in families
from .ae import AEConfig, Autoencoder
from .base import BaseVAE, CodeLatents, PartBuildError, PointLatents
from .categorical import CategoricalVAE, CategoricalVAEConfig
from .cvae import ConditionalVAE, CVAEConfig
from .families import FAMILIES, family_class, register_family
from .gamma import GammaVAE, GammaVAEConfig
from .hamiltonian import HamiltonianVAE, HamiltonianVAEConfig
from .hvae import HierarchicalVAE, HVAEConfig
from .joint import JointVAE, JointVAEConfig
from .ladder import LadderConfig, LadderVAE
from .nested_dropout import NestedDropoutConfig, NestedDropoutVAE
from .pvae import PoincareVAE, PoincareVAEConfig
from .refine import refine
from .svae import HypersphericalVAE, SVAEConfig
from .vae import VAE, VAEConfig
from .vqvae import VQVAE, VQVAEConfig

__all__ = [
    "BaseVAE", "CodeLatents", "PointLatents", "PartBuildError", "FAMILIES", "register_family", "family_class", "refine",
    "Autoencoder", "AEConfig",
    "VAE", "VAEConfig", "ConditionalVAE", "CVAEConfig", "HierarchicalVAE", "HVAEConfig", "LadderVAE", "LadderConfig",
    "VQVAE", "VQVAEConfig", "CategoricalVAE", "CategoricalVAEConfig", "HypersphericalVAE", "SVAEConfig",
    "JointVAE", "JointVAEConfig", "PoincareVAE", "PoincareVAEConfig",
    "HamiltonianVAE", "HamiltonianVAEConfig", "GammaVAE", "GammaVAEConfig", "NestedDropoutVAE", "NestedDropoutConfig",
]
