"""A Gaussian mixture fitted on a trained model's aggregate posterior, as its new prior.

Sampling from such a prior typically improves sample quality over N(0, I) (the "ex-post density
estimation" of Ghosh et al. 2020, used by pythae's benchmark).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from ..errors import UsageError
from ..schemas import PriorSpec
from .codes import iterate_images

__all__ = ["fit_prior", "fit_gaussian_mixture"]


def _kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: well-spread initial means, so EM does not start two on one cluster."""
    n = x.shape[0]
    centers = [x[torch.randint(n, (1,), generator=generator).item()]]
    dist2 = (x - centers[0]).pow(2).sum(-1)
    for _ in range(1, k):
        total = dist2.sum()
        if total <= 0:  # fewer distinct points than components
            index = torch.randint(n, (1,), generator=generator).item()
        else:
            index = torch.multinomial(dist2 / total, 1, generator=generator).item()
        centers.append(x[index])
        dist2 = torch.minimum(dist2, (x - x[index]).pow(2).sum(-1))
    return torch.stack(centers)


def _diagonal_log_normal(x: torch.Tensor, x_squared: torch.Tensor, means: torch.Tensor,
                         variances: torch.Tensor) -> torch.Tensor:
    """(N, K) log N(x_n; m_k, diag v_k), expanded into two matrix products (no (N, K, D) temporary):
    -1/2 [sum_d log(2 pi v) + x^2 . (1/v) - 2 x . (m/v) + m^2 . (1/v)]."""
    precision = variances.reciprocal()
    constant = (variances.log() + math.log(2 * math.pi)).sum(-1) + (means.pow(2) * precision).sum(-1)
    return -0.5 * (x_squared @ precision.T - 2.0 * x @ (means * precision).T + constant)


@torch.no_grad()
def fit_gaussian_mixture(
    x: torch.Tensor, components: int, iterations: int = 50, seed: int = 0, reg_var: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Diagonal-covariance Gaussian mixture fitted by EM; returns (weights, means, variances).

    k-means++ initialization from ``seed`` (its own generator, so the result is deterministic
    and the global RNG untouched); ``reg_var`` is added to every variance (sklearn's
    ``reg_covar``). Runs in float64 on x's device.
    """
    x = x.detach().to(torch.float64)
    n, d = x.shape
    if n < components:
        raise ValueError(f"cannot fit {components} components on {n} points")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    means = _kmeans_plus_plus(x.cpu(), components, generator).to(x.device)
    variances = x.var(dim=0, unbiased=False).clamp_min(reg_var).expand(components, d).clone()
    log_weights = torch.full((components,), -math.log(components), dtype=x.dtype, device=x.device)
    x_squared = x.pow(2)
    for _ in range(iterations):
        # E step: responsibilities r_nk proportional to w_k N(x_n; m_k, v_k)
        log_normal = _diagonal_log_normal(x, x_squared, means, variances)
        log_resp = torch.log_softmax(log_normal + log_weights, dim=1)
        resp = log_resp.exp()
        # M step
        counts = resp.sum(0) + 1e-12
        means = resp.T @ x / counts[:, None]
        variances = (resp.T @ x_squared / counts[:, None] - means.pow(2)).clamp_min(0) + reg_var
        log_weights = torch.log(counts / n)
    return log_weights.exp(), means, variances


@torch.no_grad()
def fit_prior(
    model: nn.Module,
    images,
    components: int = 10,
    iterations: int = 50,
    seed: int = 0,
    learnable: bool = False,
    batch_size: int = 512,
    progress: Optional[Callable[[int, int], None]] = None,
) -> nn.Module:
    """Replace ``model.prior`` by a ``mog`` prior fitted on the aggregate posterior.

    The posterior means of ``images`` (a tensor (N, C, H, W) in [0, 1], uint8 accepted, or
    an iterable of batches) are encoded in eval mode, a diagonal Gaussian mixture with
    ``components`` is fitted by EM (:func:`fit_gaussian_mixture`, deterministic for
    ``seed``), and ``model.config.prior`` becomes ``{name: mog, components: K, learnable: ...}``
    so that ``save_pretrained`` then ``vaezoo.load`` rebuilds it; the fitted values live in
    the state dict. Sampling from such a prior typically improves sample quality over N(0, I)
    (the "ex-post density estimation" of Ghosh et al. 2020, used by pythae's benchmark).
    ``progress(done, total)`` follows the encoding of a tensor of images. Returns the model.
    """
    if "prior" not in type(model.config).model_fields or not hasattr(model, "encode_top"):
        raise UsageError(f"fit_prior replaces the prior of a model's top latent level; the "
                         f"'{model.config.family}' family has no such prior to replace")
    was_training = model.training
    model.eval()
    reference = next(model.parameters())
    device = reference.device
    means = []
    for batch in iterate_images(images):
        for chunk in batch.split(batch_size):
            chunk = chunk.to(device)
            scale = 1.0 if chunk.is_floating_point() else 1.0 / 255.0  # uint8 pixels -> [0, 1]
            chunk = chunk.to(reference.dtype) * scale
            means.append(model.encode_top(chunk).mean.float())
            if progress is not None and isinstance(images, torch.Tensor):
                progress(sum(part.shape[0] for part in means), images.shape[0])
    model.train(was_training)
    latents = torch.cat(means)
    weights, mix_means, variances = fit_gaussian_mixture(latents, components, iterations=iterations, seed=seed)

    spec = PriorSpec(name="mog", components=components, learnable=learnable)
    prior = spec.build(model.prior.latent_dim)
    prior.means.data.copy_(mix_means.float())
    prior.logvars.data.copy_(variances.log().float())
    prior.logits.data.copy_(weights.log().float())
    model.prior = prior.to(device=device, dtype=reference.dtype)
    # a copy, so an ExperimentConfig sharing the old ModelConfig object is left as it was
    model.config = model.config.model_copy(update={"prior": spec})
    model.bind_prior()
    return model
