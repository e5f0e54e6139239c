"""``fashion-v1``: a small CNN classifier of Fashion-MNIST whose 128-d penultimate layer
defines the zoo's sample-quality metrics for 28x28 grayscale images.

The standard FID uses Inception-v3 features of 299x299 colour photographs, whose weights are
downloaded at run time; for 28x28 clothing a network trained on the same dataset is both
available offline and more sensitive (several MNIST papers do the same). Its numbers do not
compare with Inception-FID tables, which is why every metric is named after it.

The weights ship in ``registry/features/`` as float16 safetensors, pinned by sha256 in the
JSON beside them (with the recipe, the seed and the test accuracy); ``scripts/train_feature_net.py``
trains them again, on the training split only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import ChecksumError, UsageError
from ..resources import registry_dir
from .base import FeatureExtractor

__all__ = ["FashionFeatureNet", "FASHION_CLASSES", "fashion_record_path", "read_fashion_record", "load_fashion_v1"]

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
FEATURES_FOLDER = "features"
VERSION_TAG = "fashion-v1"


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FashionFeatureNet(FeatureExtractor):
    """conv 32 - pool - conv 64 - pool - conv 64 - linear 128 (the features) - ReLU - dropout - linear 11.

    The eleventh output is "not clothing": the network is trained to tell synthetic noise images
    from clothing (outlier exposure, Hendrycks et al. 2019), so that noise lands far from every
    real image in the feature space; a classifier trained on clothing alone maps noise next to
    textured real images, where k-NN precision then counts it as realistic. The classes a sample
    is predicted as are the ten clothing classes only.

    About 6 M multiply-adds per image: the features of 10,000 images take seconds on one CPU core.
    The features are the 128 pre-activations of the penultimate layer (no ReLU, so no pile-up at
    zero that a Gaussian fit for the Fréchet distance would misread), divided by their root mean
    square over the training images (``feature_scale``, fixed by :meth:`calibrate` after training
    and stored with the weights): features of unit size keep KID's cubic kernel (x.y / d + 1)^3
    in the range it was designed for, and put the distances on a scale that reads like FID's.
    """

    tag = VERSION_TAG
    description = "a Fashion-MNIST CNN classifier's 128-d penultimate layer, scaled to unit RMS on the training images"
    input_shape = (1, 28, 28)
    num_features = 128
    classes = FASHION_CLASSES

    def __init__(self, dropout: float = 0.3):
        super().__init__()
        self.body = nn.Sequential(*_block(1, 32), nn.MaxPool2d(2), *_block(32, 64), nn.MaxPool2d(2), *_block(64, 64),
                                  nn.Flatten(), nn.Linear(64 * 7 * 7, self.num_features))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(self.num_features, len(self.classes) + 1))
        self.register_buffer("feature_scale", torch.ones(()))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        # the network sees images centred on 0.5; inputs are [0, 1] floats like every model's
        raw = self.body(x - 0.5)
        return raw / self.feature_scale, self.head(raw)[:, : len(self.classes)]

    def logits_with_outlier(self, x: torch.Tensor) -> torch.Tensor:
        """All eleven logits, the last one "not clothing" (what training fits)."""
        return self.head(self.body(x - 0.5))

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, batch_size: int = 500) -> float:
        """Set ``feature_scale`` to the root mean square of the raw features of ``images`` (the
        training images) so that they have unit mean square; returns it."""
        self.feature_scale.fill_(1.0)
        features, _ = self.extract(images, batch_size)
        self.feature_scale.fill_(features.double().pow(2).mean().sqrt().item())
        return float(self.feature_scale)


def fashion_record_path(folder: Optional[Path] = None) -> Path:
    return (folder or registry_dir() / FEATURES_FOLDER) / f"{VERSION_TAG}.json"


def read_fashion_record(folder: Optional[Path] = None) -> dict[str, Any]:
    """The shipped network's record: weights file, sha256, recipe, seed, accuracy."""
    path = fashion_record_path(folder)
    if not path.is_file():
        raise UsageError(f"the '{VERSION_TAG}' feature network is not installed: {path} is missing "
                         f"(train it with `python scripts/train_feature_net.py`)")
    return json.loads(path.read_text())


def load_fashion_v1(device: str | torch.device = "cpu", folder: Optional[Path] = None) -> FashionFeatureNet:
    """The shipped ``fashion-v1`` network in eval mode, its weights checked against the pinned sha256."""
    record = read_fashion_record(folder)
    weights = fashion_record_path(folder).parent / record["weights"]
    if not weights.is_file():
        raise UsageError(f"the '{VERSION_TAG}' feature network's weights are missing: {weights}")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != record["sha256"]:
        raise ChecksumError(f"{weights}: sha256 {digest} differs from the pinned {record['sha256']}; "
                            f"the file is damaged or was replaced")
    net = FashionFeatureNet()
    state = {name: tensor.float() if tensor.is_floating_point() else tensor
             for name, tensor in load_file(str(weights)).items()}
    net.load_state_dict(state)
    return net.to(device).eval().requires_grad_(False)
