"""Which model of the peer libraries (pythae, PyTorch-VAE, disent) each vaezoo part or family
answers, with the pretrained model that shows it: ``registry/references/coverage.json``, rendered
as the coverage table of ``docs/models.md``. The test suite checks every part and pretrained
name it cites, so the table cannot claim what the zoo does not have."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..catalog import KINDS
from ..hub.index import PretrainedEntry
from ..schemas import Strict
from .references import read_reference

__all__ = ["CoverageRow", "Coverage", "read_coverage", "coverage_problems", "coverage_table"]

# the metric a row shows for its pretrained model, the first the entry has
HEADLINE = (("iwae_nll", "NLL {:.2f} nats"), ("dci-disentanglement", "DCI disentanglement {:.3f}"),
            ("fd-fashion-v1", "FD {:.2f} (fashion-v1)"), ("neg_elbo", "-ELBO {:.2f} nats"))


class PeerList(Strict):
    source: str  # where the list was counted
    models: list[str]


class CoverageRow(Strict):
    model: str
    paper: str
    peers: dict[str, list[str]]  # peer library -> its names for this model
    vaezoo: list[tuple[str, str]]  # (kind, registered name) of the parts that build it; empty: not built
    pretrained: list[str]
    note: Optional[str] = None


class Coverage(Strict):
    about: str
    peers: dict[str, PeerList]
    rows: list[CoverageRow]


def read_coverage(registry: str | Path | None = None) -> Optional[Coverage]:
    """The registry's coverage file; None for a registry without one (a user's own)."""
    return read_reference("coverage.json", Coverage, registry)


def coverage_problems(coverage: Coverage, published: Sequence[str]) -> list[str]:
    """What the file claims that is not so: a part that is not registered, a pretrained name that is
    not published, a peer name in no row or in two, a row that names a pretrained model but no part."""
    problems = []
    for row in coverage.rows:
        for kind, name in row.vaezoo:
            if kind not in KINDS or name not in KINDS[kind]:
                problems.append(f"{row.model}: no registered {kind} named '{name}'")
        problems += [f"{row.model}: no pretrained model named '{n}'" for n in row.pretrained if n not in published]
        problems += [f"{row.model}: '{peer}' is not one of the peers" for peer in row.peers if peer not in coverage.peers]
    for peer, listing in coverage.peers.items():
        cited = [name for row in coverage.rows for name in row.peers.get(peer, [])]
        problems += [f"{peer} '{n}' is in {cited.count(n)} rows" for n in sorted(set(cited)) if cited.count(n) > 1]
        problems += [f"{peer} '{n}' is in no row" for n in listing.models if n not in cited]
        problems += [f"{peer} '{n}' is not in its list" for n in set(cited) - set(listing.models)]
    return problems


def _headline(entry: PretrainedEntry) -> str:
    for name, form in HEADLINE:
        metric = next((m for m in entry.metrics if m.name == name), None)
        if metric is not None:
            return f"{form.format(metric.value)} (`{entry.name}`)"
    return "-"


def coverage_table(coverage: Optional[Coverage], entries: Sequence[PretrainedEntry]) -> list[str]:
    if coverage is None:
        return []
    by_name = {e.name: e for e in entries}
    built = [row for row in coverage.rows if row.vaezoo]
    counts = "; ".join(
        f"{peer}: {sum(1 for n in listing.models if any(n in r.peers.get(peer, []) for r in built))} of "
        f"{len(listing.models)}" for peer, listing in coverage.peers.items())
    lines = [
        "## Coverage of the peer libraries",
        "",
        f"The models of the VAE libraries users compare, and the vaezoo part or family that builds each. "
        f"Answered so far: {counts}. Lists counted from: "
        + "; ".join(f"{peer}: {listing.source}" for peer, listing in coverage.peers.items())
        + ". The headline metric is the first of the IWAE NLL, DCI disentanglement, the FD and the -ELBO that "
        "the pretrained model publishes (its protocol is in the model's section below).",
        "",
        "| model | paper | peers | vaezoo | pretrained | headline |",
        "|---|---|---|---|---|---|",
    ]
    for row in coverage.rows:
        peers = "; ".join(f"{peer} " + ", ".join(f"`{n}`" for n in names) for peer, names in row.peers.items()) or "-"
        parts = ", ".join(f"{kind} `{name}`" for kind, name in row.vaezoo)
        parts = "; ".join(p for p in (parts, row.note) if p) or "-"
        pretrained = ", ".join(f"`{n}`" for n in row.pretrained) or "-"
        headline = _headline(by_name[row.pretrained[0]]) if row.pretrained and row.pretrained[0] in by_name else "-"
        lines.append(f"| {row.model} | {row.paper} | {peers} | {parts} | {pretrained} | {headline} |")
    lines.append("")
    return lines
