"""The device-path choices a CPU can check: precision, memory-format words, what DDP moves,
batch statistics, the img/s that leaves compilation out, cuDNN flags, and a compiled step that
CUDA graphs can capture (no recompiles as the KL weight moves)."""

from __future__ import annotations

import io
import socket

import pytest
import torch
import yaml
from torch import nn

import vaezoo
from vaezoo.parts.objectives import ELBO
from vaezoo.schemas import TrainerConfig
from vaezoo.training.distributed import DistContext
from vaezoo.training.recipe import resolve_precision
from vaezoo.training.records import read_metrics
from vaezoo.training.setup import batch_statistics_plan, syncs_buffers, wrap_ddp

from _tiny_training import register, tiny_config

register()
CUDA = torch.device("cuda", 0)


@pytest.fixture
def ci_env(monkeypatch):
    monkeypatch.setenv("CI", "1")


def test_precision_auto_takes_bf16_only_where_the_gpu_has_it_natively(monkeypatch):
    mlp = vaezoo.create("fashion-mlp16")
    # A pre-Ampere GPU: torch reports bf16 as supported when emulation counts, not natively.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", CUDA, mlp) is None
    assert resolve_precision("bf16", CUDA, mlp) is torch.bfloat16  # asked for: given
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", CUDA, mlp) is torch.bfloat16


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_on_a_cpu_takes_bf16_for_convolutions_where_it_is_native(monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    cpu = torch.device("cpu")
    conv, mlp = vaezoo.create("fashion-conv64"), vaezoo.create("fashion-mlp16")
    assert resolve_precision("auto", cpu, conv) is (torch.bfloat16 if native else None)
    assert resolve_precision("auto", cpu, mlp) is None  # dense models keep float32 steps
    assert resolve_precision("fp32", cpu, conv) is None
    assert resolve_precision("bf16", cpu, mlp) is torch.bfloat16


def test_the_start_line_says_when_a_run_is_under_bf16(tmp_path, ci_env):
    lines = {}
    for precision in ("fp32", "bf16"):
        stream = io.StringIO()
        vaezoo.train(tiny_config(epochs=1, precision=precision), out=tmp_path / precision, stream=stream)
        lines[precision] = stream.getvalue().splitlines()[0]
    assert "bf16 autocast" in lines["bf16"] and "bf16" not in lines["fp32"]


def test_on_off_and_true_false_mean_the_words():
    # YAML 1.1 reads `on` as True: `--set trainer.channels_last=on` must not be a type error.
    cfg = TrainerConfig(**yaml.safe_load("channels_last: on\ncompile: true"))
    assert (cfg.channels_last, cfg.compile) == ("on", "default")
    cfg = TrainerConfig(**yaml.safe_load("channels_last: off\ncompile: false"))
    assert (cfg.channels_last, cfg.compile) == ("off", "off")
    assert vaezoo.get_config(tiny_config(), {"trainer.compile": "reduce-overhead"}).trainer.compile == "reduce-overhead"
    with pytest.raises(ValueError, match="reduce-overhead"):
        TrainerConfig(compile="fast")


def _syncs_buffers(ddp) -> bool:
    """Whether DDP broadcasts rank 0's buffers before each forward (renamed in torch 2.14)."""
    return getattr(ddp, "forward_sync_buffers", None) if hasattr(ddp, "forward_sync_buffers") else ddp.broadcast_buffers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_ddp_broadcasts_buffers_only_for_batch_norm_running_statistics():
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        vae = vaezoo.create(tiny_config())  # the prior's loc and scale are buffers, and constant
        assert list(vae.buffers())
        assert _syncs_buffers(wrap_ddp(vae, torch.device("cpu"))) is False
        batch_norm = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        assert _syncs_buffers(wrap_ddp(batch_norm, torch.device("cpu"))) is True  # rank 0's running stats
        # SyncBatchNorm (GPUs only, so not wrapped here) keeps its running statistics equal itself
        synced = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
        assert syncs_buffers(batch_norm) is True and syncs_buffers(synced) is False
    finally:
        torch.distributed.destroy_process_group()


def test_batch_statistics_are_the_global_batch_on_gpus_and_said_where_not():
    two_gpus = DistContext(rank=0, world_size=2, device=CUDA)
    model, notes = batch_statistics_plan(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), two_gpus, None)
    assert isinstance(model[1], nn.SyncBatchNorm) and notes == []
    two_cpus = DistContext(rank=0, world_size=2)
    model, notes = batch_statistics_plan(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), two_cpus, None)
    assert type(model[1]) is nn.BatchNorm1d and len(notes) == 1 and "per process" in notes[0]
    tcvae = vaezoo.create(tiny_config({"name": "beta-tcvae", "dataset_size": 192}))
    assert batch_statistics_plan(tcvae, DistContext(), None)[1] == []
    (note,) = batch_statistics_plan(tcvae, DistContext(), 8)[1]
    assert "the objective" in note and "micro_batch_size" in note
    assert batch_statistics_plan(vaezoo.create(tiny_config()), DistContext(), 8)[1] == []  # the ELBO: no note


def test_the_epoch_img_per_s_leaves_the_first_step_out(tmp_path, ci_env, monkeypatch):
    import time

    import vaezoo.training.loop as loop

    step, calls = loop.train_step, []

    def slow_first(*args, **kwargs):  # what a compile or cuDNN autotuning does to the first step
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.5)
        return step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", slow_first)
    vaezoo.train(tiny_config(epochs=2), out=tmp_path / "run", stream=io.StringIO())
    first, second = read_metrics(tmp_path / "run")
    assert first["first_step_s"] >= 0.5 and "first_step_s" not in second
    assert first["img_per_s"] == pytest.approx(5 * 32 / (first["epoch_time_s"] - first["first_step_s"]), rel=1e-6)
    assert second["img_per_s"] == pytest.approx(6 * 32 / second["epoch_time_s"], rel=1e-6)


def test_cudnn_benchmark_is_on_while_training_and_as_it_was_after(tmp_path, ci_env, monkeypatch):
    seen, original = [], ELBO.forward
    monkeypatch.setattr(ELBO, "forward", lambda self, *a, **k: (seen.append(torch.backends.cudnn.benchmark),
                                                                original(self, *a, **k))[1])
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    vaezoo.train(tiny_config(epochs=1), out=tmp_path / "run", stream=io.StringIO())
    assert seen and all(seen)
    assert torch.backends.cudnn.benchmark is False  # the user's process is left as it was


def test_the_compiled_step_is_captured_once_however_the_kl_weight_moves(tmp_path, ci_env, monkeypatch):
    """``compile: reduce-overhead`` trains like eager, and the KL warm-up (a new weight each step)
    and the step counter recompile nothing: what CUDA graphs need to replay one captured step."""
    import torch._dynamo

    torch._dynamo.reset()
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    # Without sampling noise: compiled code draws its random numbers its own way.
    settings = dict(epochs=1, kl_warmup_epochs=1.0, log_every=3)
    vaezoo.train(tiny_config("test-mean-latent-elbo", **settings), out=tmp_path / "eager", stream=io.StringIO())
    compiled = tiny_config("test-mean-latent-elbo", **settings, compile="reduce-overhead")
    vaezoo.train(compiled, out=tmp_path / "compiled", stream=io.StringIO())
    torch._dynamo.reset()
    (eager,), (graph,) = read_metrics(tmp_path / "eager"), read_metrics(tmp_path / "compiled")
    assert graph["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-4)
    assert graph["val_neg_elbo"] == pytest.approx(eager["val_neg_elbo"], rel=1e-4)
