"""The training loop in-process: the API, the CLI run folder, NaN stop, atomic checkpoints, plain progress."""

from __future__ import annotations

import io
import json
import os
import re

import pytest
import torch
import yaml

import vaezoo
from vaezoo.cli import main
from vaezoo.training import NonFiniteLossError
from vaezoo.layout.checkpoint import (
    atomic_write_bytes, checkpoint_path, load_checkpoint, save_checkpoint,
)
from vaezoo.training.loader import DeviceLoader, HostLoader, epoch_permutation
from vaezoo.training.recipe import lr_lambda, wants_channels_last
from vaezoo.training.progress import use_bar
from vaezoo.schemas import SchedulerConfig

from _tiny_training import register, tiny_config

register()


@pytest.fixture
def ci_env(monkeypatch):
    monkeypatch.setenv("CI", "1")


def _png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_train_writes_hub_layout_run_that_loads(tmp_path, ci_env, capsys, fashion_mnist_dir):
    """`vaezoo train` on real Fashion-MNIST (a tiny MLP, 3 steps) leaves a folder vaezoo.load reads."""
    out = tmp_path / "run"
    rc = main(["train", "fashion-mlp16", "--out", str(out), "--data", str(fashion_mnist_dir),
               "--set", "model.encoder.hidden=[32]", "--set", "model.decoder.hidden=[32]",
               "--set", "trainer.max_steps=3", "--set", "trainer.batch_size=64", "--set", "data.val_size=500"])
    assert rc == 0, capsys.readouterr().err
    for name in ("config.json", "model.safetensors", "README.md", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert _png(out / "loss.png") and _png(out / "samples.png")
    assert checkpoint_path(out).is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["step"] == 3 and records[0]["partial"] is True
    for key in ("train_loss", "val_neg_elbo", "test_neg_elbo", "train_kl", "train_recon", "img_per_s",
                "wall_time_s", "lr"):
        assert isinstance(records[0][key], float) and records[0][key] == records[0][key], key
    model = vaezoo.load(out)
    assert isinstance(model, vaezoo.VAE) and not model.training
    assert model.sample(2).shape == (2, 1, 28, 28)
    # the saved weights are the trained ones, not a fresh initialization
    fresh = vaezoo.create("fashion-mlp16", **{"encoder.hidden": [32], "decoder.hidden": [32]})
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))


def test_api_train_resume_extends_run_and_refuses_to_overwrite(tmp_path, ci_env):
    out = tmp_path / "run"
    model, metrics = vaezoo.train(tiny_config(), out=out, stream=io.StringIO())
    assert metrics["epoch"] == 2 and metrics["step"] == 12 and "partial" not in metrics
    with pytest.raises(vaezoo.training.CheckpointError, match="already holds a training run"):
        vaezoo.train(tiny_config(), out=out, stream=io.StringIO())
    # resume with no config: it comes from the checkpoint; only the epoch count changes
    model, metrics = vaezoo.train(overrides={"trainer.epochs": 3}, resume=out, stream=io.StringIO())
    assert metrics["epoch"] == 3 and metrics["step"] == 18
    assert [r["epoch"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())] == [1, 2, 3]
    # a different architecture cannot continue this run
    with pytest.raises(vaezoo.training.CheckpointError, match="model.latent_dim: 3 here, 4 in the checkpoint"):
        vaezoo.train(tiny_config(), overrides={"model.latent_dim": 3}, resume=out, stream=io.StringIO())


def test_nan_stops_naming_the_step_and_keeps_last_good_checkpoint(tmp_path, ci_env):
    out = tmp_path / "run"
    config = tiny_config({"name": "test-nan-at-step", "at_step": 5}, checkpoint_every=3, log_every=100)
    with pytest.raises(NonFiniteLossError) as info:
        vaezoo.train(config, out=out, stream=io.StringIO())
    message = str(info.value)
    assert "step 5" in message and "(step 3)" in message and str(checkpoint_path(out)) in message
    assert info.value.step == 5
    checkpoint = load_checkpoint(out)
    assert checkpoint.step == 3
    assert all(torch.isfinite(t).all() for t in checkpoint.model.values())
    # the kept checkpoint restores into the model
    vaezoo.create(config).load_state_dict(checkpoint.model)


def test_nan_stop_through_cli_exits_1_with_message(tmp_path, ci_env, capsys):
    config = tiny_config({"name": "test-nan-at-step", "at_step": 2}, checkpoint_every=100)
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "step 2" in err and "No checkpoint was written" in err and "Traceback" not in err


def test_atomic_write_crash_leaves_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old contents")

    def crash(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)  # the writer dies after writing, before the rename
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_bytes(target, b"new contents" * 1000)
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]  # no temp file left behind


def test_checkpoint_never_half_written(tmp_path, monkeypatch):
    """A crash while replacing a checkpoint leaves the previous one whole and loadable."""
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    rng = {"torch_cpu.rank0": torch.get_rng_state()}
    save_checkpoint(tmp_path, model=model, optimizers={"model": opt}, rng=rng, state={"global_step": 1})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    real_replace = os.replace

    def crash(src, dst):
        raise KeyboardInterrupt  # like a kill at the worst moment: the new file exists only as a temp

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model=model, optimizers={"model": opt}, rng=rng, state={"global_step": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.step == 1
    assert all(torch.equal(checkpoint.model[k], v) for k, v in saved.items())
    # the optimizer state round-trips through safetensors + JSON
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    fresh.load_state_dict(checkpoint.optimizers["model"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_plain_progress_under_ci(tmp_path, ci_env):
    stream = io.StringIO()
    vaezoo.train(tiny_config(epochs=1), out=tmp_path / "run", stream=stream)
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text  # no tqdm redraws, no ANSI codes
    assert re.search(r"^epoch 1/1  step 2/6 \(global 2\)  loss [\d.]+  -elbo [\d.]+ .* img/s", text, re.M)
    assert re.search(r"^epoch 1/1 done: train loss [\d.]+  val -elbo [\d.]+  test -elbo [\d.]+", text, re.M)


def test_bar_only_on_a_terminal_outside_ci():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert use_bar(Tty(), env={}) is True
    assert use_bar(Tty(), env={"CI": "true"}) is False
    assert use_bar(io.StringIO(), env={}) is False


def test_loaders_agree_and_shard_the_global_batch():
    images = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    labels = torch.arange(50)  # each image's index: the labels must travel with their images
    device = torch.device("cpu")
    single = DeviceLoader(images, 10, device=device, seed=3, labels=labels)
    assert single.steps_per_epoch == 5
    batches = list(single.batches(epoch=1))
    order = epoch_permutation(50, 3, 1)
    assert torch.equal(batches[2].x, images[order[20:30]].float() / 255)
    assert torch.equal(batches[2].y, order[20:30])
    assert not torch.equal(order, epoch_permutation(50, 3, 2))  # a new order every epoch
    # resuming at step 3 yields the same remaining batches
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
               for a, b in zip(single.batches(1, start_step=3), batches[3:]))
    # two ranks: each takes its half of every global batch; together they are the global batch
    ranks = [list(DeviceLoader(images, 10, device=device, seed=3, rank=r, world_size=2, labels=labels).batches(1))
             for r in (0, 1)]
    assert all(torch.equal(torch.cat([a.x, b.x]), g.x) and torch.equal(torch.cat([a.y, b.y]), g.y)
               for a, b, g in zip(*ranks, batches))
    # the DataLoader fallback (workers, whole-batch fetches) delivers the same batches
    host = list(HostLoader(images, 10, device=device, seed=3, num_workers=1, labels=labels).batches(1))
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(host, batches))
    # without labels a batch carries none
    assert next(DeviceLoader(images, 10, device=device, seed=3).batches(1)).y is None
    with pytest.raises(ValueError, match="divide evenly"):
        DeviceLoader(images, 10, device=device, seed=3, rank=0, world_size=3)


def test_dynamic_binarization_is_fresh_per_epoch_and_repeatable():
    images = torch.full((8, 1, 4, 4), 128, dtype=torch.uint8)
    loader = DeviceLoader(images, 8, device=torch.device("cpu"), seed=0, binarize="dynamic")
    a, b, a_again = next(loader.batches(0)).x, next(loader.batches(1)).x, next(loader.batches(0)).x
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, b) and torch.equal(a, a_again)


def test_lr_schedule_warmup_then_cosine_to_floor():
    f = lr_lambda(SchedulerConfig(name="cosine", warmup_steps=4, min_lr_ratio=0.1), total_steps=14)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(9) == pytest.approx(0.55) and f(14) == pytest.approx(0.1) and f(100) == pytest.approx(0.1)


def test_micro_batches_give_the_same_training(tmp_path, ci_env):
    # The deterministic objective: with sampling, chunks would draw the noise in another order.
    config = tiny_config("test-mean-latent-elbo", epochs=1)
    whole, _ = vaezoo.train(config, out=tmp_path / "whole", stream=io.StringIO())
    chunked, metrics = vaezoo.train(config, overrides={"trainer.micro_batch_size": 5}, out=tmp_path / "chunked",
                                    stream=io.StringIO())
    torch.manual_seed(0)
    moved = vaezoo.create(config)  # freshly initialized: training must have changed the weights
    for (name, a), b in zip(whole.state_dict().items(), chunked.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    assert any(not torch.allclose(a, b) for a, b in zip(whole.state_dict().values(), moved.state_dict().values()))
    assert metrics["step"] == 6  # still one optimizer step per batch of 32


def test_channels_last_auto_skips_groupnorm_models_on_cpu():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    resnet = vaezoo.create("fashion-resnet32")  # GroupNorm: channels-last is slower on the CPU
    conv = vaezoo.create("fashion-conv64")
    mlp = vaezoo.create("fashion-mlp16")
    assert not wants_channels_last("auto", resnet, cpu) and wants_channels_last("auto", resnet, cuda)
    assert wants_channels_last("auto", conv, cpu) and not wants_channels_last("auto", mlp, cpu)
    assert wants_channels_last("on", resnet, cpu) and not wants_channels_last("off", conv, cuda)


def test_a_nan_in_any_term_stops_training(tmp_path, ci_env):
    # the loss stays finite; only the reported KL of a level turns NaN
    with pytest.raises(NonFiniteLossError, match="at step 2"):
        vaezoo.train(tiny_config("test-nan-term-at-step", family="hvae"), out=tmp_path / "nan", stream=io.StringIO())


def test_every_term_reaches_the_progress_the_metrics_and_the_loss_plot(tmp_path, ci_env):
    stream = io.StringIO()
    vaezoo.train(tiny_config(family="hvae", epochs=1), out=tmp_path / "h", stream=stream)
    record = json.loads((tmp_path / "h" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train_term/recon", "train_term/kl/z1", "train_term/kl/z2", "val_term/kl/z1", "val_term/kl/z2"} <= set(record)
    assert record["train_kl"] == pytest.approx(record["train_term/kl/z1"] + record["train_term/kl/z2"])
    assert record["train_neg_elbo"] == pytest.approx(record["train_recon"] + record["train_kl"])
    assert re.search(r"recon [\d.]+  kl/z1 [\d.]+  kl/z2 [\d.]+", stream.getvalue())
    assert _png(tmp_path / "h" / "loss.png")
    assert vaezoo.load(tmp_path / "h").family == "hvae"


def test_trial_runs_validate_on_a_subset_and_test_at_the_end_or_never(tmp_path, ci_env, monkeypatch):
    from vaezoo.training.loop import Trainer

    scored = []
    original = Trainer._evaluate

    def spy(self, run, split, tag, title):
        scored.append(("val" if tag == 1 else "test", int(split[0].shape[0])))
        return original(self, run, split, tag, title)

    monkeypatch.setattr(Trainer, "_evaluate", spy)
    vaezoo.train(tiny_config(epochs=2, val_limit=16, test="end"), out=tmp_path / "end", stream=io.StringIO())
    assert scored == [("val", 16), ("val", 16), ("test", 64)]
    records = [json.loads(line) for line in (tmp_path / "end" / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["test_neg_elbo"] is None and records[1]["test_neg_elbo"] > 0
    scored.clear()
    vaezoo.train(tiny_config(epochs=1, test="never"), out=tmp_path / "never", stream=io.StringIO())
    assert scored == [("val", 64)]
    config = json.loads((tmp_path / "never" / "config.json").read_text())
    assert "test_neg_elbo" not in config["metrics"] and config["metrics"]["val_neg_elbo"]["num_examples"] == 64


def test_the_kl_weight_is_one_device_tensor_updated_in_place(tmp_path, ci_env, monkeypatch):
    from vaezoo.parts.objectives import ELBO

    seen = []
    original = ELBO.forward

    def spy(self, model, x, y=None, context=None):
        if self.training:
            seen.append((context.kl_scale, float(context.kl_scale), next(model.parameters()).device))
        return original(self, model, x, y, context)

    monkeypatch.setattr(ELBO, "forward", spy)
    vaezoo.train(tiny_config(epochs=1, kl_warmup_epochs=1.0), out=tmp_path / "kl", stream=io.StringIO())
    tensors = {id(t) for t, _, _ in seen}
    assert len(seen) == 6 and len(tensors) == 1  # one tensor for the whole run: nothing built per step
    assert all(isinstance(t, torch.Tensor) and t.device == device and t.dim() == 0 for t, _, device in seen)
    assert [round(v, 6) for _, v, _ in seen] == [round(i / 6, 6) for i in range(6)]  # the warm-up ramp


def test_checkpoints_by_time_and_the_determinism_switch(tmp_path, ci_env, monkeypatch):
    import vaezoo.training.loop as loop
    from vaezoo.parts.objectives import ELBO

    saved, deterministic = [], []
    save = loop.save_run_checkpoint
    monkeypatch.setattr(loop, "save_run_checkpoint", lambda run, out: (saved.append(run.state.global_step),
                                                                     save(run, out)))
    original = ELBO.forward
    monkeypatch.setattr(ELBO, "forward", lambda self, *a, **k: (deterministic.append(
        torch.are_deterministic_algorithms_enabled()), original(self, *a, **k))[1])
    vaezoo.train(tiny_config(epochs=2, checkpoint_every=2), out=tmp_path / "often", stream=io.StringIO())
    assert saved == [2, 4, 6, 8, 10, 12] and not any(deterministic)
    saved.clear()
    deterministic.clear()
    # an hour between checkpoints: none mid-run, only the last one
    vaezoo.train(tiny_config(epochs=2, checkpoint_every=2, checkpoint_minutes=60, deterministic=True),
                 out=tmp_path / "rarely", stream=io.StringIO())
    assert saved == [12] and all(deterministic)
    assert not torch.are_deterministic_algorithms_enabled()  # as it was before training


def test_a_trial_shorter_than_its_warm_ups_says_so_at_its_start(tmp_path, ci_env):
    """A 1-epoch trial of a recipe with a 4-epoch KL warm-up trains with the KL weight at a quarter:
    the run says so, with the override that makes a short trial meaningful; a full run says nothing."""
    printed = io.StringIO()
    config = tiny_config(epochs=1, kl_warmup_epochs=4, scheduler={"name": "constant", "warmup_steps": 100})
    vaezoo.train(config, out=tmp_path / "trial", stream=printed)
    text = printed.getvalue()
    assert "note: this run trains 1 epoch inside its 4-epoch KL warm-up (trainer.kl_warmup_epochs): the KL " \
           "weight ends at 0.25" in text and "--set trainer.kl_warmup_epochs=0" in text
    assert "6 steps inside its 100-step learning-rate warm-up" in text
    printed = io.StringIO()
    vaezoo.train(tiny_config(epochs=2, kl_warmup_epochs=2), out=tmp_path / "full", stream=printed)
    assert "warm-up" not in printed.getvalue()
