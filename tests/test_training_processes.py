"""Training across processes: SIGKILL + resume is bit-exact; 2-process DDP matches one process.

Both run the real CLI in subprocesses (``tests/training_entry.py`` adds the tiny test parts),
because a kill and a process group are only honest across real processes.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import vaezoo

from vaezoo.layout.checkpoint import load_checkpoint
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()

ENTRY = Path(__file__).with_name("training_entry.py")


def _env(**extra) -> dict[str, str]:
    env = {**os.environ, "CI": "1", **extra}
    env.pop("VAEZOO_TEST_HANG_AT_STEP", None)
    env.update(extra)
    return env


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it, then wait until they are gone."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    for member in tree[1:]:  # the test waits for its own child; the others are reaped by nobody here
        for _ in range(100):
            try:
                state = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                break
            if state == "Z":
                break
            time.sleep(0.05)


def sigkill_after_checkpoint(config: Path, out: Path, step: int) -> None:
    """Train ``config`` into ``out`` in a subprocess and SIGKILL it right after step ``step``'s checkpoint."""
    proc = subprocess.Popen([sys.executable, str(ENTRY), "train", str(config), "--out", str(out)],
                            env=_env(VAEZOO_TEST_HANG_AT_STEP=str(step)), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"CHECKPOINTED {step}", line
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()


def train_on_two_processes(config: Path, out: Path) -> subprocess.CompletedProcess:
    """``vaezoo train CONFIG --out OUT`` under torchrun on two CPU processes (gloo); it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(ENTRY), "train", str(config), "--out", str(out)],
        env=_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_sigkill_mid_epoch_then_resume_is_bit_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    # Dynamic binarization, a KL warm-up, a cosine schedule with warm-up, clipping and a moving
    # average of the weights (what the run exports): every piece of state that a resume must restore is in play.
    config = tiny_config(
        epochs=3, checkpoint_every=4, kl_warmup_epochs=1.5, grad_clip=5.0, ema_decay=0.9,
        optimizer={"name": "adamw", "lr": 3e-3, "weight_decay": 1e-3},
        scheduler={"name": "cosine", "warmup_steps": 3, "min_lr_ratio": 0.1},
    )
    config["data"]["binarize"] = "dynamic"
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    whole, broken = tmp_path / "whole", tmp_path / "broken"

    # The uninterrupted run and the resume run in this process; only the killed one needs its own.
    vaezoo.train(path, out=whole, stream=io.StringIO())

    # Step 8 is batch 2 of 6 in epoch 2: the process dies mid-epoch, right after that checkpoint.
    sigkill_after_checkpoint(path, broken, step=8)
    assert not (broken / "model.safetensors").exists()  # it really did not finish
    state = load_checkpoint(broken).state
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (8, 1, 2)

    vaezoo.train(resume=broken, stream=io.StringIO())

    a, b = _weights(whole), _weights(broken)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    ma, mb = read_metrics(whole), read_metrics(broken)
    assert [r["epoch"] for r in mb] == [1, 2, 3]
    for key in ("train_loss", "val_neg_elbo", "test_neg_elbo"):
        assert [r[key] for r in ma] == [r[key] for r in mb], key


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_ddp_two_cpu_processes_match_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    # The mean-latent objective has no sampling noise: per-rank RNG streams cannot differ from
    # the single process's, so what is compared is the sharding, the gradient averaging and
    # the optimizer, which is what DDP must get right.
    config = tiny_config("test-mean-latent-elbo", epochs=2, checkpoint_every=5,
                         scheduler={"name": "cosine", "warmup_steps": 2}, grad_clip=10.0)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    printed = io.StringIO()
    vaezoo.train(path, out=single, stream=printed)
    result = train_on_two_processes(path, ddp)
    assert "on 2 processes" in result.stderr  # rank 0 reported a 2-process run
    a, b = _weights(single), _weights(ddp)
    torch.manual_seed(0)
    init = vaezoo.create(config).state_dict()
    for key in a:
        assert not torch.equal(a[key], init[key]) or key.endswith("log_sigma"), f"{key} did not train"
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    ms, md = read_metrics(single), read_metrics(ddp)
    assert [r["step"] for r in md] == [6, 12]  # the same number of global steps: the same global batch
    for rs, rd in zip(ms, md):
        assert rd["test_neg_elbo"] == pytest.approx(rs["test_neg_elbo"], rel=1e-5)
        assert rd["train_loss"] == pytest.approx(rs["train_loss"], rel=1e-5)
    # the progress lines show the loss of the global batch, not of rank 0's half of it
    shown_single, shown_ddp = _progress_losses(printed.getvalue()), _progress_losses(result.stderr)
    assert len(shown_ddp) >= 6 and set(shown_ddp) <= set(shown_single), (printed.getvalue(), result.stderr)
    # the same windows of steps after the first log step (one process reported step 1 alone before it)
    later = [step for step in shown_ddp if step > min(shown_ddp)]
    assert [shown_ddp[s] for s in later] == pytest.approx([shown_single[s] for s in later], rel=1e-4)


def _progress_losses(text: str) -> dict[int, float]:
    """{global step: loss} of the progress lines (one process also reports after its first step
    and every 10 s; the processes of a DDP run report at the log steps only)."""
    return {int(line.split("(global ")[1].split(")")[0]): float(line.split("  loss ")[1].split()[0])
            for line in text.splitlines() if "  loss " in line and "(global " in line}


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_ddp_beta_tcvae_estimates_q_z_over_the_global_batch(tmp_path, monkeypatch):
    """beta-TCVAE's minibatch estimate of q(z) uses every posterior of the batch: 2 processes with
    half the batch each must train as one process does (each would see 16 posteriors, not 32,
    without the gather)."""
    monkeypatch.setenv("CI", "1")
    config = tiny_config({"name": "test-mean-latent-tcvae", "beta": 6.0}, epochs=1)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    vaezoo.train(path, out=single, stream=io.StringIO())
    train_on_two_processes(path, ddp)
    a, b = _weights(single), _weights(ddp)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    (rs,), (rd,) = read_metrics(single), read_metrics(ddp)
    for key in ("train_loss", "train_term/tc", "train_term/mi"):
        assert rd[key] == pytest.approx(rs[key], rel=1e-5), key


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_ddp_kill_mid_epoch_and_resume_keeps_the_epoch_losses(tmp_path, monkeypatch):
    """Each rank sums its own losses over an epoch; a resumed 2-process run must report the same
    epoch means as an uninterrupted one (each rank once, not rank 0's sums counted twice)."""
    monkeypatch.setenv("CI", "1")
    config = tiny_config("test-mean-latent-elbo", epochs=2, checkpoint_every=4)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    whole, broken = tmp_path / "whole", tmp_path / "broken"

    def torchrun(*args, **extra):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                str(ENTRY), "train", *args]

    done = subprocess.run(torchrun(str(path), "--out", str(whole)), env=_env(OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    # step 4 of the 6 in epoch 1: rank 0 writes the checkpoint, then the whole job is killed
    proc = subprocess.Popen(torchrun(str(path), "--out", str(broken)), env=_env(OMP_NUM_THREADS="1",
                            VAEZOO_TEST_HANG_AT_STEP="4"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "CHECKPOINTED 4", line
    finally:
        # torchrun's workers may live in their own process groups: kill the whole tree, or the
        # orphaned workers would go on holding the run folder
        _kill_tree(proc.pid)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert load_checkpoint(broken).state["step_in_epoch"] == 4
    resumed = subprocess.run(torchrun("--resume", str(broken)), env=_env(OMP_NUM_THREADS="1"),
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    mw, mb = read_metrics(whole), read_metrics(broken)
    assert [r["epoch"] for r in mb] == [1, 2]
    for rw, rb in zip(mw, mb):
        for key in ("train_loss", "train_recon", "train_kl"):
            assert rb[key] == pytest.approx(rw[key], rel=1e-6), (rw["epoch"], key)


def test_sigterm_writes_a_checkpoint_and_the_resume_is_bit_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    config = tiny_config(epochs=2, checkpoint_every=100, log_every=2)  # no step checkpoint would come in time
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    vaezoo.train(path, out=whole, stream=io.StringIO())
    result = subprocess.run([sys.executable, str(ENTRY), "train", str(path), "--out", str(stopped)],
                            env=_env(VAEZOO_TEST_SIGTERM_AT_STEP="3"), capture_output=True, text=True, timeout=240)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-2000:]
    assert f"training stopped by SIGTERM after step 4; its checkpoint is in {stopped}" in result.stderr
    assert load_checkpoint(stopped).state["global_step"] == 4  # the next log step after the signal
    vaezoo.train(resume=stopped, stream=io.StringIO())
    a, b = _weights(whole), _weights(stopped)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_checkpoints_and_stops_and_a_second_one_stops_at_once(tmp_path, monkeypatch):
    """Ctrl-C in a training: the first one checkpoints at the next progress line and stops with one
    line (exit status 130, as a shell reports SIGINT); a second one stops at once, also in one line."""
    monkeypatch.setenv("CI", "1")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=2, checkpoint_every=100, log_every=2)))
    once, twice = tmp_path / "once", tmp_path / "twice"
    result = subprocess.run([sys.executable, str(ENTRY), "train", str(path), "--out", str(once)],
                            env=_env(VAEZOO_TEST_SIGINT_AT_STEPS="3"), capture_output=True, text=True, timeout=240)
    assert result.returncode == 128 + signal.SIGINT, result.stderr[-2000:]
    assert f"error: training stopped by Ctrl-C after step 4; its checkpoint is in {once}" in result.stderr
    assert "Traceback" not in result.stderr
    assert load_checkpoint(once).state["global_step"] == 4
    result = subprocess.run([sys.executable, str(ENTRY), "train", str(path), "--out", str(twice)],
                            env=_env(VAEZOO_TEST_SIGINT_AT_STEPS="3,4"), capture_output=True, text=True, timeout=240)
    assert result.returncode == 128 + signal.SIGINT, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("stopped by Ctrl-C: the run folder keeps its last")
