"""``vaezoo.sample_quality``: how close a model's samples are to the test images, in a feature
network's space (``vaezoo eval NAME --fid``).

N samples (10,000 by default, drawn in fixed seeded blocks, so the numbers depend on the seed and
not on the batch size) are decoded to their means and compared with the test images: Fréchet
distance, kernel distance, precision / recall, density / coverage, and the class coverage of the
feature network's predictions. The test images' reconstructions get the same Fréchet distance, a
ceiling for what samples through this decoder can reach. ``prior="gmm"`` samples from a Gaussian
mixture fitted on the aggregate posterior of the training images instead of the training prior
(Ghosh et al. 2020's ex-post density estimation; the model itself is left unchanged);
``prior="two-stage"`` from a second-stage VAE trained on the training images' codes (Dai & Wipf
2019, :func:`vaezoo.posthoc.fit_two_stage`); ``prior="maf"`` or ``"iaf"`` from an autoregressive flow
fitted on them (:func:`vaezoo.posthoc.fit_flow_prior`).
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Optional, Union

import torch

from ..errors import UsageError
from ..features import FeatureExtractor, default_features, get_features
from ..models.base import CodeLatents
from ..parts.metrics import METRICS
from ..posthoc.fitted_prior import fit_prior
from ..posthoc.flow_prior import fit_flow_prior
from ..posthoc.two_stage import fit_two_stage
from ..progress import SLOW_PASS_SECONDS, progress_callback
from ..schemas import DataConfig
from .data import TRAIN_BINARIZE_SEED, as_data_config, resolve_data, training_images
from .feature_metrics import (
    KID_SUBSET_SIZE, KID_SUBSETS, NEAREST_K, class_coverage, frechet_distance, kernel_distance,
    precision_recall_density_coverage,
)
from .report import EvalReport, Measurement

__all__ = ["sample_quality", "draw_samples", "with_gmm_prior", "with_learned_prior", "supports_gmm_prior",
           "SAMPLE_BLOCK", "GMM_COMPONENTS", "PRIORS", "LEARNED_PRIORS"]

SAMPLE_BLOCK = 500  # samples drawn per seeded block: the samples do not depend on any batch size
GMM_COMPONENTS = 10
LEARNED_PRIORS = ("two-stage", "maf", "iaf")  # priors learned on the codes by gradient steps
PRIORS = ("model", "gmm", *LEARNED_PRIORS)  # what samples are drawn from: the training prior or one fitted after


@torch.no_grad()
def draw_samples(model, n: int, seed: int = 0, progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """``n`` decoder means from the model's prior, in blocks of ``SAMPLE_BLOCK``, block b seeded
    by (seed, b); a conditional model gets the classes in turn (balanced), as float32 on the CPU."""
    if not model.can_sample:
        model.sample(1)  # raises the family's own message: how to give it a prior to sample from
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        for block, first in enumerate(range(0, n, SAMPLE_BLOCK)):
            size = min(SAMPLE_BLOCK, n - first)
            y = None
            if model.conditional:
                y = torch.arange(first, first + size, device=device) % model.config.num_classes
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed * 1_000_003 + block)
                out.append(model.sample(size, mean=True, y=y).float().cpu())
            if progress is not None:
                progress(first + size, n)
    finally:
        model.train(was_training)
    return torch.cat(out)


def supports_gmm_prior(model) -> bool:
    """Whether a Gaussian mixture can replace the model's prior: an unconditional Gaussian top latent."""
    return not model.conditional and not isinstance(model, CodeLatents) \
        and hasattr(model, "encode_top")


def with_gmm_prior(model, config: DataConfig, root: Optional[str] = None, components: int = GMM_COMPONENTS,
                   seed: int = 0, progress: Union[bool, Callable[[int, int], None], None] = False):
    """A copy of ``model`` whose prior is a Gaussian mixture fitted on the posterior means of the
    training images (``fit_prior``); the model given is unchanged. ``progress``: the encoding's
    rate and ETA when it takes more than a few seconds."""
    if not supports_gmm_prior(model):
        raise UsageError(f"a Gaussian mixture prior replaces an unconditional Gaussian latent's prior; the "
                         f"'{model.family}' family has none (sample it with its own prior)")
    images, _, _ = training_images(config, root, tuple(model.input_shape), draw_seed=TRAIN_BINARIZE_SEED + seed)
    return fit_prior(copy.deepcopy(model), images, components=components, seed=seed,
                     progress=progress_callback(progress, "fitting the prior, encoding: ", "images", SLOW_PASS_SECONDS))


def with_learned_prior(model, prior: str, config: DataConfig, root: Optional[str] = None, seed: int = 0,
                       progress: Union[bool, Callable[[int, int], None], None] = False):
    """A copy of ``model`` whose prior is learned on the codes of the training images with its
    defaults: ``two-stage`` (``fit_two_stage``), ``maf`` or ``iaf`` (``fit_flow_prior``); the model
    given is unchanged. ``progress``: a line per epoch with the ETA."""
    if prior not in LEARNED_PRIORS:
        raise UsageError(f"a learned prior is one of {', '.join(LEARNED_PRIORS)}, got {prior!r}")
    if not supports_gmm_prior(model):
        raise UsageError(f"a {prior} prior replaces an unconditional Gaussian latent's prior; the "
                         f"'{model.family}' family has none (sample it with its own prior)")
    images, _, _ = training_images(config, root, tuple(model.input_shape), draw_seed=TRAIN_BINARIZE_SEED + seed)
    report = progress_callback(progress, f"fitting the {prior} prior: ", "epochs")
    if prior == "two-stage":
        return fit_two_stage(copy.deepcopy(model), images, seed=seed, progress=report)
    return fit_flow_prior(copy.deepcopy(model), images, prior, seed=seed, progress=report)


def _learned_prior_label(prior: str, spec, seed: int, dataset: str) -> str:
    if prior == "two-stage":
        return (f"two-stage: a second-stage VAE ({spec.params['depth']} x {spec.params['width']} ReLU layers each "
                f"way, seed {seed}) trained on codes z ~ q(z|x) of the {dataset} training images, its decoder mean "
                f"at u ~ N(0, I)")
    return (f"{prior}: a {'masked' if prior == 'maf' else 'inverse'} autoregressive flow ({spec.params['blocks']} MADE "
            f"blocks of {' x '.join(map(str, spec.params['hidden']))}, seed {seed}) fitted by maximum likelihood on "
            f"the posterior means of the {dataset} training images")


def sample_quality(
    model,
    data: Union[DataConfig, str] = "fashion-mnist",
    *,
    samples: int = 10000,
    prior: str = "model",
    features: Union[str, FeatureExtractor, None] = None,
    reconstructions: bool = True,
    seed: int = 0,
    batch_size: int = 500,
    root: Optional[str] = None,
    gmm_components: int = GMM_COMPONENTS,
    model_name: Optional[str] = None,
    progress: Union[bool, Callable[[int, int], None], None] = True,
) -> EvalReport:
    """Sample-quality metrics of ``model`` against the test split of ``data`` (see the module docs).

    ``prior``: ``"model"`` (the training prior), ``"gmm"`` (a ``gmm_components`` mixture fitted on
    the training images' posterior means), ``"two-stage"`` (a second-stage VAE on their codes),
    ``"maf"`` or ``"iaf"`` (an autoregressive flow fitted on them). ``features``: a name (``"fashion-v1"``, ``"inception"``;
    default: the network made for the dataset, fashion-v1 for Fashion-MNIST, else Inception) or a
    FeatureExtractor.
    """
    if prior not in PRIORS:
        raise UsageError(f"prior must be 'model' (the training prior), 'gmm' (a fitted mixture), 'two-stage' (a "
                         f"second-stage VAE on the codes), 'maf' or 'iaf' (a flow fitted on them), got {prior!r}")
    config = as_data_config(data)
    shape = tuple(model.input_shape)
    device = next(model.parameters()).device
    net = features if isinstance(features, FeatureExtractor) else \
        get_features(features or default_features(config.dataset.name), shape, device)
    net.check_images(shape, "the model's images")
    if samples <= net.num_features:
        raise UsageError(f"--fid-samples {samples}: the Fréchet distance fits a {net.num_features}-d Gaussian and "
                         f"needs more samples than the {net.num_features} features (10,000 is the protocol)")
    say = progress_callback(progress)
    timing: dict[str, float] = {}
    start = time.perf_counter()

    # the reference: the real test images, grey levels, whatever the model was trained on
    reference = resolve_data(config.model_copy(update={"binarize": "none"}), root=root, expected_shape=shape)
    real_features, real_classes = net.extract(reference.images, batch_size)
    timing["reference_features_s"] = time.perf_counter() - start

    sampler, sampled_from = model, _prior_label(model)
    if prior == "gmm":
        t = time.perf_counter()
        sampler = with_gmm_prior(model, config, root, gmm_components, seed, progress=progress is True)
        timing["gmm_fit_s"] = time.perf_counter() - t
        draw = f", one binary draw (seed {TRAIN_BINARIZE_SEED + seed})" if config.binarize == "dynamic" else ""
        sampled_from = (f"gmm: {gmm_components}-component diagonal Gaussian mixture fitted by EM (seed {seed}) on the "
                        f"posterior means of the {config.dataset.name} training images{draw}")
    elif prior in LEARNED_PRIORS:
        t = time.perf_counter()
        sampler = with_learned_prior(model, prior, config, root, seed, progress=progress is True)
        timing["prior_fit_s"] = time.perf_counter() - t
        sampled_from = _learned_prior_label(prior, sampler.config.prior, seed, config.dataset.name)
    t = time.perf_counter()
    generated = draw_samples(sampler, samples, seed, say)
    timing["sampling_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fake_features, fake_classes = net.extract(generated, batch_size)
    timing["sample_features_s"] = time.perf_counter() - t

    t = time.perf_counter()
    tag = net.tag
    metrics: dict[str, Measurement] = {}

    def add(base, value, protocol="", stderr=None):
        metric = METRICS.get(base)  # its published name (fd-fashion-v1, fd-fashion-v1@gmm), unit and label
        name = metric.published_name(tag, prior if metric.per_prior else "model")
        metrics[name] = Measurement(value=value, unit=metric.unit, label=metric.label, stderr=stderr,
                                    protocol=protocol)

    n_real = real_features.shape[0]
    add("fd", frechet_distance(real_features, fake_features), f"{samples:,} vs {n_real:,}")
    kid = kernel_distance(real_features, fake_features, seed=seed)
    add("kid", kid.value, f"{kid.subsets} subsets of {kid.subset_size}, spread {kid.spread:.2g}", stderr=kid.stderr)
    prdc = precision_recall_density_coverage(real_features, fake_features)
    k_note = f"k = {prdc.nearest_k} nearest neighbours"
    add("precision", prdc.precision, k_note)
    add("recall", prdc.recall, k_note)
    add("density", prdc.density, k_note)
    add("coverage", prdc.coverage, k_note)
    shares = None
    if fake_classes is not None:
        value, shares = class_coverage(fake_classes, len(net.classes))
        add("class-coverage", value, "exp(entropy of predicted classes) / classes")
    timing["metrics_s"] = time.perf_counter() - t
    if reconstructions:
        t = time.perf_counter()
        seen = resolve_data(config, root=root, expected_shape=shape)  # the test set as the model takes it
        recon = _reconstruct(model, seen.images, seen.labels, batch_size)
        recon_features, _ = net.extract(recon, batch_size)
        add("fd-recon", frechet_distance(real_features, recon_features), f"{n_real:,} test images")
        timing["reconstructions_s"] = time.perf_counter() - t
    timing["seconds"] = time.perf_counter() - start

    protocol = {
        "model": model_name,
        "dataset": config.dataset.name,
        "split": "test",
        "reference": f"all {n_real:,} test images, grey levels in [0, 1]",
        "examples": n_real,
        "features": tag,
        "feature_network": net.description,
        "samples": samples,
        "sample_seed": seed,
        "samples_are": "decoder means of p(x|z), z from the prior" + (", classes in turn" if model.conditional else ""),
        "sampled_from": sampled_from,
        "prior": prior,
        "nearest_k": NEAREST_K,
        "kid": f"unbiased MMD^2, kernel (x.y / d + 1)^3, {KID_SUBSETS} subsets of {KID_SUBSET_SIZE}",
        "family": model.family,
    }
    if shares is not None:
        protocol["class_shares"] = {name: round(s, 4) for name, s in zip(net.classes, shares)}
        protocol["test_class_shares"] = {name: round(s, 4) for name, s in
                                         zip(net.classes, class_coverage(real_classes, len(net.classes))[1])}
    timing["samples_per_s"] = samples / timing["sampling_s"] if timing["sampling_s"] > 0 else 0.0
    return EvalReport(protocol=protocol, metrics=metrics, timing=timing)


@torch.no_grad()
def _reconstruct(model, images: torch.Tensor, labels, batch_size: int) -> torch.Tensor:
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    out = []
    try:
        for first in range(0, images.shape[0], batch_size):
            x = images[first: first + batch_size].to(device=parameter.device, dtype=parameter.dtype)
            y = None if labels is None or not model.conditional else labels[first: first + batch_size].to(x.device)
            out.append(model.reconstruct(x, y).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def _prior_label(model) -> str:
    config = model.config
    if getattr(config, "conditional_prior", False):
        return "the training prior: a learned Gaussian p(z|y) per class"
    if isinstance(model, CodeLatents):
        spec = getattr(config, "code_prior", None)
        return f"the fitted code prior ({spec.name})" if spec is not None else "no code prior"
    spec = getattr(config, "prior", None)
    return f"the training prior ({spec.name})" if spec is not None else "the training prior"
