"""The 'residual-mlp' encoder and decoder, as a package that registers them through an entry point.

The same code as in examples/custom_backbone_e2e.py: a checkpoint stores the part names and
their parameters, never code, so whoever loads it needs parts with the same names and the
same tensors, registered by decorator in their script or, as here, by an installed plugin.
"""

import math

from torch import nn

import vaezoo


def _blocks(width: int, blocks: int) -> nn.ModuleList:
    return nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU()) for _ in range(blocks))


@vaezoo.register_backbone("residual-mlp")
class ResidualMLPEncoder(nn.Module):
    """(B, *in_shape) images -> (B, out_features) posterior parameters."""

    def __init__(self, in_shape, out_features, width: int = 256, blocks: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), width))
        self.blocks = _blocks(width, blocks)
        self.head = nn.Linear(width, out_features)

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


@vaezoo.register_backbone("residual-mlp", role="decoder")
class ResidualMLPDecoder(nn.Module):
    """(B, in_features) latents -> (B, *out_shape) likelihood parameters."""

    def __init__(self, in_features, out_shape, width: int = 256, blocks: int = 2):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.stem = nn.Linear(in_features, width)
        self.blocks = _blocks(width, blocks)
        self.head = nn.Linear(width, math.prod(out_shape))

    def forward(self, z):
        h = self.stem(z)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h).view(-1, *self.out_shape)
