"""Nested dropout latents (Cui, Chen & Li 2021, "Variational nested dropout"): a code keeps its first
``reserved + k`` dimensions and is 0 beyond, the cut k drawn from a "downhill" categorical over
0..M (M = D - reserved) in which each further dimension is kept with its own probability beta_j:

    q(k) = beta_1 ... beta_k (1 - beta_{k+1}),   q(M) = beta_1 ... beta_M

and the prior p(k) is the same with every beta_j at one constant (the reference's 0.95). Given the
cut, the kept dimensions are Gaussian: q(z_d|x) = N(mu_d, sigma_d^2) against p(z_d) = N(0, 1); the
dropped ones are exactly 0 under both, so they add nothing to either density. So

    log q(z, k|x) = log q(k) + sum_{d kept} log N(z_d; mu_d, sigma_d^2)

and the ELBO's KL is KL(q(k) || p(k)) + sum_d P_q(d kept) KL(N(mu_d, sigma_d^2) || N(0, 1)), both in
closed form (the second is the expectation over the cut of the kept dimensions' KL).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .categorical import CategoricalPosterior
from .gaussian import DiagonalGaussian, gaussian_log_prob, kl_to_standard_normal, standard_normal_log_prob

__all__ = ["downhill_log_probs", "kept_dimensions", "CutPrior", "NestedGaussian", "NestedNormal"]


def downhill_log_probs(keep_logits: torch.Tensor) -> torch.Tensor:
    """log q(k) for k = 0..M, (..., M + 1), from the M logits of "keep the next dimension"."""
    log_keep, log_drop = F.logsigmoid(keep_logits), F.logsigmoid(-keep_logits)
    zero = torch.zeros_like(keep_logits[..., :1])
    return torch.cat([zero, log_keep.cumsum(-1)], dim=-1) + torch.cat([log_drop, zero], dim=-1)


def kept_dimensions(cut: torch.Tensor, reserved: int) -> torch.Tensor:
    """Which of the D = reserved + M dimensions a cut keeps, (..., D), from ``cut`` (..., M + 1): a
    one-hot cut gives its 0/1 mask (with a straight-through gradient where the one-hot has one),
    the cut's probabilities give each dimension's probability of being kept. Dimension reserved + j
    is kept when k > j."""
    at_least = cut.flip(-1).cumsum(-1).flip(-1)  # (..., M + 1): P(k >= j), or [k >= j]
    return torch.cat([torch.ones_like(cut[..., :1]).expand(*cut.shape[:-1], reserved), at_least[..., 1:]], dim=-1)


class CutPrior:
    """p(k): the downhill categorical with every dimension kept with probability ``keep``."""

    def __init__(self, cuts: int, keep: float):
        # float64, cast to each caller's dtype: a float64 model's KL keeps its precision
        self.log_probs = downhill_log_probs(torch.full((cuts - 1,), math.log(keep) - math.log1p(-keep),
                                                       dtype=torch.float64))

    def _on(self, like: torch.Tensor) -> torch.Tensor:
        return self.log_probs.to(device=like.device, dtype=like.dtype)

    def log_prob(self, cut: torch.Tensor) -> torch.Tensor:
        return (cut * self._on(cut)).sum(-1)

    def kl(self, posterior: CategoricalPosterior, cut: torch.Tensor) -> torch.Tensor:
        """KL(q(k) || p(k)) in closed form, whatever the draw: shape cut.shape[:-1]."""
        log_q = posterior.log_probs.flatten(-2)
        return (log_q.exp() * (log_q - self._on(log_q))).sum(-1).expand(cut.shape[:-1])

    def kl_per_dim(self, posterior: CategoricalPosterior, cut: torch.Tensor) -> None:
        return None  # free bits clamp the level's whole KL

    def sample(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        cuts = torch.multinomial(self.log_probs.exp().to(device), n, replacement=True)
        return F.one_hot(cuts, self.log_probs.numel()).to(dtype)


class NestedGaussian:
    """q(z|x, k) on the kept dimensions of a draw: the Gaussian ``gaussian`` (mu, logvar), ``kept``
    the draw's 0/1 mask (S, B, D), ``kept_probability`` each dimension's P_q(kept), (B, D)."""

    def __init__(self, gaussian: DiagonalGaussian, kept: torch.Tensor, kept_probability: torch.Tensor):
        self.gaussian, self.kept, self.kept_probability = gaussian, kept, kept_probability

    @property
    def mu(self) -> torch.Tensor:
        return self.gaussian.mu

    @property
    def logvar(self) -> torch.Tensor:
        return self.gaussian.logvar

    @property
    def mean(self) -> torch.Tensor:
        """E_q[z] = mu_d P_q(d kept)."""
        return self.gaussian.mu * self.kept_probability

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return (self.kept * gaussian_log_prob(z, self.gaussian.mu, self.gaussian.logvar)).sum(-1)


class NestedNormal:
    """p(z|k) = N(0, 1) on the kept dimensions of a draw (``kept``, (S, B, D)), 0 elsewhere."""

    def __init__(self, kept: torch.Tensor):
        self.kept = kept

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return (self.kept * standard_normal_log_prob(z)).sum(-1)

    def kl_per_dim(self, posterior: NestedGaussian, z: torch.Tensor) -> torch.Tensor:
        """P_q(d kept) KL(N(mu_d, sigma_d^2) || N(0, 1)), (S, B, D): the expectation over the cut."""
        kl = kl_to_standard_normal(posterior.mu, posterior.logvar)
        return (posterior.kept_probability * kl).expand(z.shape)

    def kl(self, posterior: NestedGaussian, z: torch.Tensor) -> torch.Tensor:
        return self.kl_per_dim(posterior, z).sum(-1)
