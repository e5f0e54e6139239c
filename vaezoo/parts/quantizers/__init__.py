"""Quantizers of latent vectors (the VQ-VAE's bottleneck): one module per method."""

from . import fsq, hierarchical, vector  # noqa: F401 - registers the built-ins
from .base import Quantized, Quantizer
from .fsq import FiniteScalarQuantizer
from .hierarchical import HierarchicalResidualQuantizer
from .vector import VectorQuantizerEMA

__all__ = ["Quantizer", "Quantized", "VectorQuantizerEMA", "FiniteScalarQuantizer", "HierarchicalResidualQuantizer"]
