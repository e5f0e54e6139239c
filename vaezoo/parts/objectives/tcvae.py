"""beta-TCVAE (``beta-tcvae``): the KL split into mutual information, total correlation and
dimension-wise KL, each with its own weight."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from pydantic import NonNegativeFloat, PositiveInt

from ...errors import UsageError
from ...ops.gaussian import DiagonalGaussian, gaussian_log_prob
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["BetaTCVAE", "tc_decomposition"]


def tc_decomposition(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, log_pz_per_dim: torch.Tensor, dataset_size: int,
    gather_batch: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example (index-code MI, total correlation, dimension-wise KL), each of shape (B,).

    ``z``: one sample per example from q(z|x_i), (B, d); ``mu``/``logvar``: the posteriors of
    the batch; ``log_pz_per_dim``: log p(z_ij), (B, d). The aggregate posterior is estimated
    by minibatch-weighted sampling (Chen et al. 2018, eq. S5) over the M posteriors of the batch:
    ``log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(N M)``, and likewise per dimension.
    ``gather_batch`` (under DDP) makes the M posteriors those of the global batch, not of this
    process's part, so that the estimate is the single-process one.
    The three terms sum to ``log q(z_i|x_i) - log p(z_i)``, the Monte Carlo KL, exactly.
    """
    log_qz_given_x = gaussian_log_prob(z, mu, logvar).sum(-1)  # log q(z_i | x_i)
    if gather_batch is not None:
        mu, logvar = gather_batch(mu), gather_batch(logvar)
    # log q(z_i,d | x_j) for every pair (i, j) and dimension d: (B, M, d)
    log_q_pairs = gaussian_log_prob(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    log_norm = math.log(dataset_size * mu.shape[0])
    log_qz = torch.logsumexp(log_q_pairs.sum(-1), dim=1) - log_norm
    log_qz_product = (torch.logsumexp(log_q_pairs, dim=1) - log_norm).sum(-1)
    log_pz = log_pz_per_dim.sum(-1)
    return log_qz_given_x - log_qz, log_qz - log_qz_product, log_qz_product - log_pz


@register_objective("beta-tcvae")
class BetaTCVAE(Objective):
    """beta-TCVAE (Chen, Li, Grosse & Duvenaud 2018, "Isolating sources of disentanglement in
    VAEs"). The KL splits into index-code mutual information, total correlation and
    dimension-wise KL,

        KL = [log q(z|x) - log q(z)] + [log q(z) - prod_j q(z_j)] + [sum_j log q(z_j) - log p(z_j)]

        loss = E_q[-log p(x|z)] + alpha * MI + beta * TC + gamma * DWKL

    with q(z) and q(z_j) estimated on the minibatch by minibatch-weighted sampling (the global
    batch under DDP, gathered over the processes; a micro-batch when ``micro_batch_size`` is set), which
    needs the size N of the training set: ``dataset_size`` if given, else the training loop's
    (``context.dataset_size``), so a config does not have to repeat its dataset's size. With alpha = beta = gamma = 1
    the loss is the single-sample Monte Carlo negative ELBO. ``kl`` and ``elbo`` report the
    true (Monte Carlo) KL. Needs a diagonal Gaussian posterior and a prior that factorizes
    over dimensions (``normal``).
    """

    def __init__(
        self, dataset_size: Optional[PositiveInt] = None, alpha: NonNegativeFloat = 1.0,
        beta: NonNegativeFloat = 6.0, gamma: NonNegativeFloat = 1.0,
    ):
        super().__init__()
        self.dataset_size = dataset_size
        self.alpha, self.beta, self.gamma = alpha, beta, gamma

    batch_statistics = True

    def noise(self, model, x: torch.Tensor) -> torch.Tensor:
        """The reparameterization noise of the one draw (a subclass may fix it)."""
        return model.draw_noise(x, 1)

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, self.noise(model, x), y)
        if len(draw.levels) != 1:
            raise UsageError(f"beta-tcvae needs one diagonal Gaussian latent level; the "
                             f"'{model.config.family}' family has {len(draw.levels)}")
        if not isinstance(draw.levels[0].q, DiagonalGaussian):
            raise UsageError(f"beta-tcvae needs a diagonal Gaussian posterior (its q(z) estimate evaluates q(z|x_j) "
                             f"at other images' z); this model's is {type(draw.levels[0].q).__name__}")
        level = draw.levels[0]
        z, posterior = level.z[0], level.q
        per_dim = getattr(level.p, "log_prob_per_dim", None)
        log_pz_per_dim = per_dim(z) if per_dim is not None else None
        if log_pz_per_dim is None:
            raise UsageError("beta-tcvae needs a prior that factorizes over latent dimensions (normal)")
        dataset_size = self.dataset_size or context.dataset_size
        if dataset_size is None:
            raise UsageError("beta-tcvae needs the training set's size: train it with vaezoo's loop, or give "
                             "model.objective.dataset_size")
        log_px = draw.log_px[0]
        mi, tc, dwkl = tc_decomposition(z, posterior.mu, posterior.logvar, log_pz_per_dim, dataset_size,
                                        context.gather_batch)
        kl = mi + tc + dwkl
        weighted = self.alpha * mi + self.beta * tc + self.gamma * dwkl
        recon = -log_px.mean()
        return ModelOutput(
            loss=recon + context.kl_scale * weighted.mean(), elbo=log_px - kl, z=z, posterior=posterior,
            terms={"recon": recon, "kl": kl.mean(), "mi": mi.mean(), "tc": tc.mean(), "dwkl": dwkl.mean()},
            likelihood=draw.likelihood,
        )
