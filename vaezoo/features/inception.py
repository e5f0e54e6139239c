"""``inception``: torchvision's Inception-v3 (ImageNet weights), 2048-d pool features, for images
of any size and 1 or 3 channels.

The weights are read from the local torch cache only (``$TORCH_HOME/hub/checkpoints``, where
``torchvision.models.inception_v3(weights="IMAGENET1K_V1")`` leaves them); vaezoo never
downloads them. These are torchvision's ImageNet weights, not the TensorFlow graph behind
published FID tables (``pt_inception-2015-12-05``): the numbers come close to, but are not,
"FID", so they carry the name ``fd-inception-tv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .base import FeatureExtractor

__all__ = ["InceptionFeatures", "INCEPTION_WEIGHTS", "inception_weights_path", "load_inception"]

INCEPTION_WEIGHTS = "inception_v3_google-0cc3c7bd.pth"  # torchvision's IMAGENET1K_V1 file name
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def inception_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS


def _torchvision_inception() -> nn.Module:
    from torchvision.models import inception_v3

    # transform_input: the ImageNet weights expect it (torchvision sets it for IMAGENET1K_V1)
    return inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)


class InceptionFeatures(FeatureExtractor):
    """Resize to 299 x 299 (bilinear, antialiased), grey to three channels, ImageNet normalization,
    Inception-v3 up to its average pool: 2048 features. No classes (ImageNet's mean nothing here)."""

    tag = "inception-tv"
    description = "torchvision Inception-v3 (ImageNet) 2048-d pool features"
    num_features = 2048
    resolution = 299

    def __init__(self, network: nn.Module, input_shape: tuple[int, int, int]):
        super().__init__()
        if input_shape[0] not in (1, 3):
            raise UsageError(f"Inception features take 1- or 3-channel images, got {input_shape[0]} channels")
        self.input_shape = tuple(input_shape)
        network.fc = nn.Identity()  # the pool features, not ImageNet logits
        self.network = network
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                          antialias=True)
        out = self.network((x - self.mean) / self.std)
        return (out.logits if hasattr(out, "logits") else out), None


def load_inception(input_shape: tuple[int, int, int], device: str | torch.device = "cpu",
                   builder: Callable[[], nn.Module] = _torchvision_inception,
                   weights: Optional[Path] = None) -> InceptionFeatures:
    """Inception features for images of ``input_shape``, the weights from the local torch cache."""
    path = Path(weights) if weights is not None else inception_weights_path()
    if not path.is_file():
        raise UsageError(f"Inception-v3 weights not found: put torchvision's {INCEPTION_WEIGHTS} at {path} (run "
                         f"torchvision.models.inception_v3(weights='IMAGENET1K_V1') once where the internet is "
                         f"reachable, or set TORCH_HOME), or use the features made for the dataset")
    network = builder()
    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    return InceptionFeatures(network, input_shape).to(device).eval().requires_grad_(False)
