"""The batch size of a run's validation and test passes (``trainer.eval_batch_size: auto``).

The fastest batch for an evaluation forward depends on the machine and the model: on one thread
of an Intel Xeon (AVX-512, AMX), in float32, the ConvHVAE scored 1.7 times the images per second
in batches of 32 as in batches of 1024, whose activations no longer stay in the caches
(``benchmarks/eval_batch.py``); a GPU wants the large batch. So a run whose validation split is
larger than one batch of the largest candidate times the model's evaluation forward at a few
sizes, once per model, machine and torch version (cached beside the scoring shapes), and keeps
its choice for the whole run, resumes included: the validation's noise is drawn batch by batch,
and the epochs are compared on one stream.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Callable, Optional

import torch

from ..devices import describe_device
from ..fastpath.calibration import SECONDS_PER_CANDIDATE, fastest_size

__all__ = ["CANDIDATES", "choose_eval_batch_size", "eval_forward_key"]

CANDIDATES = (32, 64, 128, 256, 512, 1024)


def eval_forward_key(model, device: torch.device, channels_last: bool) -> str:
    fields = {"purpose": "evaluation forward", "model": model.config.model_dump(mode="json"),
              "device": describe_device(device), "torch": torch.__version__, "channels_last": channels_last}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def choose_eval_batch_size(key: str, split_size: int, forward: Callable[[int], object], *, device: torch.device,
                           say: Optional[Callable[[str], None]] = None) -> int:
    """The fastest of :data:`CANDIDATES` for ``forward(size)`` (the model's evaluation forward on the
    split's first ``size`` images); a split of ``split_size`` images that fits in one batch of the
    largest candidate stays one batch, as it always was, and nothing is timed."""
    if split_size <= CANDIDATES[-1]:
        return CANDIDATES[-1]

    def finished() -> float:  # a GPU runs the forward after it returns: wait for it before reading the clock
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def images_per_second(size: int) -> float:
        forward(size)  # first-call work (allocations) is not what each pass pays
        passes, start = 0, finished()
        while passes < 2 or finished() - start < SECONDS_PER_CANDIDATE:
            forward(size)
            passes += 1
        return passes * size / (finished() - start)

    return fastest_size(key, CANDIDATES, images_per_second, unit="images", what="evaluation batch sizes",
                        about={"device": describe_device(device), "purpose": "evaluation forward"}, say=say)
