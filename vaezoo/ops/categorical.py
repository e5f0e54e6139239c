"""Categorical latents: the posterior over N variables of K categories, its Gumbel-softmax
relaxation, and the uniform prior with its closed-form KL.

A latent value is N one-hot vectors, flattened to (..., N * K). Noise arrives as standard
normal numbers (the zoo's noise streams are Gaussian) and becomes Gumbel noise through the
normal CDF: Phi(eps) is uniform on (0, 1), and -log(-log u) is Gumbel(0, 1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["CategoricalPosterior", "UniformCategorical", "gumbel_from_normal"]


def gumbel_from_normal(eps: torch.Tensor) -> torch.Tensor:
    """Gumbel(0, 1) numbers from standard normal ones, elementwise."""
    u = torch.special.ndtr(eps.float()).clamp(1e-10, 1 - 1e-7)
    return (-torch.log(-torch.log(u))).to(eps.dtype)


class CategoricalPosterior:
    """q(z|x): N independent categoricals over K categories, from ``logits`` of shape (B, N, K)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.log_probs = F.log_softmax(logits.float(), dim=-1).to(logits.dtype)

    @property
    def variables(self) -> int:
        return self.logits.shape[-2]

    @property
    def categories(self) -> int:
        return self.logits.shape[-1]

    @property
    def mean(self) -> torch.Tensor:
        """E_q[z]: the category probabilities, flattened to (B, N * K)."""
        return self.log_probs.exp().flatten(-2)

    def draw(self, eps: torch.Tensor, temperature: float | torch.Tensor | None, hard: bool = False) -> torch.Tensor:
        """z of shape (S, B, N * K) from ``eps`` (S, B, N * K). ``temperature`` None: exact one-hot
        draws (the discrete model); else the Gumbel-softmax relaxation at that temperature (Jang et
        al. 2017; Maddison et al. 2017), ``hard``: one-hot forward, relaxed gradient (straight-through)."""
        shape = (*eps.shape[:-1], self.variables, self.categories)
        scores = self.logits + gumbel_from_normal(eps).reshape(shape)
        one_hot = F.one_hot(scores.argmax(-1), self.categories).to(scores.dtype)
        if temperature is None:
            return one_hot.flatten(-2)
        relaxed = F.softmax(scores / temperature, dim=-1)
        return (relaxed + (one_hot - relaxed).detach() if hard else relaxed).flatten(-2)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) of one-hot z (..., N * K), summed over the N variables: shape z.shape[:-1]."""
        z = z.reshape(*z.shape[:-1], self.variables, self.categories)
        return (z * self.log_probs).sum(dim=(-1, -2))

    def kl_uniform(self) -> torch.Tensor:
        """KL(q || Uniform(K)^N) in closed form, sum_n sum_k q log(q K), shape (B,)."""
        q = self.log_probs.exp()
        return (q * (self.log_probs + math.log(self.categories))).sum(dim=(-1, -2))


class UniformCategorical:
    """p(z): N independent uniform categoricals over K categories."""

    def __init__(self, variables: int, categories: int):
        self.variables, self.categories = variables, categories

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full(z.shape[:-1], -self.variables * math.log(self.categories), dtype=z.dtype, device=z.device)

    def kl(self, posterior: CategoricalPosterior, z: torch.Tensor) -> torch.Tensor:
        """The closed form, whatever the draw: shape z.shape[:-1]."""
        return posterior.kl_uniform().expand(z.shape[:-1])

    def kl_per_dim(self, posterior: CategoricalPosterior, z: torch.Tensor) -> None:
        return None  # free bits clamp the level's whole KL

    def sample(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        codes = torch.randint(self.categories, (n, self.variables), device=device)
        return F.one_hot(codes, self.categories).to(dtype).flatten(-2)
