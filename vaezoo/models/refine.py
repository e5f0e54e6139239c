"""Non-amortized inference: refine each example's Gaussian posterior by gradient ascent.

The seed notes' stochastic variational inference keeps one set of variational parameters
phi_i = (mu_i, logvar_i) per example and climbs that example's ELBO. vaezoo starts phi_i at
the encoder's output and takes ``steps`` Adam steps with the decoder and prior frozen. The
whole batch is optimized at once: the objective is the sum of the examples' ELBOs, so each
example's gradient is its own, and Adam's update is elementwise, so the batch run is exactly
B independent optimizations.

The ELBO gained this way estimates the amortization gap (Cremer, Li & Duvenaud 2018):
ELBO[q*] - ELBO[q_encoder], where q* is the best diagonal Gaussian for that example.
"""

from __future__ import annotations

import math

import torch

from ..errors import UsageError
from ..ops.gaussian import DiagonalGaussian
from ..ops.noise import REFINE_STREAM, NoiseSource
from .bounds import elbo_terms

__all__ = ["refine", "DEFAULT_REFINE_LR"]

DEFAULT_REFINE_LR = 0.05
_LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite if a step overshoots


def refine(
    model,
    x: torch.Tensor,
    steps: int = 100,
    lr: float = DEFAULT_REFINE_LR,
    *,
    samples: int = 1,
    init: DiagonalGaussian | None = None,
    seed: int = 0,
    indices=None,
    y: torch.Tensor | None = None,
) -> DiagonalGaussian:
    """Per-example posteriors q_i = N(mu_i, exp(logvar_i)) that maximize each example's ELBO.

    ``init`` defaults to the encoder's q(z|x). Each step draws ``samples`` reparameterized
    z per example (noise keyed by ``seed`` and ``indices``, default the positions in ``x``)
    and the learning rate follows a cosine decay from ``lr`` to zero, so the last iterates
    average out the gradient noise instead of jittering around the optimum. The model's
    parameters receive no gradient and are not changed.
    """
    if steps < 0:
        raise UsageError(f"steps must be >= 0, got {steps}")
    if len(model.latent_levels) != 1:
        raise UsageError(f"refinement optimizes one Gaussian posterior per example; the '{model.family}' family "
                         f"has {len(model.latent_levels)} latent levels, whose posteriors depend on the draws of "
                         f"the levels above, so it is not supported there")
    if init is None:
        with torch.no_grad():
            init = model.encode(x, y) if model.conditional else model.encode(x)
    if not isinstance(init, DiagonalGaussian):
        raise UsageError(f"refinement optimizes one diagonal Gaussian posterior per example; this model's posterior is "
                         f"{type(init).__name__} (model.posterior: a flow), whose amortization gap it would not measure")
    mu = init.mu.detach().clone().requires_grad_(True)
    logvar = init.logvar.detach().clone().requires_grad_(True)
    if steps == 0:
        return DiagonalGaussian(mu.detach(), logvar.detach())
    indices = range(x.shape[0]) if indices is None else indices
    noise = NoiseSource(seed, REFINE_STREAM, indices, mu.shape[1:], mu.device, mu.dtype)
    optimizer = torch.optim.Adam([mu, logvar], lr=lr)
    with torch.enable_grad():
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
            posterior = DiagonalGaussian(mu, logvar.clamp(*_LOGVAR_RANGE))
            log_px, kls = elbo_terms(model, x, noise.draw(step * samples, (step + 1) * samples), y,
                                     posterior=posterior)
            # Gradients w.r.t. (mu, logvar) only: the decoder's weights stay frozen and untouched.
            mu.grad, logvar.grad = torch.autograd.grad(-(log_px - sum(kls.values())).sum(), [mu, logvar])
            optimizer.step()
    return DiagonalGaussian(mu.detach(), logvar.detach().clamp(*_LOGVAR_RANGE))
