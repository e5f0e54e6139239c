"""log I_v(kappa), the modified Bessel function of the first kind, differentiable in kappa: the von
Mises-Fisher distribution's normalizer (torch has I_0 and I_1 only, and scipy is no dependency)."""

from __future__ import annotations

import math

import torch

__all__ = ["log_bessel_iv"]

NODES = 2048  # trapezoid nodes on the transformed interval


def _nodes(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Angles t in [0, pi] and the log of their quadrature weights: the trapezoid rule in u on [0, 1]
    with t = pi (u - sin(2 pi u) / (2 pi)). dt/du = pi (1 - cos(2 pi u)) vanishes to second order at
    both ends, which smooths sin(t)^(2v) there (a kink in the plain rule for half-integer v) and puts
    more nodes near t = 0, where the integrand peaks for large kappa."""
    u = torch.linspace(0.0, 1.0, NODES, dtype=torch.float64, device=device)
    t = math.pi * (u - torch.sin(2 * math.pi * u) / (2 * math.pi))
    dt = math.pi * (1 - torch.cos(2 * math.pi * u))
    weight = torch.full_like(u, 1.0 / (NODES - 1))
    weight[0] = weight[-1] = 0.5 / (NODES - 1)
    log_weight = torch.where(dt > 0, torch.log(dt.clamp_min(1e-300) * weight), torch.full_like(u, -math.inf))
    return t, log_weight


def log_bessel_iv(order: float, kappa: torch.Tensor) -> torch.Tensor:
    """log I_order(kappa) for a real order >= 0 and kappa > 0, from the integral representation

        I_v(k) = (k/2)^v / (sqrt(pi) Gamma(v + 1/2)) int_0^pi exp(k cos t) sin(t)^(2v) dt

    by the quadrature of :func:`_nodes` in float64, summed as a log-sum-exp (no overflow for large
    kappa). Autograd differentiates the rule itself: d/dk log I_v = I_(v+1)/I_v + v/k to the same
    accuracy. Absolute error below 1e-10 for kappa in [1e-3, 3e4] and orders up to 64
    (``tests/test_vmf.py`` checks it against scipy)."""
    if order < 0:
        raise ValueError(f"order must be >= 0, got {order}")
    dtype = kappa.dtype
    k = kappa.to(torch.float64)
    t, log_weight = _nodes(kappa.device)
    sin = torch.sin(t)
    log_power = (2 * order * torch.where(sin > 0, torch.log(sin.clamp_min(1e-300)), torch.full_like(t, -math.inf))
                 if order > 0 else torch.zeros_like(t))
    log_integral = torch.logsumexp(k.unsqueeze(-1) * torch.cos(t) + log_power + log_weight, dim=-1)
    log_front = order * torch.log(k / 2) if order > 0 else torch.zeros_like(k)
    return (log_front - 0.5 * math.log(math.pi) - math.lgamma(order + 0.5) + log_integral).to(dtype)
