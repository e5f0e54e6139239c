"""``vaezoo.evaluate``: the standard test-set numbers of a model of any family, with their protocol."""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterator, Sequence

import torch

from ..errors import UsageError
from ..models.base import CodeLatents, PointLatents
from ..fastpath import plan_scoring
from ..models.bounds import planned_iwae_bound
from ..models.refine import DEFAULT_REFINE_LR, refine
from ..ops.noise import ELBO_STREAM, IWAE_STREAM, NoiseSource
from ..parts.metrics import METRICS, ImageBatch
from ..passes import kl_term_name
from ..progress import progress_callback
from .codes import evaluate_codes
from .data import DataSource, resolve_data
from .images import ImageColumns, evaluate_images, select_image_metrics
from .metrics import active_units, bits_per_dim, measurement, num_pixels
from .report import EvalReport, Measurement

__all__ = ["evaluate"]


def evaluate(
    model,
    data: DataSource,
    *,
    iw_samples: int = 5000,
    elbo_samples: int = 10,
    batch_size: int = 64,
    chunk_size: int | None = None,
    precision: str = "auto",
    refine_steps: int = 0,
    refine_lr: float = DEFAULT_REFINE_LR,
    seed: int = 0,
    limit: int | None = None,
    binarize: str | None = None,
    root: str | None = None,
    model_name: str | None = None,
    progress: bool | Callable[[int, int], None] | None = True,
    start: int = 0,
    metrics: Sequence[str] | None = None,
    split: str = "test",
) -> EvalReport:
    """Evaluate ``model`` on ``data`` (an image tensor, or a DataConfig / dataset name -> its test split;
    ``split="val"`` scores the validation images that training held out instead, the ones to select
    checkpoints and recipes on, and ``"train"`` the training images).

    Reports, as means over examples with standard errors: -ELBO with ``elbo_samples`` draws
    (its reconstruction term, and the KL of each latent level), the importance-weighted NLL
    with ``iw_samples`` (0 to skip; the weights use the joint over every level), both in
    bits/dim too, and the active units of each level. For a conditional family every bound is
    on log p(x | y), y the true label. With ``refine_steps > 0`` (one-level families) each
    example's posterior is refined (see :func:`vaezoo.models.refine.refine`): the report adds
    the refined -ELBO and the amortization gap, and the refined posterior becomes the
    importance-sampling proposal, which tightens the NLL estimate.

    Results depend on ``seed`` only, not on ``batch_size`` or ``chunk_size`` (importance
    samples decoded per example at once). The importance-weighted bound follows the scoring plan
    of :mod:`vaezoo.fastpath`: ``precision="auto"`` runs a convolutional decoder in bf16 on a CPU
    with native bf16, where it stays within 0.02 nats of float32 (``"float32"`` turns it off); a
    long job times pass sizes on this machine first (once, cached; ``chunk_size`` skips that) and
    compiles the decoder. The report's protocol records the decoder's arithmetic.

    The cost grows with ``iw_samples`` x examples: k = 5000 on all 10,000 Fashion-MNIST test
    images takes hours on a CPU. ``progress`` (on by default) prints the estimated total after
    the first batch, then the rate and an ETA, on stderr; ``progress=False`` silences it, a
    callable ``progress(done, total)`` replaces it. ``limit`` evaluates the first N images;
    ``start`` skips the first ones, and the noise stays keyed by each image's index in the whole
    set, so shards (``start``, ``limit``) scored apart give exactly the numbers of one run.

    Every registered image metric (:class:`~vaezoo.parts.metrics.ImageMetric`: the reconstructions'
    MSE and PSNR, and any a user registers) whose needs the model meets joins the report;
    ``metrics`` names exactly which ones instead (``[]`` for none).

    A model with discrete codes (the vqvae family) gets :func:`~vaezoo.evaluation.codes.evaluate_codes`
    instead: reconstruction likelihood, codebook usage and perplexity, and -ELBO / bits/dim through
    its code prior. A model without a density (a deterministic encoder) gets the image metrics only,
    and its report says in one line why there is no bound.
    """
    if refine_steps and isinstance(model, (CodeLatents, PointLatents)):
        raise UsageError(f"refinement (refine_steps) optimizes Gaussian posteriors; the '{model.family}' family's "
                         f"posterior is deterministic")
    scope = dict(batch_size=batch_size, limit=limit, binarize=binarize, root=root, model_name=model_name,
                 progress=progress, start=start, metrics=metrics, split=split)
    if isinstance(model, CodeLatents):
        # a deterministic posterior: one pass gives the ELBO, which every importance-weighted bound equals
        return evaluate_codes(model, data, **scope)
    if isinstance(model, PointLatents):
        return evaluate_images(model, data, **scope)
    progress = progress_callback(progress)
    if elbo_samples < 1:
        raise UsageError(f"elbo_samples must be at least 1, got {elbo_samples}")
    if iw_samples < 0 or refine_steps < 0 or batch_size < 1:
        raise UsageError("iw_samples and refine_steps must be >= 0 and batch_size >= 1")
    if refine_steps and len(model.latent_levels) != 1:
        raise UsageError(f"refinement (refine_steps) is for one-level families; the '{model.family}' family's "
                         f"posteriors depend on the draws of the levels above")
    evaluation = resolve_data(data, binarize=binarize, limit=limit, root=root,
                              expected_shape=tuple(model.input_shape), start=start, split=split)
    images, labels = evaluation.images, evaluation.labels
    if tuple(images.shape[1:]) != tuple(model.input_shape):
        raise UsageError(
            f"the model takes images of shape {list(model.input_shape)} but the data has {list(images.shape[1:])}"
        )
    if model.conditional and labels is None:
        raise UsageError(f"the '{model.family}' family is conditional and the data has no labels to condition on")
    model.check_input(images, what="the data")  # finite, and in the range the likelihood scores
    per_image = ImageColumns(select_image_metrics(model, labels is not None, metrics))
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    n = images.shape[0]
    levels = [name for name, _ in model.latent_levels]
    single = len(levels) == 1

    columns: dict[str, list[torch.Tensor]] = {}
    means: dict[str, list[torch.Tensor]] = {name: [] for name in levels}
    kl_dims: dict[str, list[torch.Tensor]] = {name: [] for name in levels}

    def keep(column: str, values: torch.Tensor) -> None:
        columns.setdefault(column, []).append(values.double().cpu())

    was_training = model.training
    model.eval()
    layout = torch.channels_last if model.prefers_channels_last(device) else torch.contiguous_format
    model.to(memory_format=layout)
    plan = None
    if iw_samples:
        example = images[:1].to(device=device, dtype=dtype, memory_format=layout)
        say = (lambda line: print(line, file=sys.stderr, flush=True)) if progress is not None else None
        with torch.no_grad():
            plan = plan_scoring(model, example, labels[:1].to(device) if model.conditional else None,
                                precision=precision, decodes=iw_samples * n,
                                decodes_per_pass=chunk_size and chunk_size * min(batch_size, n), say=say)
    scoring_decoder = plan.decoder(model) if plan is not None else None
    offset = start  # noise is keyed by the index in the whole set
    start_time = time.perf_counter()
    try:
        for first, size in ramped_batches(n, batch_size):
            x = images[first: first + size].to(device=device, dtype=dtype, memory_format=layout)
            y = labels[first: first + size].to(device) if model.conditional else None
            indices = range(offset + first, offset + first + x.shape[0])
            with torch.no_grad():
                batch_means = model.posterior_means(x, y)
                for name, value in batch_means.items():
                    means[name].append(value.double().cpu())
                per_image.add(ImageBatch(x, y, lambda: model.decode_latents(batch_means, y).mean))
                eps = NoiseSource(seed, ELBO_STREAM, indices, model.noise_shape, device, dtype).draw(0, elbo_samples)
                draw = model.latent_pass(x, eps, y)
                keep("log_px", draw.log_px.mean(dim=0))
                for level in draw.levels:
                    keep(kl_term_name(level.name, single), level.kl().mean(dim=0))
                    per_dim = level.kl_per_dim()
                    if per_dim is not None:
                        kl_dims[level.name].append(per_dim.mean(dim=0).double().sum(dim=0).cpu())
            proposal = None
            if refine_steps:
                proposal = refine(model, x, refine_steps, refine_lr, seed=seed, indices=indices, y=y)
                with torch.no_grad():  # the same noise as the amortized ELBO: a paired comparison
                    refined = model.latent_pass(x, eps, y, posterior=proposal)
                keep("log_px_r", refined.log_px.mean(dim=0))
                keep("kl_r", refined.kl().mean(dim=0))
            if iw_samples:
                with torch.no_grad(), model.decoding_with(scoring_decoder):
                    noise = NoiseSource(seed, IWAE_STREAM, indices, model.noise_shape, device, dtype)
                    keep("iwae", planned_iwae_bound(model, x, noise, iw_samples, plan, y, posterior=proposal))
            if progress is not None:
                progress(first + size, n)
    finally:
        model.train(was_training)
        model.to(memory_format=torch.contiguous_format)
    seconds = time.perf_counter() - start_time

    pixels = num_pixels(model.input_shape)
    col = {k: torch.cat(v) for k, v in columns.items()}
    metrics: dict[str, Measurement] = {}

    def add(name, values, protocol, metric=None, label=None):
        metrics[name] = measurement(METRICS.get(metric or name), values, protocol, label)

    kl_names = [kl_term_name(name, single) for name in levels]
    total_kl = sum(col[name] for name in kl_names)
    neg_elbo = -(col["log_px"] - total_kl)
    add("neg_elbo", neg_elbo, f"S={elbo_samples}")
    add("recon", -col["log_px"], f"S={elbo_samples}")
    for name, level in zip(kl_names, levels):
        add(name, col[name], f"S={elbo_samples} (closed form where it exists)", metric="kl",
            label=None if single else f"  KL of {level}")
    add("neg_elbo_bpd", bits_per_dim(neg_elbo, pixels), f"S={elbo_samples}, {pixels} dims")
    if refine_steps:
        neg_elbo_r = -(col["log_px_r"] - col["kl_r"])
        add("neg_elbo_refined", neg_elbo_r, f"S={elbo_samples}, {refine_steps} Adam steps, lr {refine_lr:g}")
        add("amortization_gap", neg_elbo - neg_elbo_r, "ELBO refined - ELBO encoder")
    if iw_samples:
        proposal_note = "refined q" if refine_steps else "encoder q"
        nll = -col["iwae"]
        add("iwae_nll", nll, f"k={iw_samples}, proposal {proposal_note}")
        add("nll_bpd", bits_per_dim(nll, pixels), f"k={iw_samples}, {pixels} dims")
        if refine_steps:
            add("approximation_gap", neg_elbo_r - nll, f"-ELBO refined - NLL (k={iw_samples})")
    metrics.update(per_image.measurements())
    if n >= 2:
        counts = {name: active_units(torch.cat(means[name]))[0] for name in levels}
        dims = model.level_dims()
        spec = METRICS.get("active_units")
        metrics["active_units"] = Measurement(value=sum(counts.values()), unit=f"of {sum(dims.values())}",
                                              label=spec.label, protocol=spec.description)
        if not single:
            for name in levels:
                metrics[f"active_units/{name}"] = Measurement(value=counts[name], unit=f"of {dims[name]}",
                                                              label=f"  active units of {name}")
    kl_per_dim = {name: (torch.stack(kl_dims[name]).sum(dim=0) / n).tolist() for name in levels if kl_dims[name]}
    protocol = {
        "model": model_name,
        **{k: v for k, v in evaluation.protocol.items()},
        "family": model.family,
        "likelihood": model.config.likelihood.label,
        "prior": ("a learned Gaussian p(z|y) per class" if getattr(model.config, "conditional_prior", False)
                  else model.prior_label()),
        "latent_levels": dict(model.latent_levels),
        "latent_dim": sum(dim for _, dim in model.latent_levels),
        "pixels": pixels,
        "elbo_samples": elbo_samples,
        "iw_samples": iw_samples,
        "refine_steps": refine_steps,
        "refine_lr": refine_lr if refine_steps else None,
        "seed": seed,
        **(plan.protocol() if plan is not None else {}),
        "units": "nats per image (sum over pixels), mean over examples; bits/dim = nats / (pixels * ln 2)",
    }
    if model.conditional:
        protocol["conditioned_on"] = "the true class label: every bound is on log p(x | y)"
    timing = {"seconds": seconds, "examples_per_s": n / seconds if seconds > 0 else 0.0, "device": str(device)}
    if plan is not None:
        timing["decodes_per_pass_chosen"] = plan.chosen
    return EvalReport(protocol=protocol, metrics=metrics, kl_per_dim=kl_per_dim or None, timing=timing)


def ramped_batches(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """``(first, size)`` of each batch: 1, 2, 4, ... images up to ``batch_size``, so that the first
    progress line (and its estimate of the whole cost) comes after one image, not after a whole
    batch (a minute at k = 5000 on a CPU). The numbers do not change: noise is keyed by image."""
    first, size = 0, 1
    while first < n:
        size = min(size, batch_size, n - first)
        yield first, size
        first += size
        size *= 2
