"""Loss curves of a training run, from its ``metrics.jsonl`` records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["plot_loss_curves"]


def plot_loss_curves(records: Iterable[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Train loss and validation / test -ELBO per epoch, saved as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and no GUI backend may be started from a worker
    import matplotlib.pyplot as plt

    records = list(records)
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    series = [("train_loss", "train loss"), ("val_neg_elbo", "val -ELBO"), ("test_neg_elbo", "test -ELBO")]
    for key, label in series:
        points = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
