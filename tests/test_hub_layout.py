"""The Hub folder layout: what save_pretrained writes, what loading accepts and how it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import vaezoo
from vaezoo import resources
from vaezoo.errors import CheckpointError, ConfigError, HubError


def tiny_model(seed: int = 0) -> vaezoo.VAE:
    torch.manual_seed(seed)
    return vaezoo.create("fashion-mlp16", latent_dim=4, **{"encoder.hidden": [16], "decoder.hidden": [16]})


@pytest.fixture
def saved(tmp_path) -> tuple[vaezoo.VAE, Path]:
    model = tiny_model()
    experiment = vaezoo.get_config("fashion-mlp16")
    metrics = [{"name": "neg_elbo", "value": 251.25, "unit": "nats",
                "protocol": {"likelihood": "bernoulli", "binarization": "none", "importance_samples": 1,
                             "split": "test", "num_examples": 10000}}]
    folder = model.save_pretrained(tmp_path / "ckpt", experiment=experiment, metrics=metrics, samples=8,
                             training={"epochs": 3, "hardware": "cpu"}, repo_id="alice/tiny")
    return model, folder


def test_save_writes_the_hub_layout_and_a_model_card(saved):
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "samples.png"]
    config = json.loads((folder / "config.json").read_text())
    assert config["config_version"] == 2 and config["family"] == config["model"]["family"] == "vae"
    assert config["vaezoo_version"] == vaezoo.__version__
    assert config["model"] == model.config.model_dump(mode="json")
    assert config["trainer"] == vaezoo.get_config("fashion-mlp16").trainer.model_dump(mode="json")
    assert config["training"] == {"epochs": 3, "hardware": "cpu"}
    card = (folder / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    # nobody licensed this model: the card names no license (save_pretrained(license=...) adds one)
    assert front["library_name"] == "vaezoo" and "license" not in front
    assert front["datasets"] == ["zalando-datasets/fashion_mnist"]
    result = front["model-index"][0]["results"][0]
    assert result["dataset"]["split"] == "test" and result["metrics"][0] == {
        "type": "neg_elbo", "value": 251.25, "name": "neg_elbo (nats)"}
    for text in ("vaezoo.load('hf-hub:alice/tiny')", "| neg_elbo | 251.25 nats | test split, 10,000 images; ELBO",
                 "![samples from the prior](samples.png)", "## Training recipe", "- epochs: 3"):
        assert text in card


def test_load_round_trip_is_exact_and_in_eval_mode(saved):
    model, folder = saved
    loaded = vaezoo.load(folder)
    assert not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_fp16_storage_is_cast_back_to_float32(tmp_path):
    model = tiny_model()
    folder = model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    stored = load_file(str(folder / "model.safetensors"))
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}
    loaded = vaezoo.load(folder)
    for key, value in model.state_dict().items():
        assert loaded.state_dict()[key].dtype == torch.float32
        assert torch.equal(loaded.state_dict()[key], value.half().float())


def edit_config(folder: Path, change) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def test_unknown_config_key_names_the_file_and_key(saved):
    _, folder = saved
    edit_config(folder, lambda c: c["model"].update(latent_size=3))
    with pytest.raises(ConfigError) as info:
        vaezoo.load(folder)
    assert str(folder / "config.json") in str(info.value) and "model.latent_size: unknown field" in str(info.value)


def as_release_1(config: dict) -> None:
    """config.json as vaezoo 0.1 wrote it: `model_class: vaezoo.VAE`, no family, no config version."""
    del config["config_version"], config["family"], config["model"]["family"]
    config["model_class"] = "vaezoo.VAE"


def test_a_release_1_checkpoint_loads_unchanged(saved):
    model, folder = saved
    edit_config(folder, as_release_1)
    assert "family" not in json.loads((folder / "config.json").read_text())["model"]
    loaded = vaezoo.load(folder)
    assert loaded.family == "vae" and type(loaded) is vaezoo.VAE
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_a_config_from_a_newer_vaezoo_says_so(saved):
    _, folder = saved
    edit_config(folder, lambda c: c.update(config_version=3))
    with pytest.raises(CheckpointError, match="config_version 3 was written by a newer vaezoo"):
        vaezoo.load(folder)
    edit_config(folder, lambda c: c.update(config_version=2, family="hvae"))
    with pytest.raises(ConfigError, match="family is 'hvae' but model.family is 'vae'"):
        vaezoo.load(folder)


def test_wrong_model_class_and_bad_json(saved):
    _, folder = saved
    edit_config(folder, lambda c: (as_release_1(c), c.update(model_class="diffusers.UNet")))
    with pytest.raises(CheckpointError, match="model_class: 'diffusers.UNet' is not a class vaezoo builds"):
        vaezoo.load(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: not a valid config.json: Expecting property name"):
        vaezoo.load(folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json: missing"):
        vaezoo.load(folder)


def test_unregistered_part_says_how_to_register_it(saved):
    _, folder = saved
    edit_config(folder, lambda c: c["model"].update(encoder={"name": "my-fancy-encoder"}))
    with pytest.raises(ConfigError) as info:
        vaezoo.load(folder)
    message = str(info.value)
    assert "model.encoder.name: unknown encoder 'my-fancy-encoder'" in message
    assert "@vaezoo.register_backbone('my-fancy-encoder')" in message and "vaezoo.plugins" in message


@pytest.mark.parametrize("damage, expected", [
    (lambda t: t.pop("encoder.net.1.weight"), "missing tensors: encoder.net.1.weight"),
    (lambda t: t.update(extra=torch.zeros(1)), "unexpected tensors: extra"),
    (lambda t: t.update({"encoder.net.1.weight": torch.zeros(3, 3)}), "encoder.net.1.weight has shape [3, 3]"),
])
def test_tensor_mismatches_are_named(saved, damage, expected):
    _, folder = saved
    tensors = load_file(str(folder / "model.safetensors"))
    assert "encoder.net.1.weight" in tensors, sorted(tensors)  # the key the cases damage
    damage(tensors)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="model.safetensors: does not match the architecture") as info:
        vaezoo.load(folder)
    assert expected in str(info.value)


def test_corrupt_or_missing_weights_file(saved):
    _, folder = saved
    (folder / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors file"):
        vaezoo.load(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        vaezoo.load(folder)


def test_references_are_never_guessed(tmp_path, monkeypatch):
    with pytest.raises(HubError) as info:
        vaezoo.load("no-such-model")
    for form in ("a pretrained name", "hf-hub:org/repo[@revision]", "folder path"):
        assert form in str(info.value)
    with pytest.raises(HubError, match="zoo architecture without published weights.*vaezoo.create"):
        vaezoo.load("fashion-conv16")
    with pytest.raises(HubError, match="no such folder"):
        vaezoo.load("runs/missing")
    with pytest.raises(HubError, match="cannot read 'hf-hub:' as a Hub reference"):
        vaezoo.load("hf-hub:")
    with pytest.raises(HubError, match="means nothing for the local folder"):
        vaezoo.load(tiny_model().save_pretrained(tmp_path / "f"), revision="v1")
    # a bare word that is both a pretrained name and a folder here is refused, not guessed
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "both").with_suffix(".json").write_text("{}")
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    monkeypatch.chdir(tmp_path)
    tiny_model().save_pretrained(tmp_path / "both")
    with pytest.raises(HubError, match="both a pretrained name and a folder"):
        vaezoo.load("both")
    assert not vaezoo.load("./both").training  # the explicit path form is fine


def test_license_only_when_given_and_weights_have_the_usual_file_mode(tmp_path):
    folder = tiny_model().save_pretrained(tmp_path / "licensed", license="apache-2.0")
    front = yaml.safe_load((folder / "README.md").read_text().split("---\n")[1])
    assert front["license"] == "apache-2.0"
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] == modes["README.md"], modes
