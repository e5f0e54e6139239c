"""Bounds on log p(x) and the statistics reported beside them, measured by ``vaezoo.evaluate``
(the ``bounds`` suite; the ``codes`` suite measures -ELBO and its terms through a code prior)."""

from __future__ import annotations

from typing import Any, Mapping

from ...ops.bounds import ACTIVE_UNIT_THRESHOLD
from .base import Metric, register_metric

__all__ = ["NegElbo", "Reconstruction", "KL", "NegElboBitsPerDim", "IwaeNll", "NllBitsPerDim", "NegElboRefined",
           "AmortizationGap", "ApproximationGap", "ActiveUnits"]


class _ElboMetric(Metric):
    suite = "bounds"
    needs = ("density",)
    unit = "nats"
    higher_is_better = False
    protocol = ("importance_samples",)

    def protocol_from(self, report: Mapping[str, Any]) -> dict[str, Any]:
        return {"importance_samples": 1, "mc_samples": report.get("elbo_samples") or None}


class _IwaeMetric(Metric):
    suite = "bounds"
    needs = ("density",)
    unit = "nats"
    higher_is_better = False
    protocol = ("importance_samples",)

    def protocol_from(self, report: Mapping[str, Any]) -> dict[str, Any]:
        # a report from before the scoring plan (no field) decoded in float32
        return {"importance_samples": int(report["iw_samples"]),
                "decoder_arithmetic": report.get("decoder_arithmetic", "float32")}


@register_metric
class NegElbo(_ElboMetric):
    """The negative evidence lower bound: -E_q[log p(x|z)] + KL(q(z|x) || p(z)), averaged over S draws."""

    name, label = "neg_elbo", "-ELBO"
    tables, column, position, cell = ("codes",), "-ELBO", 50, "{:.1f}"


@register_metric
class Reconstruction(_ElboMetric):
    """The reconstruction term of the ELBO, -E_q[log p(x|z)]."""

    name, label = "recon", "  reconstruction -E_q log p(x|z)"


@register_metric
class KL(_ElboMetric):
    """The KL term of the ELBO (per latent level of a hierarchy: ``kl_z1``, ...)."""

    name, label = "kl", "  KL(q(z|x) || p(z))"
    higher_is_better = None  # neither: a term of the bound, not a quality
    publish = False  # a term of the bound, read with it; its level names vary with the family


@register_metric
class NegElboBitsPerDim(_ElboMetric):
    """The -ELBO in bits per dimension."""

    name, label, unit = "neg_elbo_bpd", "-ELBO bits/dim", "bits/dim"
    tables, column, position, cell = ("codes",), "bits/dim", 60, "{:.3f}"


@register_metric
class IwaeNll(_IwaeMetric):
    """The importance-weighted estimate of -log p(x) with k samples (Burda et al. 2016)."""

    name, label = "iwae_nll", "NLL (importance weighted)"


@register_metric
class NllBitsPerDim(_IwaeMetric):
    """The importance-weighted NLL in bits per dimension."""

    name, label, unit = "nll_bpd", "NLL bits/dim", "bits/dim"


@register_metric
class NegElboRefined(_ElboMetric):
    """The -ELBO with each example's posterior refined by gradient steps (``--refine-steps``)."""

    name, label = "neg_elbo_refined", "-ELBO, refined posterior"
    publish = False  # its protocol (the refinement's steps and rate) has no field in a published record


@register_metric
class AmortizationGap(_ElboMetric):
    """The encoder's -ELBO minus the refined posterior's: what amortized inference costs."""

    name, label = "amortization_gap", "amortization gap"
    publish = False


@register_metric
class ApproximationGap(_ElboMetric):
    """The refined -ELBO minus the importance-weighted NLL: what the posterior family costs."""

    name, label = "approximation_gap", "approximation gap"
    publish = False


@register_metric
class ActiveUnits(Metric):
    """The latent dimensions whose posterior mean varies across the test images (Burda et al. 2016)."""

    name, label, unit = "active_units", "active units", "units"
    suite, needs = "bounds", ("posterior-means",)
    higher_is_better = True
    description = f"latent dims with Cov_x(E_q[z_j|x]) > {ACTIVE_UNIT_THRESHOLD:g}"
