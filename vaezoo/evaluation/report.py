"""The result of an evaluation: numbers with their protocol, as a table or as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

__all__ = ["Measurement", "EvalReport"]


@dataclass
class Measurement:
    """One number: its value (mean over examples), standard error, unit and how it was measured."""

    value: float
    unit: str
    label: str
    stderr: Optional[float] = None
    protocol: str = ""  # the per-metric part of the protocol: "S=10", "k=5000", ...


@dataclass
class EvalReport:
    """Metrics plus everything needed to reproduce or compare them.

    ``protocol`` holds the model, likelihood, data set and split, binarization, number of
    examples, pixels per image, latent size, samples (S, k), refinement settings and seed.
    ``report["iwae_nll"]`` is the value of a metric; ``report.metrics[name]`` the full entry.
    """

    protocol: dict[str, Any]
    metrics: dict[str, Measurement]
    kl_per_dim: Optional[dict[str, list[float]]] = None  # per latent level
    timing: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name].value

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": dict(self.protocol),
            "metrics": {name: asdict(m) for name, m in self.metrics.items()},
            "kl_per_dim": self.kl_per_dim,
            "timing": dict(self.timing),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalReport":
        return cls(
            protocol=dict(data["protocol"]),
            metrics={name: Measurement(**m) for name, m in data["metrics"].items()},
            kl_per_dim=data.get("kl_per_dim"),
            timing=dict(data.get("timing", {})),
        )

    def protocol_lines(self) -> list[str]:
        p = self.protocol
        lines = []
        if p.get("model"):
            lines.append(f"name         {p['model']}")
        n, available = p.get("examples"), p.get("examples_available")
        subset = f" (first {n:,} of {available:,})" if available and n != available else ""
        lines.append(f"data         {p.get('dataset', '?')}, {p.get('split', '?')} split, {n:,} examples{subset}")
        if "binarization" in p:
            lines.append(f"binarization {p['binarization']}")
        if "likelihood" in p:
            lines += self._bound_lines()
        if p.get("no_bounds"):
            lines.append(f"no bounds    {p['no_bounds']}")
        if "features" in p:
            lines.append(f"features     {p['features']}: {p.get('feature_network', '')}")
            lines.append(f"samples      {p['samples']:,} (seed {p.get('sample_seed', 0)}), {p.get('samples_are', '')}")
            lines.append(f"sampled from {p.get('sampled_from', '?')}")
        if "probe" in p:
            lines.append(f"probe        {p['probe']}; {p.get('probe_features', '?')} features of "
                         f"{p.get('probe_train_examples', 0):,} training images (train accuracy "
                         f"{p.get('probe_train_accuracy', '?')}), inputs {p.get('probe_inputs', '?')}")
        return lines

    def _bound_lines(self) -> list[str]:
        p = self.protocol
        lines = []
        levels = p.get("latent_levels") or {}
        latent = (f"latent dim {p.get('latent_dim', '?')}" if len(levels) <= 1
                  else "latent levels " + ", ".join(f"{name} {dim}" for name, dim in levels.items()))
        lines.append(
            f"model        family {p.get('family', 'vae')}, likelihood {p.get('likelihood', '?')}, prior "
            f"{p.get('prior', '?')}, {latent}, {p.get('pixels', '?')} pixels per image"
        )
        if p.get("conditioned_on"):
            lines.append(f"conditioned  on {p['conditioned_on']}")
        lines.append(f"seed         {p.get('seed', 0)} (noise keyed per example: independent of batch and chunk sizes)")
        if p.get("decoder_arithmetic"):
            compiled = ", compiled" if p.get("decoder_compiled") else ""
            lines.append(f"arithmetic   NLL: decoder in {p['decoder_arithmetic']}{compiled}, {p.get('decodes_per_pass')} "
                         f"decodes per pass; densities {p.get('densities_arithmetic', 'float32')}")
        return lines

    def format_table(self) -> str:
        rows = [(m.label, _format_value(m), m.unit, _format_stderr(m), m.protocol) for m in self.metrics.values()]
        widths = [max(len(r[i]) for r in rows + [("metric", "value", "unit", "s.e.", "protocol")]) for i in range(5)]
        header = ("metric", "value", "unit", "s.e.", "protocol")

        def fmt(r):
            return (f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  "
                    f"{r[3]:<{widths[3]}}  {r[4]}").rstrip()

        lines = self.protocol_lines() + ["", fmt(header), fmt(tuple("-" * w for w in widths))]
        lines += [fmt(r) for r in rows]
        if self.timing.get("examples_per_s"):
            lines += ["", f"{self.protocol.get('examples', 0):,} examples in {self.timing['seconds']:.1f} s "
                          f"({self.timing.get('examples_per_s', 0):.1f} examples/s)"]
        elif self.timing.get("seconds"):
            lines += ["", f"measured in {self.timing['seconds']:.1f} s"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_table()


_NATS_LIKE = ("nats", "bits/dim", "units", "codes", "per pixel", "dB")


def _format_value(m: Measurement) -> str:
    if not isinstance(m.value, float):
        return f"{m.value}"
    return f"{m.value:,.3f}" if m.unit in _NATS_LIKE else f"{m.value:.4g}"


def _format_stderr(m: Measurement) -> str:
    if m.stderr is None:
        return ""
    return f"± {m.stderr:.3f}" if m.unit in _NATS_LIKE else f"± {m.stderr:.2g}"
