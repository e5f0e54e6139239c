"""Durations as progress lines show them (``1:02:03``): one format for training and fitting."""

from __future__ import annotations

import datetime

__all__ = ["format_duration"]


def format_duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=max(0, round(seconds))))
