"""Feature networks for sample-quality metrics: ``fashion-v1`` (shipped, for 28x28 grayscale)
and ``inception`` (torchvision's Inception-v3, weights from the local torch cache).

>>> net = vaezoo.features.get_features("fashion-v1")
>>> features, predicted_classes = net.extract(images)
"""

from __future__ import annotations

from typing import Callable

import torch

from .._registry import Registry
from ..errors import UsageError
from .base import FeatureExtractor
from .fashion import FashionFeatureNet, load_fashion_v1, read_fashion_record
from .inception import InceptionFeatures, load_inception

__all__ = ["FEATURES", "MADE_FOR", "FeatureExtractor", "FashionFeatureNet", "InceptionFeatures", "get_features",
           "default_features", "read_fashion_record"]

# name -> builder(input_shape, device); the shape lets a network that takes any size adapt to it
FEATURES: Registry[Callable[[tuple[int, int, int], torch.device], FeatureExtractor]] = Registry("feature network")
FEATURES.add("fashion-v1", lambda shape, device: load_fashion_v1(device))
FEATURES.add("inception", lambda shape, device: load_inception(shape, device))


# the datasets each dataset-specific network was trained on and is the default for; a network
# is chosen by the data a model is scored on, never by its image shape (an MNIST model scored in
# fashion-v1's space would get numbers that mean nothing, with the same 28x28 shape)
MADE_FOR: dict[str, tuple[str, ...]] = {"fashion-v1": ("fashion-mnist", "fashion-mnist-csv")}


def default_features(dataset: str) -> str:
    """The network made for ``dataset`` where there is one, else Inception (the generic network
    whose distances are the published FID's). Another network is used when asked for by name."""
    return next((name for name, datasets in MADE_FOR.items() if dataset in datasets), "inception")


def get_features(name: str, input_shape: tuple[int, ...] = FashionFeatureNet.input_shape,
                 device: str | torch.device = "cpu") -> FeatureExtractor:
    """The feature network ``name`` for images of ``input_shape``; refuses one made for other images."""
    if name not in FEATURES:
        raise UsageError(FEATURES.unknown_message(name))
    net = FEATURES.get(name)(tuple(input_shape), torch.device(device))
    net.check_images(tuple(input_shape), "the model's images")
    return net
