"""The test-set numbers of a model with discrete codes (the vqvae family), with their protocol.

- ``recon``: -log p(x | z_q(x)) in nats per image, the decoder's likelihood of the test image;
- ``kl``: -log p(codes), the prior's NLL of the image's code grid: the fitted code prior's, or
  ``h w log K`` under the uniform prior of the first stage (the posterior is deterministic, so
  its entropy is 0 and this is its KL);
- ``neg_elbo`` = recon + kl, a bound on -log p(x) (equal to the importance-weighted bound for
  every k), and ``neg_elbo_bpd`` the same in bits per dimension;
- the registered image metrics (:mod:`vaezoo.parts.metrics`), of the mean reconstruction
  p(x | z_q(x)): ``mse`` and ``psnr`` among them;
- ``codebook_usage``: the fraction of the K codes used anywhere in the test codes, and
  ``perplexity``: exp of the entropy of the codes' frequencies over the test set (K at best);
- for a hierarchical quantizer (its code is a path of digits, one per level), ``level_usage``: the
  fraction of a level's codes used, at the least-used level (the paths are combinations of codes).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import torch

from ..parts.metrics import METRICS, ImageBatch
from ..progress import progress_callback
from .data import DataSource, resolve_data
from .images import ImageColumns, select_image_metrics
from .metrics import bits_per_dim, measurement, num_pixels
from .report import EvalReport, Measurement

__all__ = ["evaluate_codes"]



@torch.no_grad()
def evaluate_codes(
    model,
    data: DataSource,
    *,
    batch_size: int = 256,
    limit: int | None = None,
    binarize: str | None = None,
    root: str | None = None,
    model_name: str | None = None,
    progress: bool | Callable[[int, int], None] | None = True,
    start: int = 0,
    metrics: Sequence[str] | None = None,
    split: str = "test",
) -> EvalReport:
    """Evaluate a model with discrete codes on ``data`` (as :func:`vaezoo.evaluate` takes it)."""
    progress = progress_callback(progress)
    evaluation = resolve_data(data, binarize=binarize, limit=limit, root=root, expected_shape=tuple(model.input_shape),
                              start=start, split=split)
    images = evaluation.images
    model.check_input(images, what="the data")
    per_image = ImageColumns(select_image_metrics(model, evaluation.labels is not None, metrics))
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    n = images.shape[0]
    columns: dict[str, list[torch.Tensor]] = {"recon": [], "kl": []}
    counts = torch.zeros(model.codebook_size, dtype=torch.float64)
    was_training = model.training
    model.eval()
    start_time = time.perf_counter()
    try:
        for first in range(0, n, batch_size):
            x = images[first: first + batch_size].to(device=device, dtype=dtype)
            quantized, likelihood, log_px = model.code_pass(x, update=False)
            columns["recon"].append(-log_px.double().cpu())
            columns["kl"].append(-model.log_prior(quantized.indices).double().cpu())
            per_image.add(ImageBatch(x, None, likelihood.mean))
            counts += torch.bincount(quantized.indices.reshape(-1).cpu(), minlength=model.codebook_size).double()
            if progress is not None:
                progress(min(n, first + batch_size), n)
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - start_time
    col = {k: torch.cat(v) for k, v in columns.items()}
    pixels = num_pixels(model.input_shape)
    grid = f"{model.grid[0]}x{model.grid[1]} codes of {model.codebook_size}"
    prior = model.config.code_prior.name if model.config.code_prior is not None else "uniform"
    metrics: dict[str, Measurement] = {}

    def add(name, values, label, protocol=""):
        metrics[name] = measurement(METRICS.get(name), values, protocol, label)

    neg_elbo = col["recon"] + col["kl"]
    add("neg_elbo", neg_elbo, "-ELBO = -log p(x|z_q) - log p(codes)", f"code prior {prior}")
    add("recon", col["recon"], "  reconstruction -log p(x|z_q)")
    add("kl", col["kl"], "  -log p(codes)", f"{prior} prior over {grid}")
    add("neg_elbo_bpd", bits_per_dim(neg_elbo, pixels), METRICS.get("neg_elbo_bpd").label, f"{pixels} dims")
    metrics.update(per_image.measurements())
    frequencies = counts / counts.sum()
    entropy = -(frequencies[frequencies > 0] * frequencies[frequencies > 0].log()).sum()
    usage, perplexity = METRICS.get("codebook_usage"), METRICS.get("perplexity")
    metrics["codebook_usage"] = Measurement(
        value=float((counts > 0).double().mean()), unit=f"of {model.codebook_size}", label=usage.label,
        protocol=f"fraction of codes used over {n:,} images x {math.prod(model.grid)} positions")
    digits = getattr(model.quantizer, "digits", None)
    if digits is not None:  # the path's digits: which code each level used
        used = digits(torch.nonzero(counts).flatten().to(device)).cpu()  # (paths used, depth)
        levels = model.quantizer.levels
        per_level = [used[:, level].unique().numel() / levels for level in range(used.shape[1])]
        metrics["level_usage"] = Measurement(
            value=min(per_level), unit=f"of {levels} per level", label=METRICS.get("level_usage").label,
            protocol=f"codes used per level over {n:,} images x {math.prod(model.grid)} positions: "
                     + ", ".join(f"{fraction:.0%}" for fraction in per_level))
    metrics["perplexity"] = Measurement(value=float(entropy.exp()), unit=f"of {model.codebook_size}",
                                        label=perplexity.label, protocol=perplexity.description)
    protocol = {
        "model": model_name, **evaluation.protocol, "family": model.family,
        "likelihood": model.config.likelihood.name, "prior": f"{prior} over {grid}",
        "latent_levels": {"codes": math.prod(model.grid)}, "latent_dim": math.prod(model.grid), "pixels": pixels,
        "quantizer": model.config.quantizer.name, "codebook_size": model.codebook_size,
        "grid": list(model.grid), "elbo_samples": 1, "iw_samples": 0, "refine_steps": 0, "seed": 0,
        "units": "nats per image (sum over pixels), mean over examples; bits/dim = nats / (pixels * ln 2); the "
                 "posterior is deterministic, so the ELBO equals the importance-weighted bound for every k",
    }
    timing = {"seconds": seconds, "examples_per_s": n / seconds if seconds > 0 else 0.0, "device": str(device)}
    return EvalReport(protocol=protocol, metrics=metrics, timing=timing)
