"""Training the ``fashion-v1`` feature network: a fixed recipe, the training split only.

Model selection is on the validation images held out of the training set; the test set is
scored once, at the end, for the accuracy the record reports.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .fashion import FashionFeatureNet

__all__ = ["FeatureNetRecipe", "train_feature_net", "accuracy", "synthetic_outliers"]


@dataclass(frozen=True)
class FeatureNetRecipe:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    max_shift: int = 2  # pixels of random translation per image
    flip: bool = True  # random horizontal flips (clothing is left-right symmetric)
    outliers_per_batch: int = 16  # synthetic noise images added to each batch, labelled "not clothing"
    seed: int = 0


@dataclass
class FeatureNetResult:
    net: FashionFeatureNet
    best_epoch: int
    val_accuracy: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _augment(x: torch.Tensor, recipe: FeatureNetRecipe, generator: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    if recipe.flip:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if recipe.max_shift:
        # a translation by whole pixels, zeros shifted in: an affine grid with integer offsets
        shift = torch.randint(-recipe.max_shift, recipe.max_shift + 1, (n, 2), generator=generator).float()
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = shift * 2.0 / x.shape[-1]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x


def synthetic_outliers(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` noise images (n, 1, size, size) in [0, 1], a quarter of each kind: smooth noise (a
    random 2..14 grid, bilinearly enlarged), its thresholded blobs, Gaussian pixel noise of random
    mean and spread, and flat grey. I.i.d. uniform and salt-and-pepper noise are left out on
    purpose: the tests use them as noise the network has never seen."""
    kinds = torch.arange(n) % 4
    out = torch.empty(n, 1, size, size)
    for i in range(n):
        kind = int(kinds[i])
        if kind in (0, 1):
            grid = int(torch.randint(2, 15, (1,), generator=generator))
            coarse = torch.rand(1, 1, grid, grid, generator=generator)
            image = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]
            out[i] = image if kind == 0 else (image > 0.5).float()
        elif kind == 2:
            u = torch.rand(2, generator=generator)
            mean, spread = 0.2 + 0.6 * u[0], 0.05 + 0.35 * u[1]
            out[i] = (mean + spread * torch.randn(1, size, size, generator=generator)).clamp(0, 1)
        else:
            out[i] = torch.rand((), generator=generator)
    return out


@torch.no_grad()
def accuracy(net: FashionFeatureNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    _, predicted = net.extract(images)
    return float((predicted == labels).float().mean())


def train_feature_net(
    train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor, val_labels: torch.Tensor,
    recipe: FeatureNetRecipe = FeatureNetRecipe(), log: Optional[Callable[[str], None]] = print,
) -> FeatureNetResult:
    """Train on ``train`` (float images in [0, 1]) with Adam and a cosine decay; keep the weights
    of the epoch with the best validation accuracy."""
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    net = FashionFeatureNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(train.shape[0] / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    best, best_epoch, best_state, history = -1.0, 0, None, []
    start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        net.train()
        order = torch.randperm(train.shape[0], generator=generator)
        running = 0.0
        for first in range(0, train.shape[0], recipe.batch_size):
            index = order[first: first + recipe.batch_size]
            x, y = _augment(train[index], recipe, generator), train_labels[index]
            if recipe.outliers_per_batch:
                x = torch.cat([x, synthetic_outliers(recipe.outliers_per_batch, x.shape[-1], generator)])
                y = torch.cat([y, torch.full((recipe.outliers_per_batch,), len(net.classes), dtype=y.dtype)])
            loss = F.cross_entropy(net.logits_with_outlier(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += float(loss.detach()) * index.numel()
        val_acc = accuracy(net, val, val_labels)
        history.append({"epoch": epoch, "train_loss": running / train.shape[0], "val_accuracy": val_acc})
        if val_acc > best:
            best, best_epoch = val_acc, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if log is not None:
            elapsed = time.perf_counter() - start
            eta = elapsed / epoch * (recipe.epochs - epoch)
            log(f"epoch {epoch}/{recipe.epochs}  train loss {running / train.shape[0]:.4f}  val accuracy "
                f"{val_acc:.4f}  ({elapsed:.0f} s, eta {eta:.0f} s)")
    net.load_state_dict(best_state)
    net.eval().requires_grad_(False)
    return FeatureNetResult(net=net, best_epoch=best_epoch, val_accuracy=best, history=history,
                            seconds=time.perf_counter() - start)
