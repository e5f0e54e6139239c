"""``vaezoo.evaluate``: the standard test-set numbers of a VAE, with their protocol."""

from __future__ import annotations

import time
from typing import Callable, Optional

import torch

from ..parts.priors import StandardNormalPrior
from .data import DataSource, resolve_data
from .metrics import (
    ACTIVE_UNIT_THRESHOLD, active_units, bits_per_dim, elbo_terms, iwae_bound, kl_per_dimension, num_pixels,
)
from .noise import ELBO_STREAM, IWAE_STREAM, NoiseSource
from .refine import DEFAULT_REFINE_LR, refine
from .report import EvalReport, Metric

__all__ = ["evaluate", "DECODES_PER_CALL", "default_chunk_size"]

DECODES_PER_CALL = 2048  # default bound on batch x importance samples decoded at once
# Conv decoders on a CPU run faster on smaller passes, whose feature maps stay in cache:
# chunk x batch = 128 was 1.35x (fashion-conv64) and 1.5x (fashion-resnet32) faster than 2048
# at k = 5000 (benchmarks/iwae_nll.py --sweep-chunks), while MLPs were faster on large passes.
CPU_CONV_DECODES_PER_CALL = 128


def default_chunk_size(model, device: torch.device, batch_size: int) -> int:
    """Importance samples decoded per image at once when the caller gives none."""
    per_call = CPU_CONV_DECODES_PER_CALL if device.type == "cpu" and model.has_convolutions() else DECODES_PER_CALL
    return max(1, per_call // batch_size)


def _mean_se(values: torch.Tensor) -> tuple[float, Optional[float]]:
    n = values.numel()
    mean = float(values.mean())
    return mean, (float(values.std() / n**0.5) if n > 1 else None)


def evaluate(
    model,
    data: DataSource,
    *,
    iw_samples: int = 5000,
    elbo_samples: int = 10,
    batch_size: int = 64,
    chunk_size: int | None = None,
    refine_steps: int = 0,
    refine_lr: float = DEFAULT_REFINE_LR,
    seed: int = 0,
    limit: int | None = None,
    binarize: str | None = None,
    root: str | None = None,
    model_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Evaluate ``model`` on ``data`` (an image tensor, or a DataConfig / dataset name -> its test split).

    Reports, as means over examples with standard errors: -ELBO with ``elbo_samples`` draws
    (and its reconstruction and KL terms), the importance-weighted NLL with ``iw_samples``
    (0 to skip), both in bits/dim too, and the active units. With ``refine_steps > 0`` each
    example's posterior is refined (see :func:`vaezoo.evaluation.refine`): the report adds
    the refined -ELBO and the amortization gap, and the refined posterior becomes the
    importance-sampling proposal, which tightens the NLL estimate.

    Results depend on ``seed`` only, not on ``batch_size`` or ``chunk_size`` (importance
    samples decoded per example at once; default keeps batch x chunk <= 2048, or 128 for conv
    decoders on a CPU).
    """
    if elbo_samples < 1:
        raise ValueError(f"elbo_samples must be at least 1, got {elbo_samples}")
    if iw_samples < 0 or refine_steps < 0 or batch_size < 1:
        raise ValueError("iw_samples and refine_steps must be >= 0 and batch_size >= 1")
    evaluation = resolve_data(data, binarize=binarize, limit=limit, root=root)
    images = evaluation.images
    if tuple(images.shape[1:]) != tuple(model.input_shape):
        raise ValueError(
            f"the model takes images of shape {list(model.input_shape)} but the data has {list(images.shape[1:])}"
        )
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    chunk = chunk_size or default_chunk_size(model, device, batch_size)
    closed_form_kl = isinstance(model.prior, StandardNormalPrior)
    n = images.shape[0]

    columns: dict[str, list[torch.Tensor]] = {k: [] for k in ("log_px", "kl", "log_px_r", "kl_r", "iwae")}
    means, kl_dims = [], []
    was_training = model.training
    model.eval()
    layout = torch.channels_last if model.prefers_channels_last(device) else torch.contiguous_format
    model.to(memory_format=layout)
    start_time = time.perf_counter()
    try:
        for start in range(0, n, batch_size):
            x = images[start: start + batch_size].to(device=device, dtype=dtype, memory_format=layout)
            indices = range(start, start + x.shape[0])
            with torch.no_grad():
                posterior = model.encode(x)
                means.append(posterior.mu.double().cpu())
                if closed_form_kl:
                    kl_dims.append(kl_per_dimension(posterior).double().sum(dim=0).cpu())
                eps = NoiseSource(seed, ELBO_STREAM, indices, posterior.mu.shape[1:], device, dtype).draw(0, elbo_samples)
                log_px, kl = elbo_terms(model, x, posterior, eps)
            columns["log_px"].append(log_px.double().cpu())
            columns["kl"].append(kl.double().cpu())
            proposal = posterior
            if refine_steps:
                proposal = refine(model, x, refine_steps, refine_lr, init=posterior, seed=seed, indices=indices)
                with torch.no_grad():  # the same noise as the amortized ELBO: a paired comparison
                    log_px_r, kl_r = elbo_terms(model, x, proposal, eps)
                columns["log_px_r"].append(log_px_r.double().cpu())
                columns["kl_r"].append(kl_r.double().cpu())
            if iw_samples:
                with torch.no_grad():
                    noise = NoiseSource(seed, IWAE_STREAM, indices, posterior.mu.shape[1:], device, dtype)
                    columns["iwae"].append(iwae_bound(model, x, proposal, noise, iw_samples, chunk).cpu())
            if progress is not None:
                progress(min(n, start + batch_size), n)
    finally:
        model.train(was_training)
        model.to(memory_format=torch.contiguous_format)
    seconds = time.perf_counter() - start_time

    pixels = num_pixels(model.input_shape)
    col = {k: torch.cat(v) for k, v in columns.items() if v}
    metrics: dict[str, Metric] = {}

    def add(name, values, unit, label, protocol=""):
        value, se = _mean_se(values)
        metrics[name] = Metric(value=value, unit=unit, label=label, stderr=se, protocol=protocol)

    neg_elbo = -(col["log_px"] - col["kl"])
    kl_note = "closed form" if closed_form_kl else f"Monte Carlo, S={elbo_samples}"
    add("neg_elbo", neg_elbo, "nats", "-ELBO", f"S={elbo_samples}")
    add("recon", -col["log_px"], "nats", "  reconstruction -E_q log p(x|z)", f"S={elbo_samples}")
    add("kl", col["kl"], "nats", "  KL(q(z|x) || p(z))", kl_note)
    add("neg_elbo_bpd", bits_per_dim(neg_elbo, pixels), "bits/dim", "-ELBO bits/dim", f"S={elbo_samples}, {pixels} dims")
    if refine_steps:
        neg_elbo_r = -(col["log_px_r"] - col["kl_r"])
        refined = f"{refine_steps} Adam steps, lr {refine_lr:g}"
        add("neg_elbo_refined", neg_elbo_r, "nats", "-ELBO, refined posterior", f"S={elbo_samples}, {refined}")
        add("amortization_gap", neg_elbo - neg_elbo_r, "nats", "amortization gap", "ELBO refined - ELBO encoder")
    if iw_samples:
        proposal_note = "refined q" if refine_steps else "encoder q"
        nll = -col["iwae"]
        add("iwae_nll", nll, "nats", "NLL (importance weighted)", f"k={iw_samples}, proposal {proposal_note}")
        add("nll_bpd", bits_per_dim(nll, pixels), "bits/dim", "NLL bits/dim", f"k={iw_samples}, {pixels} dims")
        if refine_steps:
            add("approximation_gap", neg_elbo_r - nll, "nats", "approximation gap",
                f"-ELBO refined - NLL (k={iw_samples})")
    mu = torch.cat(means)
    kl_per_dim = (torch.stack(kl_dims).sum(dim=0) / n).tolist() if kl_dims else None
    if n >= 2:
        count, _ = active_units(mu)
        metrics["active_units"] = Metric(
            value=count, unit=f"of {model.latent_dim}", label="active units",
            protocol=f"Cov_x(E_q[z_j]) > {ACTIVE_UNIT_THRESHOLD}",
        )
    protocol = {
        "model": model_name,
        **{k: v for k, v in evaluation.protocol.items()},
        "likelihood": _part_label(model.config.likelihood),
        "prior": _part_label(model.config.prior),
        "latent_dim": model.latent_dim,
        "pixels": pixels,
        "elbo_samples": elbo_samples,
        "iw_samples": iw_samples,
        "refine_steps": refine_steps,
        "refine_lr": refine_lr if refine_steps else None,
        "seed": seed,
        "units": "nats per image (sum over pixels), mean over examples; bits/dim = nats / (pixels * ln 2)",
    }
    timing = {"seconds": seconds, "examples_per_s": n / seconds if seconds > 0 else 0.0, "device": str(device)}
    return EvalReport(protocol=protocol, metrics=metrics, kl_per_dim=kl_per_dim, timing=timing)


def _part_label(spec) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
    return f"{spec.name}({params})" if params else spec.name
