"""Device names: what this machine has, and a name checked against it with one clear error."""

from __future__ import annotations

import torch

from .errors import UsageError

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[str]:
    """The names a user may give here: ``auto``, ``cpu``, and each GPU (``cuda``, ``cuda:0``, ...)."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str, local_rank: int = 0, what: str = "device") -> torch.device:
    """``auto``: this process's GPU when there is one, else the CPU; a bare ``cuda`` means this
    process's GPU (``local_rank``). A name this machine lacks is a UsageError listing what it has."""
    available = available_devices()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UsageError(f"{what} {name!r} is not a device name; available here: {', '.join(available)}") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cpu":
        return device
    if str(device) not in available:
        lacking = "CUDA is not available on this machine" if device.type == "cuda" and not torch.cuda.is_available() \
            else f"this machine has no {device}"
        raise UsageError(f"{what} {name!r}: {lacking}; available here: {', '.join(available)}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device
