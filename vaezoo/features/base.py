"""The contract of a feature network: images in, a feature vector (and class logits) out.

Sample-quality metrics (Fréchet distance, kernel distance, precision / recall, density /
coverage) live in the feature space of a fixed network, so every number carries that
network's name and version (``fd-fashion-v1``): two numbers compare only under one network.
"""

from __future__ import annotations

from typing import ClassVar, Optional

import torch
from torch import nn

from ..errors import UsageError

__all__ = ["FeatureExtractor"]


class FeatureExtractor(nn.Module):
    """A frozen network whose penultimate activations define the sample-quality metrics.

    Subclasses set ``tag`` (the name in every metric, e.g. ``"fashion-v1"``), ``input_shape``
    (the images they take, floats in [0, 1]), ``num_features`` and ``classes`` (the class names
    their classifier head predicts; empty for a network without one), and implement
    :meth:`forward_features` returning ``(features, logits or None)``.
    """

    tag: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input_shape: tuple[int, int, int]
    num_features: int
    classes: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

    def check_images(self, shape: tuple[int, ...], what: str) -> None:
        """Refuse images this network was not made for (a CIFAR model under Fashion-MNIST features)."""
        if tuple(shape) != tuple(self.input_shape):
            raise UsageError(
                f"{what} have shape {list(shape)} but the '{self.tag}' feature network takes {list(self.input_shape)}: "
                f"score them with features made for that shape (--features inception takes any image size)")

    @torch.no_grad()
    def extract(self, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Features (N, F) and predicted classes (N,) (or None) of float images in [0, 1], in eval mode."""
        self.check_images(images.shape[1:], "the images")
        parameter = next(self.parameters())
        was_training = self.training
        self.eval()
        features, predicted = [], []
        try:
            for chunk in images.split(batch_size):
                f, logits = self.forward_features(chunk.to(device=parameter.device, dtype=parameter.dtype))
                features.append(f.float().cpu())
                if logits is not None:
                    predicted.append(logits.argmax(dim=1).cpu())
        finally:
            self.train(was_training)
        return torch.cat(features), (torch.cat(predicted) if predicted else None)
