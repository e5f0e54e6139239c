"""What a pass over many examples shows while it runs (an evaluation, the scoring at the end of a
training epoch, a sample-quality run): the estimated total after the first batch, then the rate
and an ETA."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO, Union

__all__ = ["EvalProgress", "progress_callback", "SLOW_PASS_SECONDS"]

SLOW_PASS_SECONDS = 5.0  # a pass expected to take longer than this shows its progress


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class EvalProgress:
    """``progress(done, total)`` after each batch: one line after the first batch with the estimated
    cost of the whole pass, then one line per ``every`` (a fraction of the examples).

    ``title`` opens the first line; ``quiet_below``: a pass whose estimate is shorter than this
    many seconds prints nothing (the scoring of a small epoch need not say it is fast)."""

    def __init__(self, stream: Optional[TextIO] = None, every: float = 0.05, what: str = "examples",
                 title: str = "", quiet_below: float = 0.0):
        self.stream = stream if stream is not None else sys.stderr
        self.every, self.what, self.title, self.quiet_below = every, what, title, quiet_below
        self.start = time.perf_counter()
        self.last = 0.0
        self.quiet = False

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        seconds = time.perf_counter() - self.start
        rate = done / seconds if seconds > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        fraction = done / total
        lines = []
        if self.last == 0.0:
            if seconds + eta < self.quiet_below:
                self.quiet = True
                return
            lines.append(f"  {self.title}first {done:,} of {total:,} {self.what} in {_duration(seconds)}: about "
                         f"{_duration(seconds + eta)} in all ({rate:.1f} {self.what}/s)")
        if (self.last and fraction - self.last >= self.every) or done == total:
            lines.append(f"  {done:,}/{total:,} {self.what}, {rate:.1f} {self.what}/s, eta {_duration(eta)}")
        if lines:
            self.last = fraction
            print("\n".join(lines), file=self.stream, flush=True)


def progress_callback(progress: Union[bool, Callable[[int, int], None], None], title: str = "",
                      what: str = "examples", quiet_below: float = 0.0) -> Optional[Callable[[int, int], None]]:
    """``True``: lines on stderr (see :class:`EvalProgress` for ``title``, ``what`` and ``quiet_below``;
    a pass shown only because it is slow reports every quarter, not every 5%); ``False``/``None``:
    silent; a callable is called as it is."""
    if progress is True:
        return EvalProgress(what=what, title=title, quiet_below=quiet_below, every=0.25 if quiet_below else 0.05)
    return progress or None
