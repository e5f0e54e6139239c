"""`vaezoo info RUN` on a training that has not ended: where it stands, who trains it, the time left."""

from __future__ import annotations

import io
import json
import os

import pytest
from safetensors.torch import load_file

import vaezoo
from vaezoo.cli import main
from vaezoo.errors import CheckpointError, UsageError
from vaezoo.layout.checkpoint import save_best_weights
from vaezoo.layout.lock import holder, run_folder_lock
from vaezoo.training.peek import best_model_so_far
from vaezoo.viz.images import sample_grid
from vaezoo.training.status import epoch_overhead_s, read_run_status, run_seconds_left

from _tiny_training import register, tiny_config

register()


@pytest.fixture
def unfinished_run(tmp_path, monkeypatch):
    """A tiny run stopped after 2 of 6 epochs: its checkpoint and its best epoch's weights, no config.json
    (a training writes that at its end)."""
    monkeypatch.setenv("CI", "1")
    out = tmp_path / "run"
    vaezoo.train(tiny_config(epochs=2, select="best_val"), out=out, stream=io.StringIO())
    (out / "config.json").unlink()
    sidecar = out / "checkpoints" / "last.json"
    state = json.loads(sidecar.read_text())
    state["experiment"]["trainer"]["epochs"] = 6
    sidecar.write_text(json.dumps(state))
    return out


def test_a_stopped_run_says_where_it_is_and_how_to_continue(unfinished_run, capsys):
    status = read_run_status(unfinished_run)
    history = status.history
    assert status.finished_epochs == 2 and status.writer is None and status.epochs == 6
    pace = history[1]["wall_time_s"] - history[0]["wall_time_s"]
    assert status.seconds_per_epoch() == pytest.approx(pace) and status.seconds_left() == pytest.approx(4 * pace)
    assert main(["info", str(unfinished_run)]) == 0
    out = capsys.readouterr().out
    assert f"stopped; `vaezoo train --resume {unfinished_run}` continues it" in out
    assert "epoch 2 of 6 done; 12 steps" in out
    best = status.best
    assert f"the best {best['val_neg_elbo']:.2f} at epoch {best['epoch']}" in out
    change = history[1]["val_neg_elbo"] - history[0]["val_neg_elbo"]
    assert f"-ELBO {history[1]['val_neg_elbo']:.2f} at epoch 2" in out and f"{change:+.2f} nats an epoch over the last 1" in out
    assert "time left" in out and "best.safetensors" in out and "(batches of 64)" in out  # tiny_config's size


def test_the_batch_size_shown_is_the_one_in_effect(unfinished_run):
    sidecar = unfinished_run / "checkpoints" / "last.json"
    state = json.loads(sidecar.read_text())
    state["progress"]["eval_batch_size"] = 512  # what auto chose before a resume set a number
    sidecar.write_text(json.dumps(state))
    assert read_run_status(unfinished_run).eval_batch_size == 64
    state["experiment"]["trainer"]["eval_batch_size"] = "auto"
    sidecar.write_text(json.dumps(state))
    assert read_run_status(unfinished_run).eval_batch_size == 512


def test_a_run_being_trained_names_its_process(unfinished_run, capsys):
    with run_folder_lock(unfinished_run, "vaezoo train"):
        assert holder(unfinished_run).startswith(f"vaezoo train, process {os.getpid()}")
        assert main(["info", str(unfinished_run)]) == 0
        assert f"training now (vaezoo train, process {os.getpid()}, since" in capsys.readouterr().out
    assert holder(unfinished_run) is None  # the lock went with its holder


def test_an_unreadable_state_is_named(unfinished_run):
    (unfinished_run / "checkpoints" / "last.json").write_text("{")
    with pytest.raises(UsageError, match=r"cannot read the run's state .*last.json"):
        read_run_status(unfinished_run)


def test_the_progress_lines_eta_counts_each_epoch_end_ahead():
    history = [{"epoch": 1, "wall_time_s": 100.0, "epoch_time_s": 80.0},
               {"epoch": 2, "wall_time_s": 230.0, "epoch_time_s": 100.0}]
    assert epoch_overhead_s(history[:1]) == 20.0 and epoch_overhead_s(history) == 30.0 and epoch_overhead_s([]) == 0.0
    # 1,200 steps left at 0.5 s: 600 s, and 3 epoch ends ahead (300 steps into an epoch of 500) at 30 s each
    assert run_seconds_left(1200, 0.5, 500, history) == 690.0
    assert run_seconds_left(0, 0.5, 500, history) == 0.0
    assert run_seconds_left(1000, 0.5, 500, []) == 500.0  # before any epoch has ended: the steps alone


def test_the_best_epoch_so_far_is_scored_on_validation_and_the_test_set_waits(unfinished_run, capsys):
    best = read_run_status(unfinished_run).best
    assert main(["eval", str(unfinished_run), "--split", "val", "--iw-samples", "4", "--elbo-samples", "2",
                 "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    p = report["protocol"]
    assert p["model"] == f"{unfinished_run}, epoch {best['epoch']} (the best so far of a training that has not ended)"
    assert (p["split"], p["examples"]) == ("val", 64)  # the recipe's data.val_size, not the default's 5,000
    experiment = vaezoo.get_config(tiny_config())
    model = vaezoo.create(tiny_config())  # the architecture, fresh; then the best epoch's tensors
    model.load_state_dict(load_file(str(unfinished_run / "checkpoints" / "best.safetensors")))
    expected = vaezoo.evaluate(model.eval(), experiment.data, split="val", iw_samples=4, elbo_samples=2, progress=False)
    for name in ("neg_elbo", "iwae_nll"):
        assert report["metrics"][name]["value"] == pytest.approx(expected[name], rel=1e-9), name
    assert main(["eval", str(unfinished_run), "--iw-samples", "4"]) == 2
    assert "the test set scores it once, when it ends" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=rf"{unfinished_run} is a training that has not ended.*"
                                              rf"`vaezoo info {unfinished_run}` says where it stands"):
        vaezoo.load(str(unfinished_run))


def test_a_run_that_keeps_no_best_epoch_says_so(unfinished_run):
    sidecar = unfinished_run / "checkpoints" / "last.json"
    state = json.loads(sidecar.read_text())
    state["experiment"]["trainer"]["select"] = "last"
    sidecar.write_text(json.dumps(state))
    with pytest.raises(UsageError, match=r"keeps no best epoch to score before it ends: .*trainer.select: last"):
        best_model_so_far(unfinished_run)


def test_a_training_that_has_not_ended_draws_from_its_best_epoch_so_far(unfinished_run, capsys, tmp_path):
    epoch = read_run_status(unfinished_run).best["epoch"]
    grid = tmp_path / "samples.png"
    assert main(["sample", str(unfinished_run), "-n", "4", "-o", str(grid)]) == 0
    assert f"sampling its best epoch so far, {epoch}" in capsys.readouterr().err
    model = vaezoo.create(tiny_config())
    model.load_state_dict(load_file(str(unfinished_run / "checkpoints" / "best.safetensors")))
    expected = tmp_path / "expected.png"
    sample_grid(model.eval(), 4, path=expected)  # the command's defaults: seed 0, decoded means
    assert grid.read_bytes() == expected.read_bytes()


def test_the_best_epoch_so_far_downloads_nothing_its_recipe_names(tmp_path, monkeypatch):
    """A recipe may start a timm encoder from pretrained weights; the run's own weights replace them,
    and loading its best epoch asks timm for none."""
    import timm

    model_config = {"input_shape": [1, 28, 28], "latent_dim": 4, "decoder": "mlp",
                    "encoder": {"name": "timm", "model": "test_resnet", "out_index": -1}}
    run = tmp_path / "run"
    save_best_weights(run, vaezoo.create({"model": model_config}), epoch=3)
    recipe = {"model": {**model_config, "encoder": {**model_config["encoder"], "pretrained": True}},
              "trainer": {"select": "best_val"}}
    (run / "checkpoints" / "last.json").write_text(json.dumps({"experiment": recipe}))
    asked, create = [], timm.create_model
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: (asked.append(k.get("pretrained")), create(*a, **k))[1])
    with pytest.warns(UserWarning, match=r"model.encoder.pretrained is True; ignored"):
        best = best_model_so_far(run)
    assert best.epoch == 3 and asked and not any(asked)
