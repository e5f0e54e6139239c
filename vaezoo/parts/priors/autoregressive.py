"""Autoregressive flow priors: a masked autoregressive flow (``maf``, Papamakarios, Pavlakou &
Murray 2017) and an inverse autoregressive flow (``iaf``, Kingma et al. 2016) as densities over
the codes, fitted after training on a model's aggregate posterior (pythae's MAFSampler and
IAFSampler; :func:`vaezoo.posthoc.fit_flow_prior`). Both have an exact log-density, so a model
with one is still scored by its bounds.

Each block is a MADE (Germain et al. 2015) giving, for every dimension d in the block's order,
a shift m_d and a log-scale s_d from the dimensions before d. The MAF's block maps a code z to
noise, ``u_d = (z_d - m_d(z_<d)) exp(-s_d(z_<d))``: its density takes one pass per block and its
samples one pass per dimension. The IAF's block maps noise to a code,
``z_d = u_d exp(s_d(u_<d)) + m_d(u_<d)``: its samples take one pass per block and its density one
pass per dimension. The order is reversed from block to block.
"""

from __future__ import annotations

import math

import torch
from pydantic import PositiveInt
from torch import nn

from ..kinds import register_prior
from ..posteriors.iaf import MaskedLinear
from .base import Prior

__all__ = ["MADE", "MAFPrior", "IAFPrior"]

LOG_SCALE_LIMIT = 5.0  # |s| kept below this by a tanh: exp(5) either way is room enough for codes


class MADE(nn.Module):
    """A masked MLP over ``dim`` inputs of degrees ``order``: outputs (m, s), each of its d-th entries
    a function of the inputs of degree below ``order[d]`` only. The head starts at zero: each block
    starts as the identity."""

    def __init__(self, dim: int, hidden: list[int], order: torch.Tensor):
        super().__init__()
        self.register_buffer("order", order, persistent=False)
        degrees = [order]
        for size in hidden:  # hidden degrees cycle through 1..D-1 (0: see nothing, for D = 1)
            degrees.append(torch.arange(size) % max(dim - 1, 1) + min(1, dim - 1))
        layers: list[nn.Module] = []
        for previous, current in zip(degrees[:-1], degrees[1:]):
            layers += [MaskedLinear(len(previous), len(current), current[:, None] >= previous[None, :]), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.head = MaskedLinear(len(degrees[-1]), 2 * dim, (order[:, None] > degrees[-1][None, :]).repeat(2, 1))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, s = self.head(self.trunk(x)).chunk(2, dim=-1)
        return m, LOG_SCALE_LIMIT * torch.tanh(s / LOG_SCALE_LIMIT)

    def dims_in_order(self) -> list[int]:
        return self.order.argsort().tolist()


def _blocks(latent_dim: int, blocks: int, hidden: tuple[int, ...]) -> nn.ModuleList:
    forward = torch.arange(1, latent_dim + 1)
    return nn.ModuleList(MADE(latent_dim, list(hidden), forward if b % 2 == 0 else forward.flip(0))
                         for b in range(blocks))


def _standard_normal_log_prob(u: torch.Tensor) -> torch.Tensor:
    return -0.5 * (u.pow(2) + math.log(2 * math.pi)).sum(-1)


class _FlowPrior(Prior):
    def __init__(self, latent_dim: int, blocks: PositiveInt = 2, hidden: tuple[PositiveInt, ...] = (128, 128, 128)):
        super().__init__(latent_dim)
        self.blocks = _blocks(latent_dim, blocks, tuple(hidden))

    def _noise(self, n: int) -> torch.Tensor:
        reference = self.blocks[0].head.bias
        return torch.randn(n, self.latent_dim, device=reference.device, dtype=reference.dtype)


@register_prior("maf")
class MAFPrior(_FlowPrior):
    """p(z) = N(u; 0, I) prod_blocks |det du/dz|, u = the blocks applied to z in turn: a masked
    autoregressive flow of ``blocks`` MADEs with hidden layers ``hidden`` (pythae's MAF: 2 blocks
    of 3 x 128). The density is one pass per block; a sample inverts every block dimension by
    dimension."""

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        shape = z.shape[:-1]
        x = z.reshape(-1, self.latent_dim)
        log_det = x.new_zeros(x.shape[0])
        for block in self.blocks:
            m, s = block(x)
            x = (x - m) * torch.exp(-s)
            log_det = log_det - s.sum(-1)
        return (_standard_normal_log_prob(x) + log_det).reshape(shape)

    def sample(self, n: int) -> torch.Tensor:
        x = self._noise(n)
        for block in reversed(self.blocks):
            z = torch.zeros_like(x)
            for d in block.dims_in_order():  # z_d needs the z before it in the block's order
                m, s = block(z)
                z = z.clone()  # the earlier entries stay in the graph that computed m and s
                z[:, d] = x[:, d] * torch.exp(s[:, d]) + m[:, d]
            x = z
        return x


@register_prior("iaf")
class IAFPrior(_FlowPrior):
    """z = the blocks applied in turn to u ~ N(0, I), each ``z_d = u_d exp(s_d(u_<d)) + m_d(u_<d)``:
    an inverse autoregressive flow of ``blocks`` MADEs with hidden layers ``hidden`` (pythae's
    IAF: 2 blocks of 3 x 128). A sample is one pass per block; the density inverts every block
    dimension by dimension, p(z) = N(u; 0, I) prod_blocks |det du/dz|."""

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        shape = z.shape[:-1]
        x = z.reshape(-1, self.latent_dim)
        log_det = x.new_zeros(x.shape[0])
        for block in reversed(self.blocks):
            u = torch.zeros_like(x)
            for d in block.dims_in_order():  # u_d needs the u before it in the block's order
                m, s = block(u)
                u = u.clone()  # the earlier entries stay in the graph that computed m and s
                u[:, d] = (x[:, d] - m[:, d]) * torch.exp(-s[:, d])
            _, s = block(u)
            log_det = log_det - s.sum(-1)
            x = u
        return (_standard_normal_log_prob(x) + log_det).reshape(shape)

    def sample(self, n: int) -> torch.Tensor:
        x = self._noise(n)
        for block in self.blocks:
            m, s = block(x)
            x = x * torch.exp(s) + m
        return x
