"""Distances between two sets of images in a feature network's space.

- Fréchet distance (Heusel et al. 2017) and kernel distance (KID, Bińkowski et al. 2018) by
  torchmetrics' implementations (double precision, the matrix square root through eigenvalues),
  fed features computed once: one pass of the feature network serves every metric;
- precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020)
  with k-nearest-neighbour balls, here in torch with chunked distances (the definitions and the
  strict inequalities of the authors' ``prdc`` package; tests compare the two), so 10,000 x
  10,000 distances never sit in memory at once;
- class coverage: how evenly a classifier spreads the samples over the classes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UsageError

__all__ = [
    "frechet_distance", "kernel_distance", "KernelDistance", "precision_recall_density_coverage", "PRDC",
    "class_coverage", "NEAREST_K", "KID_SUBSETS", "KID_SUBSET_SIZE",
]

NEAREST_K = 5  # Naeem et al.'s k for density and coverage, and the k of the precision / recall balls
KID_SUBSETS = 100  # Bińkowski et al.'s protocol: the MMD averaged over 100 subsets of 1,000
KID_SUBSET_SIZE = 1000


class _GivenFeatures(nn.Module):
    """The "feature network" torchmetrics runs: the features were computed already."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _check_pair(real: torch.Tensor, fake: torch.Tensor, at_least: int, what: str) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise UsageError(f"{what}: expected two (N, F) feature matrices of one width, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    smallest = min(real.shape[0], fake.shape[0])
    if smallest < at_least:
        raise UsageError(f"{what} needs at least {at_least} images in each set, got {real.shape[0]} real and "
                         f"{fake.shape[0]} generated")


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) of Gaussians fitted to the two feature sets.

    Covariances of F features from fewer than F + 1 images are singular and the distance is then
    mostly noise: both sets need more images than the features have dimensions.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance  # here: importing torchmetrics takes seconds

    width = real.shape[1] if real.ndim == 2 else 0
    _check_pair(real, fake, width + 1, f"the Fréchet distance of {width}-d features")
    metric = FrechetInceptionDistance(feature=_GivenFeatures(width), reset_real_features=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


@dataclass(frozen=True)
class KernelDistance:
    value: float  # the mean over subsets of the unbiased squared MMD, cubic polynomial kernel
    spread: float  # its standard deviation over the subsets
    stderr: float  # spread / sqrt(independent subsets the samples hold): conservative, the subsets overlap
    subsets: int
    subset_size: int


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS,
                    subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> KernelDistance:
    """KID: the unbiased MMD^2 with the kernel (x.y / F + 1)^3, averaged over random subsets.

    Deterministic for ``seed`` (torchmetrics draws the subsets from the global generator, which
    this forks and restores). Sets smaller than ``subset_size`` use subsets of their size.
    """
    from torchmetrics.image.kid import KernelInceptionDistance  # here: importing torchmetrics takes seconds

    _check_pair(real, fake, 2, "the kernel distance")
    size = min(subset_size, real.shape[0], fake.shape[0])
    with warnings.catch_warnings():  # "will save all extracted features": they are given, that is the point
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        metric = KernelInceptionDistance(feature=_GivenFeatures(real.shape[1]), subsets=subsets, subset_size=size,
                                         reset_real_features=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    independent = max(1, min(real.shape[0], fake.shape[0]) // size)
    return KernelDistance(value=float(mean), spread=float(std), stderr=float(std) / math.sqrt(independent),
                          subsets=subsets, subset_size=size)


@dataclass(frozen=True)
class PRDC:
    precision: float  # generated images inside the real manifold (k-NN balls of the real features)
    recall: float  # real images inside the generated manifold
    density: float  # how many real balls hold each generated image, / k (1 for matching distributions)
    coverage: float  # real images whose ball holds at least one generated image
    nearest_k: int


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # float64 so that the matrix-product form of the distances loses nothing that matters
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist").clamp_min_(0)


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (the row itself is at distance 0)."""
    radii = []
    for first in range(0, x.shape[0], chunk):
        d = _pairwise(x[first: first + chunk], x)
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


@torch.no_grad()
def precision_recall_density_coverage(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = NEAREST_K,
                                      chunk: int = 1024) -> PRDC:
    """The four k-NN manifold metrics, as the ``prdc`` package defines them (strict inequalities)."""
    _check_pair(real, fake, nearest_k + 1, f"precision / recall with k = {nearest_k}")
    real, fake = real.double(), fake.double()
    real_radii = _kth_neighbour_radii(real, nearest_k, chunk)
    fake_radii = _kth_neighbour_radii(fake, nearest_k, chunk)
    inside_real = torch.zeros(fake.shape[0], dtype=torch.long)  # per generated image: real balls holding it
    recalled, covered = [], []
    for first in range(0, real.shape[0], chunk):
        d = _pairwise(real[first: first + chunk], fake)  # (chunk of real, all fake)
        radii = real_radii[first: first + chunk, None]
        inside_real += (d < radii).sum(dim=0)
        recalled.append((d < fake_radii[None, :]).any(dim=1))
        covered.append(d.min(dim=1).values < radii[:, 0])
    return PRDC(
        precision=float((inside_real > 0).double().mean()),
        recall=float(torch.cat(recalled).double().mean()),
        density=float(inside_real.double().mean() / nearest_k),
        coverage=float(torch.cat(covered).double().mean()),
        nearest_k=nearest_k,
    )


def class_coverage(predicted: torch.Tensor, num_classes: int) -> tuple[float, list[float]]:
    """exp(entropy of the predicted-class frequencies) / classes, and the frequencies.

    1.0 when the samples spread evenly over the classes (as the balanced test set does), 1 / classes
    when they all fall in one: dropped modes show up here even where the Fréchet distance is small.
    """
    counts = torch.bincount(predicted.long(), minlength=num_classes).double()
    share = counts / counts.sum()
    entropy = -(share[share > 0] * share[share > 0].log()).sum()
    return float(entropy.exp() / num_classes), share.tolist()
