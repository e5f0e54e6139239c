"""One optimizer step: the objective on a batch (in micro-batches), backward, clip, step.

It returns the loss and every named term of the objective stacked in one device tensor, read
by the loop every ``log_every`` steps rather than every step: no host-device sync here.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import nn

from ..passes import StepContext
from .loader import Batch

__all__ = ["train_step"]


def train_step(
    net: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, batch: Batch,
    context: StepContext, *, micro_batch_size: Optional[int], grad_clip: Optional[float],
    autocast_dtype: Optional[torch.dtype], device_type: str, cuda_graphs: bool = False,
) -> tuple[torch.Tensor, list[str]]:
    """(``[loss, *terms]`` as one float32 tensor, the term names).

    ``cuda_graphs`` (``compile: reduce-overhead`` on a GPU): each call of the compiled model
    replays a captured graph whose outputs the next replay overwrites, so a new graph step is
    marked before each call and the outputs are copied (stacked) before the next one."""
    optimizer.zero_grad(set_to_none=True)
    # Micro-batches accumulate the gradient of the batch-mean loss chunk by chunk: the same
    # gradient, a working set small enough for the CPU's caches. Under DDP only the last
    # chunk synchronizes gradients.
    x, y = batch
    chunks = x.split(micro_batch_size) if micro_batch_size else (x,)
    labels = (y.split(micro_batch_size) if micro_batch_size else (y,)) if y is not None else [None] * len(chunks)
    rows, names = [], []
    ddp = getattr(net, "_orig_mod", net)  # under torch.compile, the DDP module is the compiled one's original
    for i, (chunk, chunk_y) in enumerate(zip(chunks, labels)):
        weight = chunk.shape[0] / x.shape[0]
        sync = i == len(chunks) - 1 or not isinstance(ddp, nn.parallel.DistributedDataParallel)
        with contextlib.nullcontext() if sync else ddp.no_sync():
            if cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            with torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext():
                out = net(chunk, chunk_y, context=context)
            (out.loss * weight if len(chunks) > 1 else out.loss).backward()
        names = list(out.terms)
        rows.append(torch.stack([out.loss.detach(), *(t.detach() for t in out.terms.values())]).float() * weight)
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip, foreach=True)
    optimizer.step()
    scheduler.step()
    return (rows[0] if len(rows) == 1 else torch.stack(rows).sum(dim=0)), names
