"""Priors over grids of discrete codes (a VQ-VAE's learned second stage): one module per method."""

from . import pixelcnn, transformer  # noqa: F401 - registers the built-ins
from .base import CodePrior
from .pixelcnn import GatedPixelCNN
from .transformer import CausalTransformer

__all__ = ["CodePrior", "GatedPixelCNN", "CausalTransformer"]
