"""Device names: what this machine has, and a name checked against it with one clear error."""

from __future__ import annotations

import torch

from .errors import UsageError

__all__ = ["available_devices", "resolve_device", "native_cpu_bf16", "describe_device"]


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


def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles or AVX-512 BF16: Intel
    Sapphire Rapids and newer, AMD Zen 4 and newer); elsewhere oneDNN emulates bf16, slower than
    float32. (torch has no public query for it; a torch without these private probes counts as no
    native bf16.)"""
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(probe() for probe in probes if probe is not None)


def describe_device(device: torch.device) -> str:
    """What runs the arithmetic, for a cache key or a report: the GPU's name, or the CPU's model
    name, its vector unit and the threads torch uses (the same CPU model with other threads is
    another machine for a shape that was timed)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:  # not Linux: the vector unit and the thread count still tell machines apart
        pass
    bf16 = ", native bf16" if native_cpu_bf16() else ""
    return f"{name} ({torch.backends.cpu.get_cpu_capability()}{bf16}), {torch.get_num_threads()} thread(s)"
