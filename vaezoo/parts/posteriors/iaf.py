"""Inverse autoregressive flow (Kingma et al. 2016, "Improved variational inference with inverse
autoregressive flow"): each block a masked autoencoder (MADE, Germain et al. 2015) giving m and s,
``z' = sigma * z + (1 - sigma) * m`` with ``sigma = sigmoid(s)``, ``log|det| = sum log sigma`` (the
paper's gated step), or the plain affine step ``z' = z * exp(s) + m``, ``log|det| = sum s`` (the
paper's first form, pythae's ``VAE_IAF``)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import nn

from ..kinds import register_posterior
from .base import Flow, FlowSteps

__all__ = ["MaskedLinear", "IAFBlock", "iaf"]


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (the autoregressive wiring)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU}


class IAFBlock(Flow):
    """One IAF step. Inputs have degrees ``order`` (a permutation of 1..D); a hidden unit of degree
    k sees inputs of degree <= k, and output d sees hidden units of degree < degree(d): m_d and s_d
    depend on the inputs before d only, so the Jacobian is triangular with diagonal sigma (gated)
    or exp(s) (affine). The head starts at zero: the affine step starts as the identity, the gated
    one with ``forget_bias`` putting sigma near 1 (sigmoid(2) = 0.88), the paper's advice for a
    stable start. The gated step is the stable one: sigma <= 1 bounds each step's scale, exp(s) does not."""

    def __init__(self, dim: int, hidden: list[int], order: torch.Tensor, forget_bias: float = 2.0,
                 step: Literal["gated", "affine"] = "gated", activation: Literal["elu", "relu"] = "elu"):
        super().__init__()
        self.step = step
        degrees = [order]
        for size in hidden:  # hidden degrees cycle through 1..D-1 (0: see nothing, for D = 1)
            degrees.append(torch.arange(size) % max(dim - 1, 1) + min(1, dim - 1))
        layers: list[nn.Module] = []
        for previous, current in zip(degrees[:-1], degrees[1:]):
            layers += [MaskedLinear(len(previous), len(current), current[:, None] >= previous[None, :]),
                       ACTIVATIONS[activation]()]
        self.trunk = nn.Sequential(*layers)
        last = degrees[-1]
        out_mask = (order[:, None] > last[None, :]).repeat(2, 1)  # m and s, each autoregressive in `order`
        self.head = MaskedLinear(len(last), 2 * dim, out_mask)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.zero_()
            if step == "gated":
                self.head.bias[dim:] = forget_bias

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, s = self.head(self.trunk(z)).chunk(2, dim=-1)
        if self.step == "affine":
            return z * torch.exp(s) + m, s.sum(-1)
        sigma = torch.sigmoid(s)
        return sigma * z + (1.0 - sigma) * m, F.logsigmoid(s).sum(-1)


@register_posterior("iaf")
def iaf(latent_dim: int, blocks: PositiveInt = 2, hidden: tuple[PositiveInt, ...] = (320, 320),
        forget_bias: float = 2.0, step: Literal["gated", "affine"] = "gated",
        activation: Literal["elu", "relu"] = "elu", first_order: Literal["forward", "reversed"] = "forward",
        ) -> FlowSteps:
    """An inverse autoregressive flow of ``blocks`` MADE blocks (hidden layers ``hidden``, ``activation``
    between them) over the encoder's Gaussian, the order of the dimensions reversed from block to
    block starting with ``first_order``; its parameters are shared by every image (Kingma et al. also
    feed the encoder's context h to each block). ``step``: ``gated`` (the paper's stable form) or
    ``affine``. pythae's ``VAE_IAF`` is ``step: affine, activation: relu, first_order: reversed``
    (it flips the code before each block) with ``hidden: [128, 128, 128]``."""
    orders = [torch.arange(1, latent_dim + 1), torch.arange(latent_dim, 0, -1)]
    first = 0 if first_order == "forward" else 1
    return FlowSteps([IAFBlock(latent_dim, list(hidden), orders[(first + i) % 2], forget_bias, step, activation)
                      for i in range(blocks)])
