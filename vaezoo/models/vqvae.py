"""The VQ-VAE (``family: vqvae``; van den Oord, Vinyals & Kavukcuoglu 2017): a grid of discrete codes.

The encoder maps an image to a grid of ``code_dim``-channel vectors (``grid``: its h x w, the
encoder's deepest feature map), the quantizer replaces each by its code (``vq-ema``, ``fsq``,
``hrq``, ...), and the decoder maps the grid of code vectors back to the likelihood's parameters. The
first stage trains with a uniform prior over the codes; a learned ``code_prior`` (a gated
PixelCNN or a causal transformer over the grid) is fitted afterwards on the frozen codes
(:func:`vaezoo.training.train_code_prior`, ``vaezoo fit-prior``: a stage the training loop runs)
and lives in the same checkpoint.

The posterior is deterministic (all its mass on the nearest codes), so the ELBO is
``log p(x | z_q(x)) + log p(codes)`` and the importance-weighted bound equals it for every k.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from pydantic import Field, PositiveInt
from torch import nn
from torch.distributions import Distribution

from ..errors import UsageError
from ..parts.quantizers.base import Quantized
from ..schemas import CodePriorSpec, DecoderSpec, EncoderSpec, ModelConfig, ObjectiveSpec, QuantizerSpec
from .base import BaseVAE, CodeLatents
from .families import register_family
from .inputs import check_count

__all__ = ["VQVAEConfig", "VQVAE"]


class VQVAEConfig(ModelConfig):
    """``encoder`` maps an image to a (code_dim, *grid) map; ``decoder`` maps the quantized map to the likelihood's."""

    family: Literal["vqvae"] = "vqvae"
    grid: tuple[PositiveInt, PositiveInt] = Field(
        description="(h, w) of the code grid: the size of the encoder's deepest feature map (7 x 7 for two "
                    "stride-2 stages on 28 x 28)")
    code_dim: PositiveInt = Field(64, description="channels of each latent vector: the size of a codebook vector")
    encoder: EncoderSpec
    decoder: DecoderSpec
    quantizer: QuantizerSpec = Field(default_factory=lambda: QuantizerSpec(name="vq-ema"))
    code_prior: Optional[CodePriorSpec] = Field(
        None, description="the learned prior over the codes, fitted after training (vaezoo fit-prior); none: uniform")
    objective: ObjectiveSpec = Field(default_factory=lambda: ObjectiveSpec(name="vq"))

    def as_trained(self) -> "VQVAEConfig":
        return self.model_copy(update={"code_prior": None})

    def latent_size(self) -> int:
        return self.grid[0] * self.grid[1]

    def latent_summary(self) -> str:
        params = self.quantizer.params
        size = params.get("codebook_size") or math.prod(params.get("levels") or [0]) or "?"
        return f"{self.grid[0]}x{self.grid[1]} codes of {size}"


@register_family("vqvae", config=VQVAEConfig)
class VQVAE(CodeLatents, BaseVAE):
    """- ``encode(x)`` -> :class:`~vaezoo.parts.quantizers.Quantized` (``.indices``: (B, h, w) codes);
    - ``decode(z_q)`` -> p(x | z_q) for a (B, code_dim, h, w) grid of code vectors;
    - ``decode_indices(indices)`` -> the images of a grid of codes (the mean of p(x | codes));
    - ``sample(n)`` -> codes from the fitted code prior, decoded;
    - ``log_prior(indices)`` -> log p(codes) in nats: the code prior's, or uniform.
    """


    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        self.grid = tuple(config.grid)
        grid_shape = (config.code_dim, *self.grid)
        self.latent_levels = [("codes", math.prod(self.grid))]
        self.encoder = self._build("encoder", self.input_shape, grid_shape)
        self.quantizer = self._build("quantizer", config.code_dim)
        self.decoder = self._build("decoder", grid_shape, self.likelihood.decoder_shape())
        self.code_prior: Optional[nn.Module] = None
        if config.code_prior is not None:
            self.code_prior = self._build("code_prior", self.codebook_size, self.grid)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    # -- the two halves ---------------------------------------------------------------

    def code_pass(self, x: torch.Tensor, update: Optional[bool] = None) -> tuple[Quantized, Distribution, torch.Tensor]:
        """Encode, quantize (moving an EMA codebook when ``update``, by default while training),
        decode: the quantized grid, p(x | z_q) and log p(x | z_q) of shape (B,)."""
        quantized = self.quantizer(self.encoder(x), update=update)
        likelihood = self.decode(quantized.z_q)
        return quantized, likelihood, likelihood.log_prob(x)

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Quantized:
        """The codes of ``x``: ``.indices`` (B, h, w), ``.z_q`` their vectors; the codebook never moves here."""
        self._labels(0, y, x.device)
        x = self.check_input(x, values=None)
        return self.quantizer(self.encoder(x), update=False)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Distribution:
        return self.likelihood(self.decoder_maps(z))

    def check_indices(self, indices) -> torch.Tensor:
        indices = torch.as_tensor(indices)
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise UsageError(f"code indices must be integers, got {indices.dtype}")
        if indices.dim() != 3 or tuple(indices.shape[1:]) != self.grid:
            raise UsageError(f"code indices must have shape (B, {self.grid[0]}, {self.grid[1]}), got "
                             f"{tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise UsageError(f"code indices must be in 0..{self.codebook_size - 1}, got values from "
                             f"{int(indices.min())} to {int(indices.max())}")
        return indices.long().to(next(self.parameters()).device)

    @torch.no_grad()
    def decode_indices(self, indices, mean: bool = True) -> torch.Tensor:
        """Images of a (B, h, w) grid of codes: the mean of p(x | codes), or a draw (``mean=False``)."""
        likelihood = self.decode(self.quantizer.lookup(self.check_indices(indices)))
        return likelihood.mean if mean else likelihood.sample()

    def log_prior(self, indices: torch.Tensor) -> torch.Tensor:
        """log p(codes) in nats, (B,): the fitted code prior's, else the uniform ``-h w log K``."""
        if self.code_prior is not None:
            return self.code_prior.log_prob(indices)
        uniform = -math.prod(self.grid) * math.log(self.codebook_size)
        return torch.full(indices.shape[:1], uniform, device=indices.device)

    # -- the contract's remaining methods ---------------------------------------------

    @property
    def can_sample(self) -> bool:
        return self.code_prior is not None

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.code_prior is None:
            raise UsageError("this VQ-VAE has no learned prior over its codes to sample from (codes drawn "
                             "uniformly decode to noise): fit one first, `vaezoo fit-prior RUN --prior pixelcnn` "
                             "or vaezoo.train_code_prior(RUN, 'pixelcnn')")
        return self.quantizer.lookup(self.code_prior.sample(n))

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        return {"codes": self.encode(x).z_q}

    def latent_pass(self, x, eps, y=None, posterior=None):
        raise UsageError("the vqvae family has discrete codes, not Gaussian draws: use model(x), model.elbo(x), "
                         "model.encode(x).indices")

    def draw_noise(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        raise UsageError("the vqvae family's posterior is deterministic: it draws no noise")

    def elbo(self, x: torch.Tensor, samples: int = 1, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``log p(x | z_q(x)) + log p(codes)`` per example, (B,): the posterior is deterministic, so
        ``samples`` changes nothing (it is checked, for the contract's sake)."""
        check_count(samples, "samples")
        self._labels(0, y, x.device)
        x = self.check_input(x)
        quantized, _, log_px = self.code_pass(x, update=False)
        return log_px + self.log_prior(quantized.indices)

    def iwae(self, x: torch.Tensor, k: int, chunk_size: Optional[int] = None, y: Optional[torch.Tensor] = None,
             seed: Optional[int] = None, grad: bool = False) -> torch.Tensor:
        """The importance-weighted bound: with a deterministic posterior every weight is the same,
        so it equals the ELBO for every ``k``."""
        check_count(k, "k (the number of importance samples)")
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            return self.elbo(x, y=y)

    def log_weights(self, x: torch.Tensor, samples: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        samples = check_count(samples, "samples")
        return self.elbo(x, y=y).expand(samples, -1)

    def refine(self, x, steps: int = 100, lr: float = 0.05, y=None, **kwargs):
        raise UsageError("refinement optimizes a Gaussian posterior's parameters; the vqvae family's codes are discrete")

    @torch.no_grad()
    def materialize(self) -> None:
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in self.parameters()):
            self.code_pass(torch.zeros(2, *self.input_shape), update=False)

    def extra_repr(self) -> str:
        prior = self.config.code_prior.name if self.config.code_prior else "uniform"
        return (f"family={self.family}, input_shape={list(self.input_shape)}, codes={self.grid[0]}x{self.grid[1]} "
                f"of {self.codebook_size}, code_prior={prior}")
