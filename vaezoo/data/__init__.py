"""Datasets (registered parts), how their files are found, splits and binarization."""

from .binarize import dynamic_binarize, static_binarize, to_float
from .datasets import FASHION_MNIST_CLASSES, MNIST_CLASSES, ImageData, fashion_mnist, mnist
from .factors import FactorData, FactorGrid, color_squares, fixed_factor_batch, shapes2d
from .generic import image_folder, tensors
from .releases import celeba, cifar10, fashion_mnist_csv, mnist_csv, svhn
from ..errors import DataNotFoundError
from .splits import DataSplits, load_splits

__all__ = [
    "ImageData", "DataSplits", "load_splits", "DataNotFoundError", "fashion_mnist", "mnist", "tensors", "image_folder",
    "cifar10", "svhn", "celeba", "fashion_mnist_csv", "mnist_csv", "shapes2d", "color_squares", "FactorData",
    "FactorGrid", "fixed_factor_batch",
    "FASHION_MNIST_CLASSES", "MNIST_CLASSES", "static_binarize", "dynamic_binarize", "to_float",
]
