"""One evaluation from its shards: ``vaezoo eval --start I --limit N`` reports over consecutive ranges
of the test set, merged into the report one run over the whole range gives.

The noise of every bound is keyed by each image's index in the whole set, so a shard's per-image
values are the whole run's; a mean over examples and its standard error then merge exactly from
each shard's mean, standard error and count (the pooled variance). Long scorings (k = 5000 on a
slow model) so run in pieces that each land on disk, and a crash or a session's end loses one piece.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..errors import UsageError
from .metrics import Measurement
from .report import EvalReport

__all__ = ["merge_shards"]

# what a shard's protocol may say differently from its siblings': its range, and how its passes were sized
# (the values do not depend on the pass sizes: the noise is keyed per example)
RANGE_FIELDS = ("examples", "first_example")
PLAN_FIELDS = ("decodes_per_pass",)


def _first(report: EvalReport) -> int:
    return int(report.protocol.get("first_example", 0))


def _pooled(parts: list[tuple[int, Measurement]]) -> Measurement:
    """The mean and standard error over all examples from each part's count, mean and standard error."""
    n = sum(count for count, _ in parts)
    mean = sum(count * m.value for count, m in parts) / n
    # (n_i - 1) s_i^2 with s_i = stderr_i sqrt(n_i) (the unbiased spread), plus the parts' spread about the mean
    within = sum((count - 1) * (m.stderr or 0.0) ** 2 * count for count, m in parts)
    between = sum(count * (m.value - mean) ** 2 for count, m in parts)
    stderr = math.sqrt((within + between) / (n - 1) / n) if n > 1 else None
    first = parts[0][1]
    return Measurement(value=mean, unit=first.unit, label=first.label, stderr=stderr, protocol=first.protocol)


def merge_shards(shards: Sequence[EvalReport]) -> tuple[EvalReport, list[str]]:
    """(the merged report, the names of the metrics left out). The shards must be one evaluation
    (equal protocols but for their ranges and pass sizes) over consecutive ranges from the first
    image of the split. A metric that is not a mean over examples (no standard error: active units) cannot
    be merged and is left out, named in the second value: measure it on the whole set."""
    if not shards:
        raise UsageError("no shards to merge: give the reports of vaezoo eval --start I --limit N")
    ordered = sorted(shards, key=_first)
    images = f"{ordered[0].protocol.get('split', 'test')} split"
    expected = 0
    for shard in ordered:
        if _first(shard) != expected:
            raise UsageError(f"the shards do not tile the {images}: one starts at image {_first(shard)}, the next "
                             f"expected at {expected}; score the missing range with --start {expected}")
        expected += int(shard.protocol["examples"])
    total = int(ordered[0].protocol.get("examples_available", expected))
    if expected > total:
        raise UsageError(f"the shards cover {expected} images, more than the {total} of the {images}")
    ignored = RANGE_FIELDS + PLAN_FIELDS
    reference = {k: v for k, v in ordered[0].protocol.items() if k not in ignored}
    for shard in ordered[1:]:
        other = {k: v for k, v in shard.protocol.items() if k not in ignored}
        if other != reference:
            differ = sorted(k for k in set(reference) | set(other) if reference.get(k) != other.get(k))
            raise UsageError(f"the shard from image {_first(shard)} is not the same evaluation: its protocol differs "
                             f"in {', '.join(differ)}")
    names = list(ordered[0].metrics)
    if any(list(shard.metrics) != names for shard in ordered[1:]):
        raise UsageError("the shards report different metrics: score every shard with the same flags")
    merged, left_out = {}, []
    for name in names:
        parts = [(int(shard.protocol["examples"]), shard.metrics[name]) for shard in ordered]
        if any(m.stderr is None and count > 1 for count, m in parts):
            left_out.append(name)
            continue
        merged[name] = _pooled(parts)
    protocol = {**reference, "examples": expected}
    plans = {shard.protocol.get("decodes_per_pass") for shard in ordered} - {None}
    if plans:
        protocol["decodes_per_pass"] = plans.pop() if len(plans) == 1 else sorted(plans)
    kl_per_dim = None
    if all(shard.kl_per_dim for shard in ordered):
        kl_per_dim = {level: [sum(int(s.protocol["examples"]) * s.kl_per_dim[level][j] for s in ordered) / expected
                              for j in range(len(values))]
                      for level, values in ordered[0].kl_per_dim.items()}
    seconds = sum(float(shard.timing.get("seconds", 0.0)) for shard in ordered)
    timing = {"seconds": seconds, "examples_per_s": expected / seconds if seconds > 0 else 0.0,
              "shards": len(ordered)}
    return EvalReport(protocol=protocol, metrics=merged, kl_per_dim=kl_per_dim, timing=timing), left_out
