"""The side-by-side with pythae: ``registry/references/peer_pythae.json``, written by
``benchmarks/peer_pythae.py --record`` (both libraries trained on the same model, data, budget and
seed, both scored by vaezoo), rendered as a table of ``docs/models.md``. Its ``notes`` say, per
model, why a difference is what it is; the benchmark keeps them when it records new rows."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import model_validator

from ..schemas import Strict
from .references import read_reference, reference_path

__all__ = ["PeerComparison", "peer_path", "read_peer_comparison", "peer_table"]

SCORES = (("iwae_nll", "IWAE NLL", "{:.2f}"), ("neg_elbo", "-ELBO", "{:.2f}"),
          ("fd-fashion-v1", "FD (fashion-v1)", "{:.2f}"), ("probe-accuracy", "probe", "{:.3f}"))
# an autoencoder has no density: its squared error, and its samples through a fitted mixture as well
POINT_SCORES = (("squared_error", "squared error", "{:.2f}"), ("fd-fashion-v1", "FD prior (fashion-v1)", "{:.2f}"),
                ("fd-gmm-fashion-v1", "FD mixture (fashion-v1)", "{:.2f}"), ("probe-accuracy", "probe", "{:.3f}"))
# a VQ-VAE has neither a density nor samples before a code prior is fitted: its squared error and its codes
CODE_SCORES = (("squared_error", "squared error", "{:.2f}"), ("codebook_usage", "codebook usage", "{:.3f}"),
               ("perplexity", "perplexity", "{:.0f}"), ("probe-accuracy", "probe", "{:.3f}"))
KINDS = (SCORES, POINT_SCORES, CODE_SCORES)
TRAINING = ("train_s", "selected_epoch")  # what a row says of the training, beside the scores


class PeerRow(Strict):
    model: str
    config: str
    vaezoo_objective: dict
    pythae_model: str
    pythae_settings: dict
    # the scores of one of KINDS, train_s and (rows recorded since it was)
    # selected_epoch: the epoch whose weights each library's own rule selected on the validation images
    vaezoo: dict[str, float]
    pythae: dict[str, float]

    @model_validator(mode="after")
    def _scored_alike(self):
        for library in ("vaezoo", "pythae"):
            keys = set(getattr(self, library)) - set(TRAINING)
            if keys not in [{key for key, _, _ in kind} for kind in KINDS]:
                raise ValueError(f"{self.model}: {library}'s scores {sorted(keys)} are neither a density model's "
                                 f"({', '.join(key for key, _, _ in SCORES)}) nor an autoencoder's "
                                 f"({', '.join(key for key, _, _ in POINT_SCORES)}) nor a VQ-VAE's "
                                 f"({', '.join(key for key, _, _ in CODE_SCORES)})")
        if set(self.vaezoo) - set(TRAINING) != set(self.pythae) - set(TRAINING):
            raise ValueError(f"{self.model}: the two libraries were scored on different metrics")
        return self

    def scores(self):
        """The one of KINDS this row has."""
        return next(kind for kind in KINDS if {key for key, _, _ in kind} <= set(self.vaezoo))


class PeerComparison(Strict):
    protocol: dict
    rows: list[PeerRow]
    notes: dict[str, str] = {}


def peer_path(registry: str | Path | None = None) -> Path:
    return reference_path("peer_pythae.json", registry)


def read_peer_comparison(registry: str | Path | None = None) -> Optional[PeerComparison]:
    return read_reference("peer_pythae.json", PeerComparison, registry)


def peer_table(comparison: Optional[PeerComparison]) -> list[str]:
    if comparison is None:
        return []
    p = comparison.protocol
    lines = [
        "## Side by side with pythae",
        "",
        "The models pythae 0.1.2 also has, trained by both libraries on the same networks (pythae trains "
        "vaezoo's encoder and decoder modules, from the same initial weights, and its flows, pseudo-inputs, "
        "discriminators and codebook start at vaezoo's), data, budget and seed, and "
        f"both scored by vaezoo's evaluation. Data: {p['data']}. Training: {p['training']}. Scoring: "
        f"{p['scoring']}. Lower is better for the NLL, the -ELBO and the FD; higher for the probe. "
        f"Training times were taken on a shared machine: read them as a rough ratio. Reproduce with "
        f"`{p['command']}` ({p['date']}; pythae {p['versions']['pythae']}, torch {p['versions']['torch']}).",
    ]
    for scores, heading in ((SCORES, None), (POINT_SCORES, "The autoencoders, which have no density, on their "
                             "squared error per test image (lower is better) and their samples' FD through the "
                             "prior and through a 10-component mixture fitted to the training codes:"),
                            (CODE_SCORES, "The VQ-VAE, which has neither a density nor samples until a code prior "
                             "is fitted to its codes, on its squared error per test image and its codes over the "
                             "10,000 test images: the fraction of the codebook used and the perplexity (the "
                             "exponential of the codes' entropy; higher is more of the codebook in use):")):
        rows = [row for row in comparison.rows if row.scores() is scores]
        if rows and heading:
            lines += ["", heading]
        if rows:
            lines += ["", _table(rows, scores)]
    lines.append("")
    for model, note in comparison.notes.items():
        lines.append(f"- {model}: {note}")
    if comparison.notes:
        lines.append("")
    return lines


def _table(rows: list[PeerRow], scores) -> str:
    lines = ["| model | pythae class | " + " | ".join(f"{title} vaezoo / pythae" for _, title, _ in scores)
             + " | selected epoch vaezoo / pythae | training time vaezoo / pythae |",
             "|---|---|" + "---:|" * (len(scores) + 2)]
    for row in rows:
        cells = [f"{form.format(row.vaezoo[key])} / {form.format(row.pythae[key])}" for key, _, form in scores]
        epochs = " / ".join(f"{row_scores['selected_epoch']:.0f}" if "selected_epoch" in row_scores else "-"
                            for row_scores in (row.vaezoo, row.pythae))
        times = f"{row.vaezoo['train_s']:.0f} s / {row.pythae['train_s']:.0f} s"
        lines.append(f"| {row.model} (`{row.config}`) | `{row.pythae_model}` | " + " | ".join(cells)
                     + f" | {epochs} | {times} |")
    return "\n".join(lines)
