"""vaezoo: a config-driven zoo of Variational Auto-Encoders for PyTorch.

>>> import vaezoo
>>> vaezoo.list_models("fashion-*")
>>> model = vaezoo.create("fashion-conv64")
>>> model = vaezoo.load("fashion-conv64")
"""

from ._version import __version__
from . import data, parts  # noqa: E402,F401 - registers the built-in parts and datasets
from .errors import ConfigError, VaezooError  # noqa: E402
from .evaluation import EvalReport, evaluate, evaluate_disentanglement, linear_probe, sample_quality  # noqa: E402
from .hub import load, push_to_hub  # noqa: E402
from .models import (  # noqa: E402
    VAE, VQVAE, BaseVAE, CategoricalVAE, ConditionalVAE, HierarchicalVAE, LadderVAE, register_family,
)
from .parts import (  # noqa: E402
    register_backbone, register_code_prior, register_dataset, register_likelihood, register_objective,
    register_metric, register_posterior, register_prior, register_quantizer,
)
from .passes import ModelOutput, VAEOutput  # noqa: E402
from .posthoc import fit_prior  # noqa: E402
from .schemas import ExperimentConfig, ModelConfig  # noqa: E402
from .training import train, train_code_prior  # noqa: E402
from .zoo import create, get_config, list_models, register_model  # noqa: E402

__all__ = [
    "__version__", "create", "load", "train", "push_to_hub", "list_models", "get_config", "register_model",
    "register_backbone", "register_prior", "register_posterior", "register_likelihood", "register_objective",
    "register_dataset", "register_metric",
    "register_quantizer", "register_family", "BaseVAE", "VAE", "ConditionalVAE", "HierarchicalVAE", "LadderVAE",
    "ModelOutput", "VAEOutput", "ModelConfig", "ExperimentConfig", "ConfigError", "VaezooError",
    "evaluate", "EvalReport", "sample_quality", "linear_probe", "evaluate_disentanglement", "fit_prior", "train_code_prior", "register_code_prior", "VQVAE", "CategoricalVAE",
]
