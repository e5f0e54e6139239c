"""What a person watching a run sees: a tqdm bar per epoch when interactive, plain lines otherwise.

A bar is only drawn when stderr is a terminal and the ``CI`` variable is unset: CI logs and
files would otherwise fill with carriage returns and ANSI codes. Plain mode prints one line
every ``log_every`` steps and one per epoch, nothing else.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Optional, TextIO

from ..durations import format_duration
from .. import progress as passes
from ..progress import EvalProgress

__all__ = ["use_bar", "Progress"]


def use_bar(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> bool:
    stream = sys.stderr if stream is None else stream
    env = os.environ if env is None else env
    return not env.get("CI") and bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """``enabled=False`` (ranks other than 0) makes every call a no-op."""

    def __init__(self, *, epochs: int, steps_per_epoch: int, enabled: bool = True, stream: TextIO | None = None,
                 bar: bool | None = None):
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.bar_mode = enabled and (use_bar(self.stream) if bar is None else bar)
        self._bar = None

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def pass_progress(self, title: str) -> Optional[EvalProgress]:
        """Lines for a scoring pass (a split at the end of an epoch) that takes longer than a few
        seconds: its estimated total after the first batch, then its rate and ETA."""
        if not self.enabled:
            return None
        return EvalProgress(self.stream, every=0.25, what="images", title=title, quiet_below=passes.SLOW_PASS_SECONDS)

    def epoch_start(self, epoch: int, start_step: int, total_steps: int | None = None) -> None:
        if not self.bar_mode:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total_steps or self.steps_per_epoch, initial=start_step, file=self.stream, dynamic_ncols=True,
            desc=f"epoch {epoch + 1}/{self.epochs}", unit="step", leave=True,
        )

    def advance(self) -> None:
        """One step done: moves the bar (cheap, no device sync)."""
        if self._bar is not None:
            self._bar.update(1)

    def log(self, epoch: int, step_in_epoch: int, global_step: int, stats: Mapping[str, Any]) -> None:
        """A periodic report: loss, -ELBO, every named term of the objective, img/s, lr, ETA of the run."""
        if not self.enabled:
            return
        terms = stats.get("terms", {})
        if self._bar is not None:
            self._bar.set_postfix(
                loss=f"{stats['loss']:.2f}", **{name: f"{value:.2f}" for name, value in terms.items()},
                img_s=f"{stats['img_per_s']:.0f}", eta=format_duration(stats["eta_s"]), refresh=False,
            )
            return
        shown = "  ".join(f"{name} {value:.3f}" for name, value in terms.items())
        print(
            f"epoch {epoch + 1}/{self.epochs}  step {step_in_epoch}/{self.steps_per_epoch} (global {global_step})  "
            f"loss {stats['loss']:.3f}  {_elbo_text(stats['neg_elbo'])}{shown}  "
            f"{stats['img_per_s']:.0f} img/s  lr {stats['lr']:.2e}  eta {format_duration(stats['eta_s'])}",
            file=self.stream, flush=True,
        )

    def epoch_end(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        partial = " (stopped early: trainer.max_steps)" if record.get("partial") else ""
        def nats(key: str) -> str:
            value = record.get(key)
            return "-" if value is None else f"{value:.3f}"

        scores = f"val loss {nats('val_loss')}  test loss {nats('test_loss')}" if "val_loss" in record else \
            f"val -elbo {nats('val_neg_elbo')}  test -elbo {nats('test_neg_elbo')}"
        self.message(
            f"epoch {record['epoch']}/{self.epochs} done{partial}: train loss {nats('train_loss')}  {scores}  "
            f"({record['img_per_s']:.0f} img/s, {format_duration(record['epoch_time_s'])})"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _elbo_text(neg_elbo) -> str:
    """``-elbo 123.456  `` where the model has an ELBO (an autoencoder has none)."""
    return "" if neg_elbo is None else f"-elbo {neg_elbo:.3f}  "
