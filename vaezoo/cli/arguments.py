"""Argument types that check ranges while the command line is parsed, before any work: argparse
then prints ``vaezoo sample: error: argument -n: must be at least 1, got 0`` and exits 2."""

from __future__ import annotations

import argparse

from ..devices import resolve_device
from ..errors import UsageError
from ..evaluation.images import image_metric
from ..parts.metrics import metrics_of

__all__ = ["at_least", "positive_float", "device_name", "image_file", "metric_names"]


def at_least(minimum: int):
    """An int of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def device_name(text: str) -> str:
    """A device this machine has (``auto``, ``cpu``, ``cuda:1``, ...), kept as the name."""
    try:
        resolve_device(text, what="device")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("device ")) from None
    return text


def image_file(text: str) -> str:
    """An output picture path whose extension Pillow can write (.png, .jpg, ...)."""
    from PIL import Image

    Image.init()
    suffix = "." + text.rsplit(".", 1)[-1].lower() if "." in text.rsplit("/", 1)[-1] else ""
    if suffix not in Image.registered_extensions():
        raise argparse.ArgumentTypeError(f"{text!r} has no picture extension Pillow writes; use .png (or .jpg, "
                                         f".webp, ...)")
    return text


def metric_names(text: str) -> list[str]:
    """Registered per-image metrics, comma-separated; ``none`` for none."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["none"]:
        return []
    if not names:
        raise argparse.ArgumentTypeError(f"no metric names in {text!r}; per-image metrics: "
                                         f"{', '.join(m.name for m in metrics_of('images'))}")
    for name in names:
        try:
            image_metric(name)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names
