"""How a model with discrete codes uses its codebook, measured by the ``codes`` suite."""

from __future__ import annotations

from .base import Metric, register_metric

__all__ = ["CodebookUsage", "CodePerplexity"]


@register_metric
class CodebookUsage(Metric):
    """The fraction of the K codes used anywhere in the test images' codes."""

    name, label, unit = "codebook_usage", "codebook usage", "fraction"
    suite, needs = "codes", ("codes",)
    higher_is_better = True
    description = "fraction of the codebook used by the test images' codes"
    tables, column, position, cell = ("codes",), "codebook usage", 10, "{:.1%}"


@register_metric
class CodePerplexity(Metric):
    """exp of the entropy of the codes' frequencies over the test set (K at best)."""

    name, label, unit = "perplexity", "code perplexity", "codes"
    suite, needs = "codes", ("codes",)
    higher_is_better = True
    description = "exp of the entropy of the test codes' frequencies"
    tables, column, position, cell = ("codes",), "perplexity", 20, "{:.1f}"
