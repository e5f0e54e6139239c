"""Disentanglement scores of a representation against known factors, as disentanglement_lib
(Locatello et al. 2019) defines them, with its defaults.

Each score reads codes (N, D) and the factors that made the images (N, F, whole numbers), or draws
its own batches of factor values from a grid and reads their codes through ``codes_of`` (factor
values -> codes; for a model, the posterior means of every image of the grid, encoded once and
looked up: the votes then cost no encoder pass):

- ``mig``: the mutual information gap (Chen et al. 2018): per factor, the gap between the two codes
  most informative about it, over the factor's entropy; codes discretized into 20 equal-width bins.
- ``modularity``: per code, how much of its information is about one factor (Ridgeway & Zemel 2018).
- ``factor_vae_score``: the majority-vote accuracy of Kim & Mnih 2018: in batches of 64 with one
  factor fixed, the code of least normalized variance names the factor.
- ``beta_vae_score``: Higgins et al. 2017: a logistic regression names the fixed factor from the
  mean absolute difference of codes of 64 pairs.
- DCI, SAP and explicitness: classifiers predict the factors from the codes (:mod:`.predictive_scores`),
  trained on one draw of codes and scored on another. These four fit scikit-learn's classifiers,
  those of disentanglement_lib.
- ``gaussian_total_correlation`` and ``mutual_information_between_codes``: unsupervised, they need
  no factors (Locatello et al. 2019).

Mutual information and entropy are in nats, from contingency tables (as sklearn's
``mutual_info_score``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

from ..data.binarize import to_float_images
from ..data.factors import FACTOR_DATASETS, FactorData, FactorGrid, fixed_factor_batch
from ..errors import UsageError
from ..parts.metrics import METRICS
from ..schemas import DataConfig
from ..models.base import CodeLatents
from .data import as_data_config, resolve_data
from .predictive_scores import dci, explicitness, logistic_regression_accuracy, require_sklearn, sap
from .report import EvalReport, Measurement

__all__ = [
    "DisentanglementRecipe", "histogram_discretize", "mutual_information", "mig", "modularity",
    "factor_vae_score", "beta_vae_score", "gaussian_total_correlation", "mutual_information_between_codes",
    "sample_codes", "posterior_means", "posterior_means_of_grid", "evaluate_disentanglement", "factor_data", "factor_of_each_code",
    "evaluate_code_dependence",
]

CodesOf = Callable[[torch.Tensor], torch.Tensor]  # (B, F) factor values -> (B, D) codes


@dataclass(frozen=True)
class DisentanglementRecipe:
    """disentanglement_lib's defaults; recorded in every report's protocol."""

    bins: int = 20  # MIG, modularity, unsupervised MI: equal-width bins per code
    points: int = 10_000  # codes drawn for MIG, modularity, the unsupervised scores and the classifiers' training
    test_points: int = 5_000  # codes drawn to score the classifiers of DCI, SAP and explicitness
    batch_size: int = 64  # FactorVAE and BetaVAE scores: images per vote / per point
    train_votes: int = 10_000
    eval_votes: int = 5_000
    variance_points: int = 10_000  # FactorVAE score: the global variance of each code
    seed: int = 0

    def describe(self) -> str:
        return (f"{self.points:,} points, {self.bins} bins; DCI, SAP, explicitness: trained on those points, tested "
                f"on {self.test_points:,} more; FactorVAE and BetaVAE scores: {self.train_votes:,} + "
                f"{self.eval_votes:,} votes of {self.batch_size} images, {self.variance_points:,} for the variance; "
                f"seed {self.seed}")


def histogram_discretize(codes: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """(N, D) codes -> (N, D) bin numbers 1..bins: equal-width bins between each code's min and max
    (numpy's ``digitize(x, histogram(x, bins)[1][:-1])``; a constant code falls in the middle bin)."""
    codes = codes.double()
    out = torch.empty(codes.shape, dtype=torch.long)
    for j in range(codes.shape[1]):
        x = codes[:, j]
        lo, hi = float(x.min()), float(x.max())
        if lo == hi:  # numpy widens an empty range to (lo - 0.5, hi + 0.5)
            lo, hi = lo - 0.5, hi + 0.5
        edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)[:-1]
        out[:, j] = torch.searchsorted(edges, x.contiguous(), right=True)
    return out


def _contingency_mi(a: torch.Tensor, b: torch.Tensor) -> float:
    """I(a; b) in nats of two discrete (N,) variables."""
    _, a = torch.unique(a, return_inverse=True)
    _, b = torch.unique(b, return_inverse=True)
    na, nb, n = int(a.max()) + 1, int(b.max()) + 1, a.numel()
    joint = torch.bincount(a * nb + b, minlength=na * nb).double().view(na, nb) / n
    pa, pb = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    nonzero = joint > 0
    return float((joint[nonzero] * (joint[nonzero] / (pa * pb)[nonzero]).log()).sum())


def mutual_information(discrete_codes: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """(D, F) matrix of I(code_i; factor_k) in nats."""
    return torch.tensor([[_contingency_mi(discrete_codes[:, i], factors[:, k]) for k in range(factors.shape[1])]
                         for i in range(discrete_codes.shape[1])], dtype=torch.float64)


def _entropies(factors: torch.Tensor) -> torch.Tensor:
    return torch.tensor([_contingency_mi(factors[:, k], factors[:, k]) for k in range(factors.shape[1])],
                        dtype=torch.float64)


def mig(codes: torch.Tensor, factors: torch.Tensor, bins: int = 20) -> float:
    """The mutual information gap, in [0, 1]: 1 when each factor is in one code alone."""
    if codes.shape[1] < 2:
        raise ValueError("the mutual information gap compares two codes: it needs at least two latent dimensions")
    m = mutual_information(histogram_discretize(codes, bins), factors)
    top = m.sort(dim=0, descending=True).values
    return float(((top[0] - top[1]) / _entropies(factors)).mean())


def modularity(codes: torch.Tensor, factors: torch.Tensor, bins: int = 20) -> float:
    """Ridgeway & Zemel's modularity, in [0, 1]: 1 when each code informs about one factor only
    (a code with no information scores 0)."""
    squared = mutual_information(histogram_discretize(codes, bins), factors).square()
    top = squared.max(dim=1).values
    deviation = (squared.sum(dim=1) - top) / (top * (squared.shape[1] - 1))
    score = torch.where(top == 0, torch.zeros_like(top), 1 - deviation)
    return float(score.mean())


def gaussian_total_correlation(codes: torch.Tensor) -> float:
    """The total correlation of a Gaussian with the codes' covariance, in nats: 0 for independent codes."""
    cov = torch.cov(codes.double().T)
    return float(0.5 * (cov.diagonal().log().sum() - torch.logdet(cov)))


def mutual_information_between_codes(codes: torch.Tensor, bins: int = 20) -> float:
    """The mean discrete mutual information between two different codes, in nats."""
    discrete = histogram_discretize(codes, bins)
    d = discrete.shape[1]
    m = mutual_information(discrete, discrete)
    return float((m.sum() - m.diagonal().sum()) / (d * d - d))


def sample_codes(grid: FactorGrid, codes_of: CodesOf, points: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``points`` factor combinations drawn uniformly (with replacement) and their codes."""
    factors = torch.stack([torch.randint(size, (points,), generator=generator) for size in grid.sizes], dim=1)
    return codes_of(factors).double(), factors


def factor_vae_score(grid: FactorGrid, codes_of: CodesOf,
                     recipe: DisentanglementRecipe = DisentanglementRecipe()) -> dict[str, float]:
    """Kim & Mnih's score: eval accuracy of the majority-vote classifier (and its train accuracy and
    the active codes: those whose global variance is not zero, disentanglement_lib's pruning)."""
    generator = torch.Generator().manual_seed(recipe.seed)
    codes, _ = sample_codes(grid, codes_of, recipe.variance_points, generator)
    global_variance = codes.var(dim=0, unbiased=False)
    active = global_variance > 0
    if not bool(active.any()):
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_codes": 0}

    def votes(count: int) -> torch.Tensor:
        table = torch.zeros(len(grid.sizes), codes.shape[1], dtype=torch.long)
        for _ in range(count):
            factor = int(torch.randint(len(grid.sizes), (1,), generator=generator))
            batch = codes_of(fixed_factor_batch(grid, factor, recipe.batch_size, generator)).double()
            local = batch.var(dim=0, unbiased=True) / global_variance
            local[~active] = float("inf")
            table[factor, int(local.argmin())] += 1
        return table

    train, evaluation = votes(recipe.train_votes), votes(recipe.eval_votes)
    classifier = train.argmax(dim=0)  # each code votes for the factor it was most often the stillest for
    dims = torch.arange(codes.shape[1])
    return {"train_accuracy": float(train[classifier, dims].sum() / train.sum()),
            "eval_accuracy": float(evaluation[classifier, dims].sum() / evaluation.sum()),
            "active_codes": int(active.sum())}


def beta_vae_score(grid: FactorGrid, codes_of: CodesOf,
                   recipe: DisentanglementRecipe = DisentanglementRecipe()) -> dict[str, float]:
    """Higgins et al.'s score: accuracy of a logistic regression naming the fixed factor from the
    mean absolute difference of the codes of ``batch_size`` pairs sharing it."""
    generator = torch.Generator().manual_seed(recipe.seed)

    def points(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        features, labels = [], []
        for _ in range(count):
            factor = int(torch.randint(len(grid.sizes), (1,), generator=generator))
            first = torch.stack([torch.randint(s, (recipe.batch_size,), generator=generator) for s in grid.sizes], 1)
            second = torch.stack([torch.randint(s, (recipe.batch_size,), generator=generator) for s in grid.sizes], 1)
            second[:, factor] = first[:, factor]
            features.append((codes_of(first).double() - codes_of(second).double()).abs().mean(dim=0))
            labels.append(factor)
        return torch.stack(features), torch.tensor(labels)

    train_x, train_y = points(recipe.train_votes)
    eval_x, eval_y = points(recipe.eval_votes)
    train_accuracy, eval_accuracy = logistic_regression_accuracy(train_x, train_y, eval_x, eval_y, recipe.seed)
    return {"train_accuracy": train_accuracy, "eval_accuracy": eval_accuracy}


def factor_data(data: Union[str, DataConfig, FactorData], root: Optional[str] = None) -> tuple[FactorData, str]:
    """The factor dataset ``data`` names (built, or read from its cache) and its name; a UsageError
    when the dataset has no known factors."""
    if isinstance(data, FactorData):
        return data, data.source or "factor data"
    config = as_data_config(data)
    spec = config.dataset
    built = spec.registry.get(spec.name)(root if root is not None else config.root, **spec.params)
    if not isinstance(built, FactorData):
        raise UsageError(f"dataset '{spec.name}' has no known factors: disentanglement is measured on a factor "
                         f"dataset (shapes2d, color-squares) that the model was trained on")
    return built, spec.name


@torch.no_grad()
def posterior_means(model, images: torch.Tensor, labels: Optional[torch.Tensor] = None,
                    batch_size: int = 500) -> torch.Tensor:
    """(N, D) float64: the posterior means (every level, flattened, concatenated) of ``images``
    (uint8, or floats in the model's scale), encoded in eval mode (the model's mode is restored)."""
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = to_float_images(images[start:start + batch_size]).to(device=parameter.device, dtype=parameter.dtype)
            y = None if labels is None else labels[start:start + batch_size]
            means = model.posterior_means(x, y)
            out.append(torch.cat([m.flatten(1).double() for m in means.values()], dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def posterior_means_of_grid(model, data: FactorData, batch_size: int = 500) -> torch.Tensor:
    """(len(grid), D) float64: the posterior means of every image of the grid, in grid order."""
    return posterior_means(model, data.all_images, batch_size=batch_size)


def factor_of_each_code(model, data: FactorData, recipe: DisentanglementRecipe = DisentanglementRecipe()
                        ) -> list[tuple[str, float]]:
    """Per latent dimension (posterior means, every level concatenated): the factor it tells most
    about and that information as a share of the factor's entropy, I(code; factor) / H(factor), in [0, 1]
    (20 bins, 10,000 points of the grid): what a traversal row of a disentangled model shows."""
    table = posterior_means_of_grid(model, data)
    codes, factors = sample_codes(data.grid, lambda f: table[data.grid.index_of(f)], recipe.points,
                                  torch.Generator().manual_seed(recipe.seed))
    share = mutual_information(histogram_discretize(codes, recipe.bins), factors) / _entropies(factors)
    best = share.argmax(dim=1)
    return [(data.grid.names[int(k)], float(share[i, k])) for i, k in enumerate(best)]


def evaluate_code_dependence(model, data: Union[str, DataConfig], *,
                             recipe: DisentanglementRecipe = DisentanglementRecipe(), root: Optional[str] = None,
                             model_name: Optional[str] = None) -> EvalReport:
    """The scores that need no factors, for a model of a dataset without them (Fashion-MNIST): the
    Gaussian total correlation and the mean mutual information between codes, of the posterior
    means (every level, concatenated) of the first ``recipe.points`` test images, binarized as the
    model's data config says."""
    if isinstance(model, CodeLatents):
        raise UsageError(f"the '{model.family}' family's latent is a grid of discrete codes: the dependence between "
                         f"codes is measured on continuous posterior means")
    config = as_data_config(data)
    test = resolve_data(config, root=root, limit=recipe.points, expected_shape=tuple(model.input_shape))
    codes = posterior_means(model, test.images, test.labels if model.conditional else None)
    spectrum = torch.linalg.eigvalsh(torch.cov(codes.T))
    if not bool(spectrum.min() > 1e-9 * spectrum.max()):  # singular up to float64 rounding of the covariance
        raise UsageError(f"the posterior means of the '{model.family}' model have a singular covariance (a constant "
                         f"code, or codes that sum to a constant as a categorical's probabilities do): no Gaussian "
                         f"total correlation")
    values = {"gaussian-tc": gaussian_total_correlation(codes),
              "code-mi": mutual_information_between_codes(codes, recipe.bins)}
    metrics = {key: Measurement(value=value, unit=METRICS.get(key).unit, label=METRICS.get(key).label,
                                protocol=METRICS.get(key).description) for key, value in values.items()}
    protocol = {**test.protocol, "model": model_name, "family": model.family,
                "representation": "posterior means of every latent level",
                "disentanglement": f"{codes.shape[0]:,} test images' posterior means, {recipe.bins} bins (no factors: "
                                   f"the unsupervised scores only)"}
    return EvalReport(protocol=protocol, metrics=metrics)


def evaluate_disentanglement(model, data: Union[str, DataConfig, FactorData] = "shapes2d", *,
                             recipe: DisentanglementRecipe = DisentanglementRecipe(), root: Optional[str] = None,
                             model_name: Optional[str] = None, progress: bool = True) -> EvalReport:
    """Every disentanglement score of ``model``'s posterior means on a dataset with known factors
    (by default ``shapes2d``; a model is scored on the factor dataset it was trained on), with the
    recipe in the protocol. On a dataset without factors, the scores that need none
    (:func:`evaluate_code_dependence`). ``progress``: one line per score on stderr."""
    if not isinstance(data, FactorData) and as_data_config(data).dataset.name not in FACTOR_DATASETS:
        return evaluate_code_dependence(model, data, recipe=recipe, root=root, model_name=model_name)
    require_sklearn()  # before the encoding, not after it
    factors_data, name = factor_data(data, root)
    shape = tuple(factors_data.all_images.shape[1:])
    if shape != tuple(model.input_shape):
        raise UsageError(f"the model takes images of shape {list(model.input_shape)} but {name}'s are {list(shape)}: "
                         f"score a model trained on it")
    started = time.perf_counter()

    def say(text: str) -> None:
        if progress:
            print(f"  {text} ({time.perf_counter() - started:.0f} s so far)", file=sys.stderr, flush=True)

    table = posterior_means_of_grid(model, factors_data)
    grid = factors_data.grid

    def codes_of(factors: torch.Tensor) -> torch.Tensor:
        return table[grid.index_of(factors)]

    say(f"encoded the {len(grid):,} images of the grid")
    generator = torch.Generator().manual_seed(recipe.seed)
    codes, factors = sample_codes(grid, codes_of, recipe.points, generator)
    test_codes, test_factors = sample_codes(grid, codes_of, recipe.test_points, generator)
    values = {"mig": mig(codes, factors, recipe.bins), "modularity": modularity(codes, factors, recipe.bins),
              "gaussian-tc": gaussian_total_correlation(codes),
              "code-mi": mutual_information_between_codes(codes, recipe.bins),
              "sap": sap(codes, factors, test_codes, test_factors)}
    linear = explicitness(codes, factors, test_codes, test_factors)
    values["explicitness"] = linear["test"]
    say("MIG, modularity, SAP, explicitness and the unsupervised scores done; DCI's gradient-boosted trees")
    trees = dci(codes, factors, test_codes, test_factors, recipe.seed)
    values.update({"dci-disentanglement": trees["disentanglement"], "dci-completeness": trees["completeness"],
                   "dci-informativeness": trees["informativeness"]})
    say("the FactorVAE score")
    factor_vae = factor_vae_score(grid, codes_of, recipe)
    say("the BetaVAE score")
    beta_vae = beta_vae_score(grid, codes_of, recipe)
    values["factor-vae-score"], values["beta-vae-score"] = factor_vae["eval_accuracy"], beta_vae["eval_accuracy"]
    metrics = {}
    for key, value in values.items():
        spec = METRICS.get(key)
        metrics[key] = Measurement(value=value, unit=spec.unit, label=spec.label, protocol=spec.description)
    protocol = {
        "model": model_name, "dataset": name, "split": "the whole factor grid, drawn with replacement",
        "family": model.family,
        "factors": dict(zip(factors_data.grid.names, factors_data.grid.sizes)),
        "representation": "posterior means of every latent level",
        "disentanglement": recipe.describe(), "examples": recipe.points,
        "factor_vae_train_accuracy": round(factor_vae["train_accuracy"], 4),
        "factor_vae_active_codes": factor_vae["active_codes"],
        "beta_vae_train_accuracy": round(beta_vae["train_accuracy"], 4),
        "dci_informativeness_train": round(trees["informativeness_train"], 4),
        "explicitness_train": round(linear["train"], 4),
    }
    return EvalReport(protocol=protocol, metrics=metrics, timing={"seconds": time.perf_counter() - started})
