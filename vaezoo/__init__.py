"""vaezoo: a config-driven zoo of Variational Auto-Encoders for PyTorch.

>>> import vaezoo
>>> vaezoo.list_models("fashion-*")
>>> model = vaezoo.create("fashion-conv64")
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import data, parts  # noqa: F401 - registers the built-in parts and datasets
from .config import ConfigError
from .evaluation import EvalReport, evaluate
from .model import VAE
from .output import VAEOutput
from .parts.priors_mixture import fit_prior
from .parts import (
    register_backbone, register_dataset, register_likelihood, register_objective, register_prior,
)
from .schemas import ExperimentConfig, ModelConfig
from .zoo import create, get_config, list_models, load, register_model
from .training import train
from .hub.remote import push_to_hub

try:
    __version__ = _version("vaezoo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__", "create", "load", "train", "push_to_hub", "list_models", "get_config", "register_model",
    "register_backbone", "register_prior", "register_likelihood", "register_objective", "register_dataset",
    "VAE", "VAEOutput", "ModelConfig", "ExperimentConfig", "ConfigError",
    "evaluate", "EvalReport", "fit_prior",
]
