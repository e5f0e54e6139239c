"""The training step on its own: no host-device sync inside it, and one gradient all-reduce per step."""

from __future__ import annotations

import os
import socket
import sys

import pytest
import torch
from torch import nn

import vaezoo
from vaezoo.passes import StepContext
from vaezoo.training.loader import Batch
from vaezoo.training.recipe import build_optimizer
from vaezoo.training.step import train_step

from _tiny_training import register, tiny_config

register()
PACKAGE = os.path.dirname(vaezoo.__file__) + os.sep  # as the import system names its files


def _setup(**model):
    torch.manual_seed(0)
    config = tiny_config(objective={"name": "elbo", "free_bits": 0.01})
    config["model"].update(model)
    net = vaezoo.create(config)
    optimizer = build_optimizer(net.parameters(), vaezoo.get_config(config).trainer.optimizer, torch.device("cpu"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return net, optimizer, scheduler


def _from_vaezoo() -> bool:
    """Whether the call being counted comes from vaezoo's own code (torch's CPU optimizers read
    their CPU-side step counters with .item(): on a GPU, fused Adam does not)."""
    frame = sys._getframe(2)
    return frame.f_code.co_filename.startswith(PACKAGE)  # not "/vaezoo/" in it: a clone is often named vaezoo too


def test_a_step_reads_nothing_back_to_the_host(monkeypatch):
    """A sync added to the step later (.item(), .cpu(), .tolist(), bool(tensor), a tensor built from a
    Python number) in vaezoo's step, objective or model fails here: on a GPU each one stalls the
    pipeline every step."""
    net, optimizer, scheduler = _setup()
    batch = Batch(torch.rand(32, 1, 8, 8))
    context = StepContext(torch.ones(()), 0, 192)
    calls = []
    for name in ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            if _from_vaezoo():
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    build = torch.tensor

    def counting_tensor(*args, **kwargs):
        if _from_vaezoo():
            calls.append("torch.tensor")
        return build(*args, **kwargs)

    monkeypatch.setattr(torch, "tensor", counting_tensor)
    for step in range(3):
        row, names = train_step(net, {"model": optimizer}, {"model": scheduler}, batch, context, micro_batch_size=16,
                                grad_clip=5.0, autocast_dtype=None, device_type="cpu")
    monkeypatch.undo()
    assert calls == [], sorted(set(calls))
    assert names == ["recon", "kl"] and row.shape == (3,)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Compiled(nn.Module):
    """What torch.compile returns, as far as the step is concerned: the original module under `_orig_mod`."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self._orig_mod = module

    def forward(self, *args, **kwargs):
        return self._orig_mod(*args, **kwargs)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_micro_batches_all_reduce_once_per_step_even_under_compile():
    from torch.nn.parallel import DistributedDataParallel

    assert hasattr(torch.compile(nn.Linear(1, 1)), "_orig_mod")  # the attribute the step looks through
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        model, optimizer, scheduler = _setup()
        ddp = DistributedDataParallel(model, bucket_cap_mb=1000)  # one bucket: one all-reduce per sync
        reduces = []

        def count(state, bucket):
            reduces.append(1)
            future = torch.futures.Future()
            future.set_result(bucket.buffer())
            return future

        ddp.register_comm_hook(None, count)
        batch = Batch(torch.rand(32, 1, 8, 8))
        for net in (ddp, Compiled(ddp)):
            reduces.clear()
            for _ in range(2):
                train_step(net, {"model": optimizer}, {"model": scheduler}, batch, StepContext(), micro_batch_size=8,
                           grad_clip=None, autocast_dtype=None, device_type="cpu")
            assert len(reduces) == 2, (type(net).__name__, len(reduces))  # 4 micro-batches, one all-reduce a step
    finally:
        torch.distributed.destroy_process_group()
