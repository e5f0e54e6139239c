"""How a model with discrete codes uses its codebook, measured by the ``codes`` suite."""

from __future__ import annotations

from .base import Metric, register_metric

__all__ = ["CodebookUsage", "CodePerplexity", "LevelUsage"]


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


@register_metric
class LevelUsage(Metric):
    """A hierarchical quantizer's dead codes: its entries are the K codes of each level, not the K^depth
    paths (a path is a combination, and a tree that clusters its data leaves many combinations unused),
    so what it uses is counted per level; the least-used level's fraction is reported."""

    name, label, unit = "level_usage", "codebook usage, least-used level", "fraction"
    suite, needs = "codes", ("codes",)
    higher_is_better = True
    description = "fraction of its codes used by the test images' codes, at a hierarchical quantizer's least-used level"
    tables, column, position, cell = ("codes",), "level usage", 15, "{:.1%}"
