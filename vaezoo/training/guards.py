"""The NaN stop: where the loss or the weights stopped being finite, and what is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..errors import NonFiniteLossError
from ..layout.checkpoint import checkpoint_path
from .distributed import DistContext

__all__ = ["first_bad_step", "weights_finite", "non_finite_error"]


def first_bad_step(values: torch.Tensor, first_step: int, ctx: DistContext) -> int:
    """The first step (1-based, global) of ``values`` (steps x [loss, *terms]) holding NaN/inf on
    any rank, else 0. Every rank takes part, so that all of them stop together."""
    bad = (~torch.isfinite(values)).any(dim=1).nonzero()
    step = first_step + int(bad[0]) if len(bad) else 0
    if ctx.distributed:
        flag = torch.tensor([step or 2**62], dtype=torch.int64, device=ctx.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        step = int(flag) if int(flag) != 2**62 else 0
    return step


def weights_finite(model: torch.nn.Module, ctx: DistContext) -> bool:
    finite = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()
    if ctx.distributed:
        flag = finite.to(torch.int64).reshape(1)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        finite = flag[0].bool()
    return bool(finite)


def non_finite_error(what: str, step: int, steps_per_epoch: int, out: Path,
                     last_checkpoint_step: Optional[int]) -> NonFiniteLossError:
    """The error to stop with: which step of which epoch, and which checkpoint is kept."""
    epoch, batch = (step - 1) // steps_per_epoch + 1, (step - 1) % steps_per_epoch + 1
    path = checkpoint_path(out)
    if last_checkpoint_step is not None and path.is_file():
        kept = (f"The last good checkpoint (step {last_checkpoint_step}) is kept at {path}; "
                f"continue from it with --resume {out} and a smaller trainer.optimizer.lr or a "
                f"trainer.grad_clip.")
    else:
        kept = "No checkpoint was written before it (lower trainer.checkpoint_every to keep one sooner)."
    message = (f"training stopped: {what} (epoch {epoch}, batch {batch} of {steps_per_epoch}). {kept} "
               f"Nothing after step {last_checkpoint_step or 0} was saved.")
    return NonFiniteLossError(message, step, path if path.is_file() else None)
