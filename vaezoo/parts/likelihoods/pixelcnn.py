"""An autoregressive Bernoulli likelihood (``pixelcnn``): each pixel given the pixels before it
in raster order and the decoder's maps, the PixelVAE decoder of Gulrajani et al. 2017 with the
gated, blind-spot-free layers of van den Oord et al. 2016.

A factorized likelihood makes every pixel independent given z, so z has to carry the edges and
textures that neighbouring pixels would tell; here a small gated PixelCNN over the image models
those local dependencies, and the decoder's maps (``maps`` per image channel, seen by every
layer through a 1x1 convolution) carry what is global. The channels of one pixel are
independent Bernoullis given the pixels before it and z, so ``log_prob`` is still the exact,
normalized log-likelihood of the image: one network pass, the cost of a small conv net per
image (and per importance sample). Drawing an image takes one pass per pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn
from torch.distributions import Distribution, constraints

from ..gated_pixelcnn import GatedLayer, OddKernelSize
from ..kinds import PartParams, register_likelihood
from .base import Likelihood

__all__ = ["AutoregressiveBernoulli", "PixelCNNLikelihood", "PixelCNNLikelihoodParams"]

_EVENT_DIMS = (-3, -2, -1)


class PixelCNNLikelihoodParams(PartParams):
    maps: PositiveInt = Field(8, description="conditioning maps the decoder outputs per image channel")
    channels: PositiveInt = Field(32, description="channels of the PixelCNN's two stacks")
    layers: PositiveInt = Field(4, description="gated layers")
    kernel_size: OddKernelSize = Field(5, description="odd kernel width of the stacks")


class AutoregressiveBernoulli(Distribution):
    """p(x | maps) = prod over pixels in raster order of Bernoulli(x_ij | x_<ij, maps); the event
    is one image (C, H, W) and the batch shape is that of ``maps`` without its (K, H, W)."""

    arg_constraints = {}
    support = constraints.independent(constraints.unit_interval, 3)

    def __init__(self, likelihood: "PixelCNNLikelihood", maps: torch.Tensor):
        self.likelihood, self.maps = likelihood, maps
        super().__init__(maps.shape[:-3], torch.Size(likelihood.in_shape), validate_args=False)

    def _flat(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
        """``x`` and the maps broadcast to one batch shape, flattened to (N, ...) for the convolutions."""
        batch = torch.broadcast_shapes(x.shape[:-3], self.batch_shape)
        x = x.expand(*batch, *self.event_shape).reshape(-1, *self.event_shape)
        maps = self.maps.expand(*batch, *self.maps.shape[-3:]).reshape(-1, *self.maps.shape[-3:])
        return x, maps, batch

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logit of every pixel given the pixels of ``x`` before it (teacher forcing)."""
        flat_x, maps, batch = self._flat(x)
        return self.likelihood.network(flat_x, maps).reshape(*batch, *self.event_shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x).float()
        target = x.float().expand_as(logits)
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(_EVENT_DIMS)

    @torch.no_grad()
    def _decode(self, greedy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel by pixel: the image and each pixel's probability given the pixels chosen before
        it. Row i's outputs depend on no row below it and on ``reach`` rows above it at most, so
        each step runs the stack on those rows only."""
        maps = self.maps.reshape(-1, *self.maps.shape[-3:])
        x = torch.zeros(maps.shape[0], *self.event_shape, device=maps.device, dtype=maps.dtype)
        probs = torch.zeros_like(x)
        rows, cols = self.event_shape[-2:]
        reach = self.likelihood.rows_above
        for i in range(rows):
            top = max(0, i - reach)
            for j in range(cols):
                logits = self.likelihood.network(x[:, :, top: i + 1], maps[:, :, top: i + 1])[:, :, -1, j]
                p = torch.sigmoid(logits.float())
                probs[:, :, i, j] = p.to(x.dtype)
                x[:, :, i, j] = (p > 0.5 if greedy else torch.bernoulli(p) > 0).to(x.dtype)
        shape = (*self.batch_shape, *self.event_shape)
        return x.reshape(shape), probs.reshape(shape)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        if len(sample_shape):
            maps = self.maps.expand(*sample_shape, *self.maps.shape)
            return AutoregressiveBernoulli(self.likelihood, maps).sample()
        return self._decode(greedy=False)[0]

    @property
    def mean(self) -> torch.Tensor:
        """Not the exact mean (it has no closed form) but its deterministic stand-in: each pixel's
        probability along the most probable path, each pixel set to 1 where that is above 1/2."""
        return self._decode(greedy=True)[1]


@register_likelihood("pixelcnn", params=PixelCNNLikelihoodParams)
class PixelCNNLikelihood(Likelihood):
    """Bernoulli pixels in [0, 1], each conditioned on the pixels before it in raster order and on
    ``maps`` decoder maps per image channel; see :class:`AutoregressiveBernoulli`."""

    value_range = (0.0, 1.0)

    def __init__(self, in_shape: tuple[int, ...], **params):
        super().__init__(in_shape)
        config = PixelCNNLikelihoodParams(**params)
        self.params_per_channel = config.maps
        channels = self.in_shape[0]
        conditioning = channels * config.maps
        self.layers = nn.ModuleList(
            GatedLayer(channels if i == 0 else config.channels, config.channels, config.kernel_size, i == 0,
                       condition_channels=conditioning)
            for i in range(config.layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(config.channels, channels, 1))
        # how many rows above its own an output sees: k//2 per layer through the vertical stack,
        # plus the row that the down-shift into the horizontal stack adds
        self.rows_above = config.layers * (config.kernel_size // 2) + 1

    def network(self, x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H', W') of images (N, C, H', W') in [0, 1] given maps (N, K, H', W'): pixel
        (i, j) depends on the pixels before it and on every map."""
        v = h = 2.0 * x - 1.0
        for layer in self.layers:
            v, h = layer(v, h, maps)
        return self.head(h)

    def forward(self, decoder_out: torch.Tensor) -> Distribution:
        return AutoregressiveBernoulli(self, decoder_out)
