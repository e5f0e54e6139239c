"""Decodes per pass chosen by timing the model on this machine, cached.

Which pass size is fastest depends on the CPU's caches and vector units, the thread count, the
arithmetic and the architecture: 128 decodes per pass was best for ``fashion-conv64`` on an AMD
EPYC and 6x slower than 2,000 for the same model on an Intel Xeon with AMX. So a long scoring job
first times the model's own latent pass (encoder, decoder, densities) at a few sizes, and keeps
the fastest. The result is cached in ``<cache>/scoring-shapes.json`` under a key of the model's
architecture (its config), the machine (:func:`~vaezoo.devices.describe_device`, threads
included), torch's version and the plan's arithmetic, so each is timed once.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from ..devices import describe_device
from ..layout.checkpoint import atomic_write_bytes
from ..resources import cache_dir
from .plan import ScoringPlan

__all__ = ["CANDIDATES", "calibrated_decodes_per_pass", "fastest_size", "cache_path", "cache_key"]

CANDIDATES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
SECONDS_PER_CANDIDATE = 0.3  # of timed passes after a warm-up pass (which compiles)
_WORSE_IN_A_ROW = 2  # stop once two larger sizes in a row are 10% slower than the best so far
ROUNDS = 2  # the sizes timed are timed again in turn, so that a burst of other work does not decide


def cache_path() -> Path:
    return cache_dir() / "scoring-shapes.json"


def cache_key(model, device: torch.device, plan: ScoringPlan) -> str:
    fields = {"model": model.config.model_dump(mode="json"), "device": describe_device(device),
              "torch": torch.__version__, "dtype": str(plan.dtype), "compile": plan.compile,
              "channels_last": plan.channels_last}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def calibrated_decodes_per_pass(model, x: torch.Tensor, y: Optional[torch.Tensor], plan: ScoringPlan,
                                say: Optional[Callable[[str], None]] = None) -> int:
    """The fastest of :data:`CANDIDATES` for scoring ``model`` under ``plan`` on this machine,
    timed on the first image of ``x`` (already on the model's device, dtype and memory format)."""
    return fastest_size(
        cache_key(model, x.device, plan), CANDIDATES,
        lambda size: _decodes_per_second(model, x[:1], None if y is None else y[:1], replace(plan, decodes_per_pass=size)),
        unit="decodes", what="decoder pass sizes",
        about={"device": describe_device(x.device), "dtype": str(plan.dtype), "compile": plan.compile}, say=say)


def fastest_size(key: str, candidates: Sequence[int], rate: Callable[[int], float], *, unit: str, what: str,
                 about: dict, say: Optional[Callable[[str], None]] = None) -> int:
    """The candidate with the most ``unit`` per second by ``rate(size)``, timed once per ``key`` and
    cached in :func:`cache_path` as ``{"<unit>_per_pass": size, "<unit>_per_s": {...}, **about}``.

    Sizes are timed in increasing order, stopping once two in a row are 10% slower than the best,
    then again in :data:`ROUNDS` - 1 more rounds; each keeps its fastest round."""
    field = f"{unit}_per_pass"
    cached = _read(cache_path()).get(key)
    if isinstance(cached, dict) and cached.get(field) in candidates:  # else an edited file: time again
        return int(cached[field])
    if say is not None:
        say(f"timing {what} for this model on this machine (once; cached in {cache_path()})")
    rates: dict[int, float] = {}
    worse = 0
    for size in candidates:
        rates[size] = rate(size)
        worse = worse + 1 if rates[size] < 0.9 * max(rates.values()) else 0
        if worse == _WORSE_IN_A_ROW:
            break
    for _ in range(ROUNDS - 1):  # a busy machine slows some timings: each size keeps its best round
        for size in rates:
            rates[size] = max(rates[size], rate(size))
    chosen = max(rates, key=rates.get)
    table = _read(cache_path())  # another process may have written meanwhile: keep its entries
    table[key] = {field: chosen, f"{unit}_per_s": {str(k): round(v) for k, v in rates.items()}, **about,
                  "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_bytes(cache_path(), (json.dumps(table, indent=1, sort_keys=True) + "\n").encode())
    if say is not None:
        say(f"{chosen} {unit} per pass: " + ", ".join(f"{k}: {v:,.0f}/s" for k, v in rates.items()))
    return chosen


def _decodes_per_second(model, x1: torch.Tensor, y1: Optional[torch.Tensor], plan: ScoringPlan) -> float:
    images = plan.images_per_pass(plan.decodes_per_pass)
    samples = plan.samples_per_pass(images)
    x = x1.expand(images, *x1.shape[1:]).clone(memory_format=torch.preserve_format)
    y = None if y1 is None else y1.expand(images)
    eps = torch.randn(samples, images, *model.noise_shape, device=x.device, dtype=x.dtype)

    def one_pass() -> None:
        torch.logsumexp(model.latent_pass(x, eps, y, posterior=q).log_weights(), dim=0).sum().item()

    with torch.no_grad(), model.decoding_with(plan.decoder(model)):
        q = model.encode(x, y) if model.takes_posterior else None  # as the bound does: once per group
        one_pass()  # first-call work (compiling, allocations) is not what the job pays per pass
        passes, start = 0, time.perf_counter()
        while passes < 2 or time.perf_counter() - start < SECONDS_PER_CANDIDATE:
            one_pass()
            passes += 1
    return passes * images * samples / (time.perf_counter() - start)


def _read(path: Path) -> dict:
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: time again and write a fresh one
        return {}
    return table if isinstance(table, dict) else {}
