"""``vaezoo.linear_probe``: how much of the class a model's posterior means hold, read by a linear
classifier (``vaezoo eval NAME --probe``).

The recipe is fixed, so that numbers compare across models: the posterior means of every latent
level (a VQ-VAE: its quantized code vectors), flattened and concatenated, for the training split's
images as the model takes them; each feature standardized with the training statistics; a
multinomial logistic regression with an L2 penalty fitted by full-batch L-BFGS; accuracy on the
test split. A conditional model is refused: its posterior is given the label it would be probed for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import nn

from ..errors import UsageError
from ..parts.metrics import METRICS
from ..progress import SLOW_PASS_SECONDS, progress_callback
from ..schemas import DataConfig
from .data import as_data_config, resolve_data, training_images
from .report import EvalReport, Measurement

__all__ = ["linear_probe", "ProbeRecipe", "posterior_features", "fit_logistic_regression"]


@dataclass(frozen=True)
class ProbeRecipe:
    l2: float = 1e-4  # on the mean cross-entropy: weight * ||W||^2 / 2
    max_iterations: int = 500
    tolerance: float = 1e-7

    def describe(self) -> str:
        return (f"multinomial logistic regression on standardized posterior means, L2 {self.l2:g}, full-batch "
                f"L-BFGS (strong Wolfe), at most {self.max_iterations} iterations")


@torch.no_grad()
def posterior_features(model, images: torch.Tensor, batch_size: int = 500,
                       progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """(N, D) float32 on the CPU: every level's posterior mean, flattened, concatenated;
    ``progress(done, total)`` after each batch."""
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    out = []
    try:
        for chunk in images.split(batch_size):
            means = model.posterior_means(chunk.to(device=parameter.device, dtype=parameter.dtype))
            out.append(torch.cat([m.flatten(1).float() for m in means.values()], dim=1).cpu())
            if progress is not None:
                progress(sum(part.shape[0] for part in out), images.shape[0])
    finally:
        model.train(was_training)
    return torch.cat(out)


def fit_logistic_regression(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                            recipe: ProbeRecipe = ProbeRecipe()) -> nn.Linear:
    """A linear classifier of standardized ``features``; deterministic (zero start, full batch)."""
    classifier = nn.Linear(features.shape[1], num_classes, dtype=torch.float64)
    nn.init.zeros_(classifier.weight)
    nn.init.zeros_(classifier.bias)
    x, y = features.double(), labels.long()
    optimizer = torch.optim.LBFGS(classifier.parameters(), lr=1.0, max_iter=recipe.max_iterations,
                                  tolerance_grad=recipe.tolerance, tolerance_change=recipe.tolerance * 1e-2,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(classifier(x), y) + 0.5 * recipe.l2 * classifier.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return classifier


def _standardize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # a constant feature (an unused code) stays 0
    return (train - mean) / std, (test - mean) / std


def linear_probe(
    model,
    data: Union[DataConfig, str] = "fashion-mnist",
    *,
    recipe: ProbeRecipe = ProbeRecipe(),
    root: Optional[str] = None,
    batch_size: int = 500,
    model_name: Optional[str] = None,
    progress: Union[bool, Callable[[int, int], None], None] = True,
) -> EvalReport:
    """Test accuracy of a linear classifier of ``model``'s posterior means (see the module docs).

    ``data``: the model's DataConfig (its binarization decides the inputs) or a dataset name.
    ``progress``: the encoding's rate and ETA on stderr when it takes more than a few seconds
    (``False`` silences it; a callable ``progress(done, total)`` replaces it).
    """
    if model.conditional:
        raise UsageError(f"a linear probe reads the class from q(z|x); the conditional '{model.family}' family's "
                         f"posterior is given the class, so its probe would measure nothing")
    config = as_data_config(data)
    shape = tuple(model.input_shape)
    start = time.perf_counter()
    train_images, train_labels, classes = training_images(config, root, shape)
    test = resolve_data(config, root=root, expected_shape=shape)
    if train_labels is None or test.labels is None:
        raise UsageError(f"the linear probe needs class labels; the {config.dataset.name} images have none")
    train_x = posterior_features(model, train_images, batch_size, progress_callback(
        progress, "probe, training images: ", "images", SLOW_PASS_SECONDS))
    test_x = posterior_features(model, test.images, batch_size, progress_callback(
        progress, "probe, test images: ", "images", SLOW_PASS_SECONDS))
    encode_s = time.perf_counter() - start
    train_x, test_x = _standardize(train_x, test_x)
    num_classes = max(len(classes), int(train_labels.max()) + 1)
    t = time.perf_counter()
    classifier = fit_logistic_regression(train_x, train_labels, num_classes, recipe)
    with torch.no_grad():
        train_accuracy = (classifier(train_x.double()).argmax(1) == train_labels).double().mean().item()
        correct = (classifier(test_x.double()).argmax(1) == test.labels).double()
    n = correct.numel()
    accuracy = correct.mean().item()
    stderr = (accuracy * (1 - accuracy) / n) ** 0.5
    metric = METRICS.get("probe-accuracy")
    metrics = {metric.name: Measurement(value=accuracy, unit=metric.unit, label=metric.label, stderr=stderr,
                                        protocol=f"{train_x.shape[1]} features")}
    protocol = {
        "model": model_name,
        "dataset": config.dataset.name,
        "split": "test",
        "examples": int(n),
        "family": model.family,
        "probe": recipe.describe(),
        "probe_inputs": test.protocol.get("binarization"),
        "probe_features": int(train_x.shape[1]),
        "probe_train_examples": int(train_x.shape[0]),
        "probe_train_accuracy": round(train_accuracy, 4),
    }
    timing = {"encode_s": encode_s, "fit_s": time.perf_counter() - t, "seconds": time.perf_counter() - start}
    return EvalReport(protocol=protocol, metrics=metrics, timing=timing)
