"""Model selection on validation: ``trainer.select: best_val`` exports the epoch with the lowest
validation -ELBO, ``trainer.patience`` stops early, and the registry records the selection."""

from __future__ import annotations

import io
import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

import vaezoo
from vaezoo.errors import ConfigError
from vaezoo.layout.checkpoint import best_weights_path, load_checkpoint
from vaezoo.training.records import read_metrics

from _tiny_training import register, scripted_validation, tiny_config

register()


def test_best_val_exports_the_selected_epoch_and_patience_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    config = tiny_config(epochs=6, select="best_val", patience=2, test="end")
    path = tmp_path / "sel.yaml"
    path.write_text(yaml.safe_dump(config))
    scripted_validation(monkeypatch, [10.0, 5.0, 7.0, 8.0, 1.0, 1.0])
    _, final = vaezoo.train(path, out=tmp_path / "sel", stream=io.StringIO())
    # what train() returns (and `vaezoo train` prints last) is the exported weights' validation score
    assert final["selected_epoch"] == 2 and final["val_neg_elbo"] == 5.0 and final["epoch"] == 4
    records = read_metrics(tmp_path / "sel")
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]  # two epochs without a better one after epoch 2
    assert records[-1]["best_epoch"] == 2 and records[-1]["test_neg_elbo"] is not None
    saved = json.loads((tmp_path / "sel" / "config.json").read_text())
    assert saved["training"]["selected_epoch"] == 2 and saved["metrics"]["val_neg_elbo"]["value"] == 5.0
    state = load_checkpoint(tmp_path / "sel").state["progress"]
    assert state["best"] == {"epoch": 2, "val_neg_elbo": 5.0} and state["epochs_since_best"] == 2

    # the exported weights are those a 2-epoch run ends with (constant learning rate: the same steps)
    monkeypatch.undo()
    monkeypatch.setenv("CI", "1")
    two = tiny_config(epochs=2, test="never")
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(two))
    vaezoo.train(tmp_path / "two.yaml", out=tmp_path / "two", stream=io.StringIO())
    exported, reference = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("sel", "two"))
    assert all(torch.equal(exported[k], reference[k]) for k in reference)
    assert all(torch.equal(load_file(str(best_weights_path(tmp_path / "sel")))[k], reference[k]) for k in reference)


def test_select_from_leaves_the_warm_up_epochs_out(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    path = tmp_path / "warm.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=5, select="best_val", select_from=3, patience=2, test="never")))
    scripted_validation(monkeypatch, [1.0, 2.0, 6.0, 4.0, 5.0])  # epoch 1 is lowest, but inside the warm-up
    _, final = vaezoo.train(path, out=tmp_path / "warm", stream=io.StringIO())
    assert final["selected_epoch"] == 4 and final["val_neg_elbo"] == 4.0 and final["epoch"] == 5
    assert read_metrics(tmp_path / "warm")[-1]["best_epoch"] == 4
    with pytest.raises(ConfigError, match=r"trainer.select_from \(9\) is past trainer.epochs \(5\)"):
        vaezoo.get_config(tiny_config(epochs=5, select="best_val", select_from=9))


def test_last_keeps_the_last_epoch_and_records_the_best(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    path = tmp_path / "last.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=3, test="never")))
    scripted_validation(monkeypatch, [3.0, 2.0, 4.0])
    vaezoo.train(path, out=tmp_path / "last", stream=io.StringIO())
    assert not best_weights_path(tmp_path / "last").exists()
    saved = json.loads((tmp_path / "last" / "config.json").read_text())
    assert "selected_epoch" not in saved["training"] and saved["metrics"]["val_neg_elbo"]["value"] == 4.0
    assert read_metrics(tmp_path / "last")[-1]["best_epoch"] == 2


def test_publish_records_how_the_checkpoint_was_selected():
    from vaezoo.maintenance.publish import _selection

    metrics = {"val_neg_elbo": {"value": 228.5, "num_examples": 10000, "split": "validation"}}
    assert _selection(metrics, {"epochs": 300, "selected_epoch": 241}) == {
        "rule": "the lowest validation -ELBO (trainer.select: best_val)", "epoch": 241, "val_neg_elbo": 228.5,
        "val_examples": 10000}
    assert _selection(metrics, {"epochs": 300})["rule"] == "the last epoch"
    assert _selection(metrics, {"epochs": 300}, ema_decay=0.999)["rule"] == \
        "the last epoch, the moving average of the weights (trainer.ema_decay: 0.999)"
    assert _selection(metrics, {"epochs": 50, "selected_epoch": 49}, select_from=26)["rule"] == (
        "the lowest validation -ELBO (trainer.select: best_val) from epoch 26 on (trainer.select_from: the epochs "
        "before are a warm-up)")
    assert _selection({}, {"epochs": 3}) is None  # a run with no validation split has nothing to record


def test_every_published_reference_row_loads_and_an_unknown_key_names_the_known_ones():
    import pytest

    from vaezoo.errors import HubError
    from vaezoo.maintenance.publish import published_reference

    row = published_reference("exemplar-vae/hvae")
    assert (row.row, row.value, row.metric) == ("HVAE, Gaussian prior", 227.37, "iwae_nll")
    with pytest.raises(HubError, match="known: .*exemplar-vae/convhvae"):
        published_reference("exemplar-vae/nope")
