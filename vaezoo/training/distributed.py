"""PyTorch DDP through ``torchrun``: who am I, which device is mine, and the few collectives we use.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
we join with the ``env://`` rendezvous, NCCL on GPUs and gloo on CPUs. Without those variables
everything here degrades to a single process and the collectives become no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist

from ..devices import resolve_device

__all__ = ["DistContext", "init_distributed", "all_reduce_sum", "gather_tensors", "barrier",
           "batch_gatherer", "gradient_averager", "broadcast_module"]


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_name: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank, what="trainer.device")
    if world_size <= 1:
        return DistContext(device=device)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size, **kwargs)
        owns = True
    return DistContext(rank, world_size, local_rank, device, dist.get_backend(), owns)


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_tensors(tensor: torch.Tensor, ctx: DistContext) -> list[torch.Tensor]:
    """Every rank's copy of a same-shaped tensor, in rank order (a list of one without DDP).

    Used for per-rank RNG states: NCCL only moves GPU tensors, so they travel on the device.
    """
    if not ctx.distributed:
        return [tensor]
    moved = tensor.to(ctx.device)
    out = [torch.empty_like(moved) for _ in range(ctx.world_size)]
    dist.all_gather(out, moved)
    return [t.to(tensor.device) for t in out]


class _GatherBatch(torch.autograd.Function):
    """Every rank's tensor concatenated along dim 0, in rank order, with gradients: the backward
    sums each rank's gradient of the whole and hands every rank the slice of its own part.
    Under DDP's gradient averaging this gives the gradient of the single-process batch."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.contiguous()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor)
        ctx.rows, ctx.rank = tensor.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows: (ctx.rank + 1) * ctx.rows]


def batch_gatherer(ctx: DistContext):
    """For objectives with batch statistics (beta-TCVAE's estimate of q(z)): a function that
    concatenates a per-example tensor over every rank's part of the global batch, with
    gradients; None in one process. The ranks' parts must have equal sizes, as the loader's are."""
    return _GatherBatch.apply if ctx.distributed else None


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def gradient_averager(ctx: DistContext) -> Callable[[list[torch.nn.Parameter]], None]:
    """For a model trained by several updates a step: average one update's gradients over the
    processes after its backward, in one all-reduce. DDP's hooks cannot serve there: each update
    reaches only part of the model (a discriminator's loss leaves the decoder out), and DDP's
    search for unused parameters cannot see through the model's output object."""

    def average(params: list[torch.nn.Parameter]) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch._utils._flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= ctx.world_size
        for param, grad in zip(params, torch._utils._unflatten_dense_tensors(flat, grads)):
            param.grad = grad

    return average


def broadcast_module(module: torch.nn.Module, ctx: DistContext, buffers_only: bool = False) -> None:
    """Rank 0's parameters and buffers (or buffers alone) on every process, as DDP does at its start
    and, for BatchNorm's running statistics, before each forward."""
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor, src=0)
