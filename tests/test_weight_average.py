"""``trainer.ema_decay``: a moving average of the weights is what a run validates, selects and
exports, saved in every checkpoint (the bit-exact resume with it is in test_training_processes)."""

from __future__ import annotations

import io
import json

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

import vaezoo
from vaezoo.config import validate_experiment
from vaezoo.errors import ConfigError
from vaezoo.schemas import ExperimentConfig
from vaezoo.training import loop
from vaezoo.training.averaging import WeightAverage
from vaezoo.layout.checkpoint import best_weights_path, load_checkpoint
from vaezoo.training.setup import recipe_changes

from _tiny_training import register, scripted_validation, tiny_config

register()


def test_the_average_follows_the_warmed_up_decay_and_copies_integer_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).double()
    average = WeightAverage(model, decay=0.9)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for n in range(1, 100):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(4, 3, dtype=torch.float64))  # moves BatchNorm's running statistics and its step count
        average.update(model)
        decay = min(0.9, (1 + n) / (10 + n))
        for key, value in model.state_dict().items():
            expected[key] = value.clone() if not value.is_floating_point() else decay * expected[key] + (1 - decay) * value
    assert average.updates == 99 and average.current_decay() == 0.9
    for key, value in average.module.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-10)
    assert int(average.module[1].num_batches_tracked) == 99
    assert not average.module.training and not any(p.requires_grad for p in average.module.parameters())


def test_validation_and_the_export_see_the_average(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    scored = []
    real = loop.Trainer._evaluate

    def evaluate(self, run, split, tag, title):
        scored.append(run.scored_model is run.average.module)
        return real(self, run, split, tag, title)

    monkeypatch.setattr(loop.Trainer, "_evaluate", evaluate)
    model, metrics = vaezoo.train(tiny_config(epochs=3, ema_decay=0.9), out=tmp_path / "ema", stream=io.StringIO())
    assert scored and all(scored)
    checkpoint = load_checkpoint(tmp_path / "ema")
    assert checkpoint.state["ema_updates"] == 18  # 3 epochs of 6 steps
    exported = load_file(str(tmp_path / "ema" / "model.safetensors"))
    assert all(torch.equal(exported[k], checkpoint.averaged[k].to(exported[k].dtype)) for k in exported)
    assert any(not torch.equal(exported[k], checkpoint.model[k]) for k in exported if exported[k].is_floating_point())
    assert all(torch.equal(v, exported[k]) for k, v in model.state_dict().items())
    saved = json.loads((tmp_path / "ema" / "config.json").read_text())
    assert saved["trainer"]["ema_decay"] == 0.9  # the card and the registry read the recipe from here


def test_best_val_selects_among_the_averages(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    scripted_validation(monkeypatch, [10.0, 5.0, 7.0])
    path = tmp_path / "sel.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=3, select="best_val", test="never", ema_decay=0.9)))
    vaezoo.train(path, out=tmp_path / "sel", stream=io.StringIO())
    monkeypatch.undo()
    monkeypatch.setenv("CI", "1")
    vaezoo.train(tiny_config(epochs=2, test="never", ema_decay=0.9), out=tmp_path / "two", stream=io.StringIO())
    # epoch 2's average is the exported weights, as a 2-epoch run (constant learning rate) ends with
    exported, reference = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("sel", "two"))
    assert all(torch.equal(exported[k], reference[k]) for k in reference)
    assert all(torch.equal(load_file(str(best_weights_path(tmp_path / "sel")))[k], reference[k]) for k in reference)


def test_a_decay_out_of_range_names_the_field_and_a_resume_may_not_change_it():
    with pytest.raises(ConfigError, match="trainer.ema_decay"):
        validate_experiment(tiny_config(ema_decay=1.0))
    experiment = ExperimentConfig.model_validate(tiny_config(ema_decay=0.99))
    saved = ExperimentConfig.model_validate(tiny_config()).model_dump(mode="json")
    assert recipe_changes(experiment, saved) == ["trainer.ema_decay: 0.99 here, null in the checkpoint"]


def test_a_finished_constant_rate_run_extended_by_resume_is_the_longer_run(tmp_path, monkeypatch):
    """fashion-vae40-ema's 800 epochs were trained as 400, then a resume with trainer.epochs=800:
    the test pass, the selection and the export at the end of the first part must leave the
    continuation exactly where one uninterrupted run would have been."""
    monkeypatch.setenv("CI", "1")
    recipe = dict(ema_decay=0.9, select="best_val", test="end", scheduler={"name": "constant"},
                  optimizer={"name": "adam", "lr": 2e-3})
    vaezoo.train(tiny_config(epochs=2, **recipe), out=tmp_path / "parts", stream=io.StringIO())
    _, extended = vaezoo.train(overrides={"trainer.epochs": 4}, resume=tmp_path / "parts", stream=io.StringIO())
    _, straight = vaezoo.train(tiny_config(epochs=4, **recipe), out=tmp_path / "straight", stream=io.StringIO())
    assert extended["epoch"] == straight["epoch"] == 4
    assert extended["val_neg_elbo"] == straight["val_neg_elbo"] and extended["test_neg_elbo"] == straight["test_neg_elbo"]
    for name in ("model.safetensors", "checkpoints/last.safetensors"):
        ours, theirs = (load_file(str(tmp_path / run / name)) for run in ("parts", "straight"))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs), name


def test_extending_a_run_whose_best_epoch_was_not_its_last_goes_on_from_the_trained_weights(tmp_path, monkeypatch):
    """The first part selects epoch 2 of 3 for its test pass and export; its checkpoint must still
    hold epoch 3's weights and average, so that the continuation is the longer run, step for step."""
    monkeypatch.setenv("CI", "1")
    recipe = dict(ema_decay=0.9, select="best_val", test="end", scheduler={"name": "constant"},
                  optimizer={"name": "adam", "lr": 2e-3})
    scripted_validation(monkeypatch, [3.0, 1.0, 2.0,  # the first part: epoch 2 selected
                                      0.5, 0.4,  # its continuation to 5 epochs: epoch 5 selected
                                      3.0, 1.0, 2.0, 0.5, 0.4])  # one straight run of 5
    vaezoo.train(tiny_config(epochs=3, **recipe), out=tmp_path / "parts", stream=io.StringIO())
    first = json.loads((tmp_path / "parts" / "config.json").read_text())
    assert first["training"]["selected_epoch"] == 2
    selected_export = load_file(str(tmp_path / "parts" / "model.safetensors"))
    best = load_file(str(best_weights_path(tmp_path / "parts")))
    assert all(torch.equal(selected_export[k], v) for k, v in best.items())

    # resuming the finished run as it is re-exports the selected epoch, not the checkpoint's weights
    vaezoo.train(resume=tmp_path / "parts", stream=io.StringIO())
    again = load_file(str(tmp_path / "parts" / "model.safetensors"))
    assert all(torch.equal(again[k], selected_export[k]) for k in selected_export)

    _, extended = vaezoo.train(overrides={"trainer.epochs": 5}, resume=tmp_path / "parts", stream=io.StringIO())
    _, straight = vaezoo.train(tiny_config(epochs=5, **recipe), out=tmp_path / "straight", stream=io.StringIO())
    assert extended["epoch"] == straight["epoch"] == 5 and extended["test_neg_elbo"] == straight["test_neg_elbo"]
    for name in ("model.safetensors", "checkpoints/last.safetensors"):
        ours, theirs = (load_file(str(tmp_path / run / name)) for run in ("parts", "straight"))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs), name
