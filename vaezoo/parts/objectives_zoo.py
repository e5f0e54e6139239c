"""More training objectives: the IWAE bound (``iwae``) and beta-TCVAE (``beta-tcvae``).

The beta-ELBO and free bits are arguments of ``elbo`` (:mod:`vaezoo.parts.objectives`).
"""

from __future__ import annotations

import math

import torch
from pydantic import NonNegativeFloat, PositiveInt

from ..distributions import DiagonalGaussian
from ..output import VAEOutput
from .objectives import Objective
from .registry import register_objective

__all__ = ["IWAEObjective", "BetaTCVAE", "tc_decomposition"]

_LOG_2PI = math.log(2 * math.pi)


@register_objective("iwae")
class IWAEObjective(Objective):
    """The importance-weighted bound as the training loss (Burda, Grosse & Salakhutdinov 2016,
    "Importance weighted autoencoders"):

        loss = -mean_b logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],  z_k ~ q(z|x)

    with ``k`` reparameterized samples per example. At k = 1 it is the single-sample Monte
    Carlo ELBO; it tightens towards log p(x) as k grows. KL warm-up (``kl_scale``) scales
    ``log p(z_k) - log q(z_k|x)`` inside the weights. For logging, ``recon`` and ``kl`` are
    the means over the k samples of ``-log p(x|z_k)`` and ``log q(z_k|x) - log p(z_k)``, and
    ``elbo`` is their k-sample ELBO per example (so the IWAE bound is ``-loss``, at least as
    large); ``z`` and ``likelihood`` are those of the first sample, shaped as for ``elbo``.
    """

    def __init__(self, k: PositiveInt = 5):
        super().__init__()
        self.k = k

    def forward(self, model, x: torch.Tensor, kl_scale: float = 1.0) -> VAEOutput:
        posterior = model.encode(x)
        z = posterior.rsample((self.k,))  # (k, B, d)
        # decode once for all k samples; keep the decoder output to also give sample 0's p(x|z)
        out = model.decoder(z.reshape(-1, model.latent_dim))
        out = out.reshape(*z.shape[:-1], *out.shape[1:])
        log_px = model.likelihood(out).log_prob(x)  # (k, B)
        kl = posterior.log_prob(z) - model.prior.log_prob(z)  # (k, B), Monte Carlo per sample
        log_w = log_px - kl_scale * kl
        bound = torch.logsumexp(log_w, dim=0) - math.log(self.k)
        return VAEOutput(
            loss=-bound.mean(), recon=-log_px.mean(), kl=kl.mean(), elbo=(log_px - kl).mean(dim=0),
            z=z[0], posterior=posterior, likelihood=model.likelihood(out[0]),
        )


def tc_decomposition(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, log_pz_per_dim: torch.Tensor, dataset_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example (index-code MI, total correlation, dimension-wise KL), each of shape (B,).

    ``z``: one sample per example from q(z|x_i), (B, d); ``mu``/``logvar``: the posteriors of
    the batch; ``log_pz_per_dim``: log p(z_ij), (B, d). The aggregate posterior is estimated
    by minibatch-weighted sampling (Chen et al. 2018, eq. S5):
    ``log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(N B)``, and likewise per dimension.
    The three terms sum to ``log q(z_i|x_i) - log p(z_i)``, the Monte Carlo KL, exactly.
    """
    batch = z.shape[0]
    # log q(z_i,d | x_j) for every pair (i, j) and dimension d: (B, B, d)
    diff = z.unsqueeze(1) - mu.unsqueeze(0)
    log_q_pairs = -0.5 * (diff.pow(2) * torch.exp(-logvar.unsqueeze(0)) + logvar.unsqueeze(0) + _LOG_2PI)
    log_norm = math.log(dataset_size * batch)
    log_qz_given_x = torch.diagonal(log_q_pairs, dim1=0, dim2=1).sum(0)  # log q(z_i | x_i)
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

    with q(z) and q(z_j) estimated on the minibatch by minibatch-weighted sampling, which
    needs the size N of the training set (``dataset_size``). With alpha = beta = gamma = 1
    the loss is the single-sample Monte Carlo negative ELBO. ``kl`` and ``elbo`` report the
    true (Monte Carlo) KL. Needs a diagonal Gaussian posterior and a prior that factorizes
    over dimensions (``normal``).
    """

    def __init__(
        self, dataset_size: PositiveInt, alpha: NonNegativeFloat = 1.0, beta: NonNegativeFloat = 6.0,
        gamma: NonNegativeFloat = 1.0,
    ):
        super().__init__()
        self.dataset_size = dataset_size
        self.alpha, self.beta, self.gamma = alpha, beta, gamma

    def forward(self, model, x: torch.Tensor, kl_scale: float = 1.0) -> VAEOutput:
        posterior = model.encode(x)
        if not isinstance(posterior, DiagonalGaussian):
            raise TypeError("beta-tcvae needs a diagonal Gaussian posterior (vaezoo.distributions.DiagonalGaussian)")
        z = posterior.rsample()
        likelihood = model.decode(z)
        log_px = likelihood.log_prob(x)
        per_dim = getattr(model.prior, "log_prob_per_dim", None)
        log_pz_per_dim = per_dim(z) if per_dim is not None else None
        if log_pz_per_dim is None:
            raise ValueError(
                f"beta-tcvae needs a prior that factorizes over latent dimensions (normal); "
                f"'{model.config.prior.name}' does not"
            )
        mi, tc, dwkl = tc_decomposition(z, posterior.mu, posterior.logvar, log_pz_per_dim, self.dataset_size)
        kl = mi + tc + dwkl
        weighted = self.alpha * mi + self.beta * tc + self.gamma * dwkl
        recon = -log_px.mean()
        return VAEOutput(
            loss=recon + kl_scale * weighted.mean(), recon=recon, kl=kl.mean(), elbo=log_px - kl, z=z,
            posterior=posterior, likelihood=likelihood,
        )
