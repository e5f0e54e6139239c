"""What a run leaves behind besides weights: ``metrics.jsonl`` and, when installed, TensorBoard logs.

``metrics.jsonl`` is rewritten whole (atomically) from the run's history at every epoch end.
The history also travels in each checkpoint, so a resumed run rewrites the file without the
epochs that the crash undid: no duplicate or orphaned lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..layout.checkpoint import atomic_write_bytes

__all__ = ["METRICS_NAME", "LOSS_PLOT_NAME", "write_metrics", "read_metrics", "TensorBoard"]

METRICS_NAME = "metrics.jsonl"
LOSS_PLOT_NAME = "loss.png"


def write_metrics(run_dir: str | Path, history: Sequence[Mapping[str, Any]]) -> Path:
    text = "".join(json.dumps(dict(record), sort_keys=False) + "\n" for record in history)
    return atomic_write_bytes(Path(run_dir) / METRICS_NAME, text.encode())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class TensorBoard:
    """Scalars to ``run_dir/tensorboard`` when ``tensorboard`` is installed; otherwise nothing."""

    def __init__(self, run_dir: str | Path, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def scalars(self, prefix: str, values: Mapping[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
