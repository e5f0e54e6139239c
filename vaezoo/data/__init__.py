"""Datasets (registered parts) and how their files are found."""

from .datasets import FASHION_MNIST_CLASSES, MNIST_CLASSES, ImageData, fashion_mnist, mnist
from .sources import DataNotFoundError

__all__ = ["ImageData", "DataNotFoundError", "fashion_mnist", "mnist", "FASHION_MNIST_CLASSES", "MNIST_CLASSES"]
