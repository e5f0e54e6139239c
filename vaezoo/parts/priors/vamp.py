"""The VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior"): a mixture of the model's own
posteriors at learned pseudo-inputs. Its KL is the Monte Carlo ``log q(z|x) - log p(z)``."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import NonNegativeFloat, PositiveInt
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ...errors import UsageError
from ...ops.gaussian import diagonal_gaussian_mixture_log_prob
from ..kinds import register_prior
from .base import Prior

__all__ = ["VampPrior"]

_DATA_MARGIN = 0.01


@register_prior("vamp")
class VampPrior(Prior):
    """``p(z) = 1/K sum_k q(z | u_k)``, a uniform mixture of the encoder's posteriors at K
    learnable pseudo-inputs u_k (``pseudo_inputs: K``), image-shaped.

    As in the paper, the pseudo-inputs pass through a hard tanh onto the data range [0, 1]
    and start at ``N(init_mean, init_std^2)`` (std 0.01 as in the paper); ``init: data`` starts
    them at random training images instead when training begins (the paper's alternative), which
    matters most over an already trained encoder: noise pseudo-inputs would all map to one
    point. The posterior is the model's own q at the prior's level (``model.encode_top``, the top level of a hierarchy):
    :meth:`bind` keeps a plain reference to the model, outside this module's submodules, so
    ``state_dict`` holds the pseudo-inputs once and the encoder once; a ``deepcopy`` of the
    model maps the reference to the copy.
    """

    def __init__(
        self, latent_dim: int, pseudo_inputs: PositiveInt = 500, init_mean: float = 0.05,
        init_std: NonNegativeFloat = 0.01, init: Literal["noise", "data"] = "noise",
    ):
        super().__init__(latent_dim)
        self.num_pseudo_inputs = pseudo_inputs
        self.init_mean, self.init_std, self.init = init_mean, init_std, init
        self.register_parameter("pseudo_inputs", None)  # created by bind(), which knows the input shape

    def bind(self, model: nn.Module) -> None:
        if not hasattr(model, "encode_top"):
            raise ValueError("the VampPrior needs a model whose top posterior q(z|x) it can evaluate (encode_top)")
        # object.__setattr__ bypasses nn.Module's registration: the model is not a child of its prior.
        object.__setattr__(self, "_model", model)
        shape = (self.num_pseudo_inputs, *model.input_shape)
        if self.pseudo_inputs is None or tuple(self.pseudo_inputs.shape) != shape:
            self.pseudo_inputs = nn.Parameter(self.init_mean + self.init_std * torch.randn(shape))

    def initialize_from_data(self, images: torch.Tensor, generator: torch.Generator) -> str | None:
        if self.init != "data":
            return None
        if images.shape[0] < self.num_pseudo_inputs:
            raise UsageError(f"the VampPrior's init: data needs at least {self.num_pseudo_inputs} training images "
                             f"(pseudo_inputs), the dataset has {images.shape[0]}: lower pseudo_inputs or use "
                             f"init: noise")
        picked = torch.randperm(images.shape[0], generator=generator)[: self.num_pseudo_inputs]
        pixels = images[picked].float() / 255.0
        # Squeezed inside (0, 1): the hard tanh passes no gradient at exactly 0 or 1, and most of
        # a Fashion-MNIST image is exactly 0.
        with torch.no_grad():
            self.pseudo_inputs.copy_(_DATA_MARGIN + (1 - 2 * _DATA_MARGIN) * pixels.to(self.pseudo_inputs.device))
        return f"{self.num_pseudo_inputs} pseudo-inputs set to random training images"

    def encode_pseudo_inputs(self):
        """The model's top posterior at each pseudo-input, computed now."""
        model = self.__dict__.get("_model")
        if model is None:
            raise RuntimeError("the VampPrior is not bound to a model: call model.bind_prior() after assigning it")
        return model.encode_top(nn.functional.hardtanh(self.pseudo_inputs, 0.0, 1.0))

    def _posteriors(self):
        model = self.__dict__.get("_model")
        if model is None or torch.is_grad_enabled() or model.training:
            return self.encode_pseudo_inputs()  # the gradient flows through them; dropout draws anew
        # Scoring calls the prior once per pass of importance samples: re-encoding the K pseudo-inputs each
        # time was most of a convolutional model's IWAE. Their posteriors change only with the weights,
        # so they are kept until a tensor of the model changes: in place (its version), or for another
        # (its storage: a load, a move, a copy), or the arithmetic does (autocast).
        device = self.pseudo_inputs.device.type
        key = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None,
               *((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers())))
        cached = self.__dict__.get("_cached_posteriors")
        if cached is None or cached[0] != key:
            cached = (key, self.encode_pseudo_inputs())
            self.__dict__["_cached_posteriors"] = cached
        return cached[1]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        q = self._posteriors()
        log_weights = torch.full((self.num_pseudo_inputs,), -math.log(self.num_pseudo_inputs),
                                 device=z.device, dtype=z.dtype)
        return diagonal_gaussian_mixture_log_prob(z, q.mu, q.logvar, log_weights)

    def distribution(self) -> Distribution:
        q = self._posteriors()
        components = Independent(Normal(q.mu, torch.exp(0.5 * q.logvar), validate_args=False), 1,
                                 validate_args=False)
        mix = Categorical(logits=torch.zeros(self.num_pseudo_inputs, device=q.mu.device), validate_args=False)
        return MixtureSameFamily(mix, components, validate_args=False)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, pseudo_inputs={self.num_pseudo_inputs}"
