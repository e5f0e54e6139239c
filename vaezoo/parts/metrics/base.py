"""What a metric is: its name, what it needs, its unit, the protocol fields that make it comparable.

A metric is one registered object (``@register_metric``) that the evaluation, ``vaezoo eval``,
publishing, the model cards and the docs tables all read, so adding one touches one module:

    @register_metric
    class MaxError(ImageMetric):
        '''The largest absolute pixel error of the mean reconstruction.'''
        name, label, unit = "max-error", "largest pixel error", "per pixel"
        needs = ("reconstructions",)
        description = "max over pixels of |x - mean of p(x|z)|, images in [0, 1]"

        def measure(self, batch):
            return (batch.reconstruction - batch.x).abs().flatten(1).amax(1)

Metrics are measured by suites: ``bounds`` (``vaezoo.evaluate``: -ELBO, IWAE, active units),
``codes`` (a model with discrete codes), ``samples`` (``--fid``: distances in a feature network's
space), ``probe`` (``--probe``), ``disentanglement`` (``--disentanglement``: a dataset with known
factors), and ``images``: a per-image number computed from the test images
in whichever pass scores them (:class:`ImageMetric`, the one a user writes most often).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, Optional, Union

import torch

from ..._registry import Registry

__all__ = ["Metric", "ImageMetric", "ImageBatch", "METRICS", "register_metric", "find_metric", "UNITS", "NEEDS",
           "SUITES", "PROTOCOL_FIELDS", "metrics_of"]

# the units a published number may have, and what each means
UNITS = {
    "nats": "nats per image, summed over pixels",
    "bits/dim": "nats / (pixels x ln 2)",
    "units": "a count of latent dimensions",
    "fraction": "a share in [0, 1]",
    "codes": "a count of codes",
    "per pixel": "a mean over pixels of [0, 1] images",
    "dB": "decibels",
    "score": "a distance in a feature space",
    "ratio": "1 where samples and data match",
    "information": "nats of information between latent codes, or between codes and factors",
}

# what a metric may need, and who provides it
NEEDS = {
    "density": "a posterior density and a likelihood: the bounds on log p(x)",
    "reconstructions": "the decoder mean at the posterior mean of each test image",
    "codes": "discrete latent codes (the vqvae family)",
    "posterior-means": "the posterior means of a set of images",
    "samples": "images drawn from the model's prior",
    "features": "a feature network made for the dataset",
    "labels": "the class labels of the images",
    "factors": "the ground-truth factors of a factor dataset",
}

SUITES = ("bounds", "codes", "images", "samples", "probe", "disentanglement")

# the fields of a published record's protocol a metric may require beyond those every record
# has (split, number of examples, likelihood, binarization, weights dtype)
PROTOCOL_FIELDS = ("importance_samples", "mc_samples", "seed", "code_prior", "features", "samples",
                   "sampled_from", "probe", "disentanglement", "decoder_arithmetic")


class Metric:
    """A registered metric. Subclasses set the class attributes; the suite named by ``suite``
    measures it (an :class:`ImageMetric` measures itself)."""

    name: ClassVar[str]
    label: ClassVar[str]  # how the evaluation's table names it
    unit: ClassVar[str]  # one of UNITS: what a published record says
    needs: ClassVar[tuple[str, ...]] = ()  # of NEEDS
    suite: ClassVar[str] = "images"
    protocol: ClassVar[tuple[str, ...]] = ()  # of PROTOCOL_FIELDS: what a published record must fill
    description: ClassVar[str] = ""  # how it is measured, in a clause: for cards and docs
    higher_is_better: ClassVar[Optional[bool]] = None
    publish: ClassVar[bool] = True  # whether ``vaezoo publish`` records it from an eval report
    features: ClassVar[bool] = False  # published as ``NAME-<feature network>`` (``fd-fashion-v1``)
    per_prior: ClassVar[bool] = False  # also as ``NAME-<features>@gmm``: samples from a fitted prior
    tables: ClassVar[tuple[str, ...]] = ()  # the docs summary tables that show it as a column: codes, quality
    column: ClassVar[str] = ""  # its header there
    position: ClassVar[int] = 100  # the column's place, left to right
    cell: ClassVar[str] = "{:.3f}"  # how that column writes a value

    def protocol_from(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """The protocol fields this metric's record takes from an evaluation report's protocol."""
        return {}

    def published_name(self, features: Optional[str] = None, prior: str = "model") -> str:
        """``fd-fashion-v1``, ``fd-fashion-v1@gmm`` for a feature metric; else the name itself."""
        if not self.features:
            return self.name
        return f"{self.name}-{features}" + ("" if prior == "model" else f"@{prior}")

    def format_cell(self, value: float) -> str:
        return self.cell.format(value)

    def __repr__(self) -> str:
        return f"<metric {self.name} ({self.unit}), suite {self.suite}>"


class ImageBatch:
    """What an :class:`ImageMetric` sees of one batch: the test images ``x`` as the model takes them
    (float, in [0, 1]), their labels ``y`` (or None), and their reconstruction: given, or made the
    first time a metric asks for it by the ``reconstruction`` callable, once per batch."""

    def __init__(self, x: torch.Tensor, y: Optional[torch.Tensor],
                 reconstruction: Union[torch.Tensor, Callable[[], torch.Tensor]]):
        self.x, self.y = x, y
        self._reconstruction = reconstruction

    @property
    def reconstruction(self) -> torch.Tensor:
        """The decoder mean at the posterior mean of every level, shaped like ``x``."""
        if callable(self._reconstruction):
            self._reconstruction = self._reconstruction()
        return self._reconstruction


class ImageMetric(Metric):
    """A number per test image, averaged over the set with its standard error; measured in the pass
    that scores the test images, whatever the family."""

    suite: ClassVar[str] = "images"
    needs: ClassVar[tuple[str, ...]] = ("reconstructions",)

    def measure(self, batch: ImageBatch) -> torch.Tensor:
        """Shape (B,): this metric of each image of the batch."""
        raise NotImplementedError


METRICS: Registry[Metric] = Registry("metric")


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: register one instance of a :class:`Metric` subclass under its ``name``."""
    metric = cls()
    problems = []
    if not getattr(cls, "name", ""):
        problems.append("a name")
    if getattr(cls, "unit", None) not in UNITS:
        problems.append(f"a unit among {sorted(UNITS)} (got {getattr(cls, 'unit', None)!r})")
    if not getattr(cls, "label", ""):
        problems.append("a label")
    unknown_needs = sorted(set(cls.needs) - set(NEEDS))
    if unknown_needs:
        problems.append(f"needs among {sorted(NEEDS)} (got {unknown_needs})")
    if cls.suite not in SUITES:
        problems.append(f"a suite among {list(SUITES)} (got {cls.suite!r})")
    unknown_fields = sorted(set(cls.protocol) - set(PROTOCOL_FIELDS))
    if unknown_fields:
        problems.append(f"protocol fields among {list(PROTOCOL_FIELDS)} (got {unknown_fields})")
    if cls.suite == "images" and cls.measure is ImageMetric.measure:
        problems.append("a measure(batch) method (an image metric measures itself)")
    if problems:
        raise ValueError(f"metric {cls.__name__} needs " + "; ".join(problems))
    METRICS.add(cls.name, metric)
    return cls


def find_metric(name: str, features: Optional[str] = None) -> Optional[Metric]:
    """The registered metric a reported or published name stands for: ``neg_elbo`` itself, or
    ``fd`` for ``fd-fashion-v1@gmm`` when ``features`` is that record's network; None for a name
    that no metric publishes (``kl_z1``, a training loop's ``val_loss``)."""
    if name in METRICS:
        return METRICS.get(name)
    if features:
        base = name.split("@", 1)[0]
        suffix = f"-{features}"
        if base.endswith(suffix) and base[: -len(suffix)] in METRICS:
            metric = METRICS.get(base[: -len(suffix)])
            return metric if metric.features else None
    return None


def metrics_of(suite: str) -> list[Metric]:
    """The registered metrics a suite measures, plugins included, in name order."""
    return [metric for metric in (METRICS.get(name) for name in METRICS.names()) if metric.suite == suite]
