"""Loss curves of a training run, from its ``metrics.jsonl`` records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..png import save_figure_png

__all__ = ["plot_loss_curves"]

_TERM_PREFIX = "train_term/"  # how the loop records each named term of the objective


PER_STEP_BELOW = 3  # a run of fewer epochs is drawn per logged step: an epoch or two are only dots


def plot_loss_curves(records: Iterable[Mapping[str, Any]], path: str | Path, title: str = "",
                     steps: Sequence[tuple[int, Mapping[str, float]]] = ()) -> Path:
    """Two panels, per epoch: the train loss with the validation and test -ELBO, and every named
    term of the objective other than the reconstruction (each KL level, commitment, ...), saved as
    a PNG. A run of fewer than ``PER_STEP_BELOW`` epochs is drawn against the step instead, from
    ``steps`` (``(global step, {"loss": ..., term: ...})``, the means of the logged windows) with
    each epoch's scores at its last step. Drawn on a matplotlib Agg canvas of its own, so pyplot's
    global backend is untouched."""
    records = list(records)
    if len(records) < PER_STEP_BELOW and len(steps) >= 2:
        return _plot_per_step(records, steps, Path(path), title)
    terms = sorted({k for r in records for k in r if k.startswith(_TERM_PREFIX) and k != f"{_TERM_PREFIX}recon"})
    fig, axes = _panels(bool(terms))

    def plot(ax, key, label):
        points = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=3, label=label)

    for key, label in (("train_loss", "train loss"), ("val_neg_elbo", "val -ELBO"), ("test_neg_elbo", "test -ELBO")):
        plot(axes[0], key, label)
    for key in terms:
        plot(axes[1], key, key.removeprefix(_TERM_PREFIX))
    return _save(fig, axes, "epoch", title, Path(path))


def _panels(with_terms: bool):
    """A figure of its own (an Agg canvas: pyplot's global backend is untouched): the loss panel,
    and the terms panel beside it when the objective has terms other than the reconstruction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11 if with_terms else 6, 4), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, 2 if with_terms else 1, squeeze=False)[0]


def _save(fig, axes, xlabel: str, title: str, path: Path) -> Path:
    """Titles, labels, grids and legends of both panels, then the PNG."""
    axes[0].set_ylabel("nats per image")
    axes[0].set_title(title or "loss")
    if len(axes) > 1:
        axes[1].set_ylabel("nats per image")
        axes[1].set_title("terms of the training objective")
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure_png(fig, path)


def _plot_per_step(records: list[Mapping[str, Any]], steps: Sequence[tuple[int, Mapping[str, float]]], path: Path,
                   title: str) -> Path:
    terms = sorted({name for _, values in steps for name in values if name not in ("loss", "recon")})
    fig, axes = _panels(bool(terms))
    xs = [step for step, _ in steps]
    axes[0].plot(xs, [values["loss"] for _, values in steps], label="train loss (mean of each logged window)")
    for key, label, marker in (("val_neg_elbo", "val -ELBO", "o"), ("test_neg_elbo", "test -ELBO", "s")):
        points = [(r["step"], r[key]) for r in records if r.get(key) is not None and r.get("step") is not None]
        if points:
            axes[0].plot(*zip(*points), linestyle="none", marker=marker, label=label)
    for name in terms:
        axes[1].plot(xs, [values.get(name) for _, values in steps], label=name)
    return _save(fig, axes, "step", title, path)
