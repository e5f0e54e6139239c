"""One training step: each of the model's updates in turn (one, ``model``, for most families),
each its objective on the batch (in micro-batches), backward, clip, its optimizer's step.

It returns the loss and every named term of every update stacked in one device tensor, read
by the loop every ``log_every`` steps rather than every step: no host-device sync here.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..parts.objectives.base import MAIN_UPDATE
from ..passes import StepContext
from .loader import Batch

__all__ = ["train_step"]


def train_step(
    net: nn.Module, optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any], batch: Batch,
    context: StepContext, *, micro_batch_size: Optional[int], grad_clip: Optional[float],
    autocast_dtype: Optional[torch.dtype], device_type: str, cuda_graphs: bool = False,
    grad_sync: Optional[Callable[[list[nn.Parameter]], None]] = None,
) -> tuple[torch.Tensor, list[str]]:
    """(``[loss, *terms]`` as one float32 tensor, the term names).

    ``optimizers`` are taken in their order, the model's training updates (a FactorVAE: the
    VAE, then its discriminator). ``loss`` is the ``model`` update's; another update's loss and
    terms follow its terms as ``<update>/loss``, ``<update>/<term>``. ``grad_sync``: averages an
    update's gradients over the processes where DDP does not (a model of several updates).

    ``cuda_graphs`` (``compile: reduce-overhead`` on a GPU): each call of the compiled model
    replays a captured graph whose outputs the next replay overwrites, so a new graph step is
    marked before each call and the outputs are copied (stacked) before the next one."""
    rows, names = [], []
    for update, optimizer in optimizers.items():
        row, terms = _update(net, update, optimizer, batch, context, micro_batch_size, autocast_dtype, device_type,
                             cuda_graphs)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if grad_sync is not None:
            grad_sync(params)
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        optimizer.step()
        schedulers[update].step()
        rows.append(row)
        names += terms if update == MAIN_UPDATE else [f"{update}/{name}" for name in ["loss", *terms]]
    return (rows[0] if len(rows) == 1 else torch.cat(rows)), names


def _update(net: nn.Module, update: str, optimizer: torch.optim.Optimizer, batch: Batch, context: StepContext,
            micro_batch_size: Optional[int], autocast_dtype: Optional[torch.dtype], device_type: str,
            cuda_graphs: bool) -> tuple[torch.Tensor, list[str]]:
    """The gradient of one update's batch-mean loss in its parameters' ``.grad``; (``[loss, *terms]``, term names)."""
    optimizer.zero_grad(set_to_none=True)  # also what an earlier update's backward left in this group
    # Micro-batches accumulate the gradient of the batch-mean loss chunk by chunk: the same
    # gradient, a working set small enough for the CPU's caches. Under DDP only the last
    # chunk synchronizes gradients.
    x, y = batch
    chunks = x.split(micro_batch_size) if micro_batch_size else (x,)
    labels = (y.split(micro_batch_size) if micro_batch_size else (y,)) if y is not None else [None] * len(chunks)
    # the main update calls the model as users do; another names itself (forward's `update`)
    named = {} if update == MAIN_UPDATE else {"update": update}
    rows, names = [], []
    ddp = getattr(net, "_orig_mod", net)  # under torch.compile, the DDP module is the compiled one's original
    for i, (chunk, chunk_y) in enumerate(zip(chunks, labels)):
        weight = chunk.shape[0] / x.shape[0]
        sync = i == len(chunks) - 1 or not isinstance(ddp, nn.parallel.DistributedDataParallel)
        with contextlib.nullcontext() if sync else ddp.no_sync():
            if cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            with torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext():
                out = net(chunk, chunk_y, context=context, **named)
            # a loss without a graph is an update the objective holds this step (VAE-GAN's balance):
            # its gradients stay None and its optimizer steps nothing
            if out.loss.requires_grad:
                (out.loss * weight if len(chunks) > 1 else out.loss).backward()
        names = list(out.terms)
        rows.append(torch.stack([out.loss.detach(), *(t.detach() for t in out.terms.values())]).float() * weight)
    return (rows[0] if len(rows) == 1 else torch.stack(rows).sum(dim=0)), names
