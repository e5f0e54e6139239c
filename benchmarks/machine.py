"""What the benchmarks say about the machine: FLOPs counted by torch, and the device's peak."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def flops_per_training_image(model: torch.nn.Module, shape, device) -> float:
    """Forward + backward FLOPs of one image, counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(8, *shape, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / x.shape[0]


def flops_per_importance_sample(model: torch.nn.Module, image: torch.Tensor, k: int = 64) -> float:
    """FLOPs of one importance sample of the IWAE bound (a decoder pass and three densities),
    counted over ``k`` samples of one image (its one encoder pass shared among them)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.iwae(image.unsqueeze(0), k)
    return counter.get_total_flops() / k


# dense peaks of the SXM parts, TFLOP/s, from the vendor data sheets: (bf16 tensor cores, fp32)
_GPU_PEAKS = {"H200": (989.0, 67.0), "H100": (989.0, 67.0), "A100": (312.0, 19.5), "L4": (121.0, 30.3)}


def peak_flops(device: torch.device, precision: str = "bf16") -> tuple[float, str]:
    """The device's peak FLOP/s for ``precision`` (``bf16`` or ``fp32``; CPUs: fp32), and how it
    was worked out."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (bf16, fp32) in _GPU_PEAKS.items():
            if key in name:
                tflops = bf16 if precision == "bf16" else fp32
                return tflops * 1e12, f"{name}: {tflops:g} TFLOP/s dense {precision} (data sheet)"
        return float("nan"), f"{name}: peak unknown"
    flags, mhz = "", 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
    except OSError:
        pass
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    fma = 2 if " fma" in flags else 1
    cores = torch.get_num_threads()
    peak = cores * (mhz * 1e6) * lanes * fma * 2  # two FMA pipes per core
    return peak, f"{cores} cores x {mhz:.0f} MHz x {lanes} fp32 lanes x {fma * 2} flop/lane/cycle (2 FMA pipes)"


def cpu_name() -> str:
    """``2-core Intel(R) Xeon(R) Processor (AVX-512, AMX)``: the CPU as /proc/cpuinfo names it, its
    logical cores, and the vector units that decide which kernels torch picks."""
    name, flags = "CPU", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name == "CPU":
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line + " "
    except OSError:
        pass
    units = [label for flag, label in ((" avx512f ", "AVX-512"), (" amx_tile ", "AMX")) if flag in flags]
    if not units and " avx2 " in flags:
        units = ["AVX2"]
    return f"{os.cpu_count()}-core {name}" + (f" ({', '.join(units)})" if units else "")
