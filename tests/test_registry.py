"""The generic registry: strict names, suggestions, wildcards, natural sort, plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import vaezoo
from vaezoo._registry import Registry, natural_key
from vaezoo.parts import ENCODERS, PRIORS


def test_decorator_registers_and_returns_the_object():
    reg = Registry("widget")

    @reg.register("a")
    def a():
        return 1

    assert reg.get("a") is a
    assert "a" in reg and len(reg) == 1


def test_duplicate_name_raises_value_error_naming_it():
    reg = Registry("widget")
    reg.add("twice", object())
    with pytest.raises(ValueError, match="widget 'twice' is already registered"):
        reg.add("twice", object())


def test_duplicate_builtin_backbone_is_refused():
    with pytest.raises(ValueError, match="encoder 'conv' is already registered"):
        vaezoo.register_backbone("conv")(lambda in_shape, out_features: None)


def test_unknown_name_lists_known_names_and_suggests():
    with pytest.raises(ValueError) as info:
        ENCODERS.get("sead-conv")
    message = str(info.value)
    assert "unknown encoder 'sead-conv'" in message
    assert "Did you mean 'seed-conv'?" in message
    for name in ("conv", "mlp", "seed-conv"):
        assert name in message


def test_unknown_name_without_close_match_has_no_suggestion():
    with pytest.raises(ValueError) as info:
        PRIORS.get("zzzzzz")
    assert "Did you mean" not in str(info.value)
    assert f"Known priors: {', '.join(sorted(PRIORS.names()))}" in str(info.value)
    assert {"mog", "normal", "vamp"} <= set(PRIORS.names())


def test_names_filter_exclude_and_natural_sort():
    reg = Registry("widget")
    for name in ("vae10", "vae2", "vae1", "ae3", "vae2-big"):
        reg.add(name, object())
    assert reg.names() == ["ae3", "vae1", "vae2", "vae2-big", "vae10"]
    assert reg.names("vae*") == ["vae1", "vae2", "vae2-big", "vae10"]
    assert reg.names("vae*", exclude="*-big") == ["vae1", "vae2", "vae10"]
    assert reg.names(["ae*", "vae1*"], exclude=["vae1"]) == ["ae3", "vae10"]
    assert sorted(["x10", "x9", "X1"], key=natural_key) == ["X1", "x9", "x10"]


def test_list_models_filters_the_zoo():
    everything = vaezoo.list_models()
    assert everything == sorted(everything, key=natural_key)
    assert {"fashion-conv64", "fashion-conv16", "fashion-mlp16"} <= set(everything)
    assert vaezoo.list_models("fashion-conv[0-9]*") == ["fashion-conv16", "fashion-conv64"]
    assert vaezoo.list_models("fashion-*16", exclude="*conv*") == ["fashion-mlp16"]
    assert vaezoo.list_models("fashion-conv*", exclude=["*64", "*hvae*"]) == ["fashion-conv16"]
    assert vaezoo.list_models(["fashion-conv1*", "fashion-mlp*"]) == ["fashion-conv16", "fashion-mlp16"]
    assert vaezoo.list_models("no-such-*") == []
    published = vaezoo.list_models(pretrained=True)
    # a config's published weights, or a run of a config published under a name of its own (another seed)
    from vaezoo.hub.index import get_entry

    assert all(get_entry(name).config in everything for name in set(published) - set(everything))
    assert published == sorted(published, key=natural_key)


def test_register_model_in_code():
    @vaezoo.register_model("test-tiny-registered")
    def tiny():
        return {"model": {"input_shape": [1, 8, 8], "latent_dim": 2, "encoder": "mlp", "decoder": "mlp"}}

    try:
        assert "test-tiny-registered" in vaezoo.list_models("test-*")
        model = vaezoo.create("test-tiny-registered", latent_dim=3)
        assert model.latent_dim == 3
    finally:
        vaezoo.zoo.MODELS.remove("test-tiny-registered")


PLUGIN_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn
    import vaezoo

    @vaezoo.register_backbone("plugin-linear", role="encoder")
    class PluginEncoder(nn.Module):
        def __init__(self, in_shape, out_features, scale: float = 1.0):
            super().__init__()
            self.scale = scale
            self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(out_features))

        def forward(self, x):
            return self.net(x) * self.scale
    """
)

PLUGIN_CONFIG = textwrap.dedent(
    """
    model:
      input_shape: [1, 12, 12]
      latent_dim: 4
      encoder: {name: plugin-linear, scale: 0.5}
      decoder: {name: mlp, hidden: [16]}
    """
)


def _install_plugin(root):
    """A distribution on sys.path with a `vaezoo.plugins` entry point, as pip would leave it."""
    (root / "vaezoo_test_plugin.py").write_text(PLUGIN_MODULE)
    dist = root / "vaezoo_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vaezoo-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[vaezoo.plugins]\ntest-plugin = vaezoo_test_plugin\n")


def test_entry_point_plugin_backbone_is_usable_from_yaml(tmp_path):
    _install_plugin(tmp_path)
    config = tmp_path / "plugin.yaml"
    config.write_text(PLUGIN_CONFIG)
    script = textwrap.dedent(
        f"""
        import sys, torch, vaezoo
        from vaezoo.parts import ENCODERS
        # lazily loaded: importing vaezoo has not imported the plugin yet
        assert "vaezoo_test_plugin" not in sys.modules
        model = vaezoo.create({str(config)!r})
        assert "vaezoo_test_plugin" in sys.modules
        assert type(model.encoder).__name__ == "PluginEncoder" and model.encoder.scale == 0.5
        out = model(torch.rand(3, 1, 12, 12))
        print("encoders", ENCODERS.names("plugin-*"), "loss", float(out.loss) > 0)
        """
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "encoders ['plugin-linear'] loss True" in result.stdout


def test_broken_plugin_warns_and_vaezoo_still_works(tmp_path):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[vaezoo.plugins]\nbroken = no_such_module_anywhere\n")
    script = "import vaezoo; print(vaezoo.list_models('fashion-conv64'))"
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-W", "always", "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "['fashion-conv64']" in result.stdout
    assert "vaezoo plugin 'broken'" in result.stderr and "no_such_module_anywhere" in result.stderr


def test_signature_derived_params_are_validated():
    @vaezoo.register_backbone("test-sig-encoder")
    def encoder(in_shape, out_features, width: int = 8):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(out_features))

    try:
        base = {"input_shape": [1, 4, 4], "latent_dim": 2, "decoder": "mlp"}
        with pytest.raises(vaezoo.ConfigError, match=r"model\.encoder\.width: expected an int, got 'wide'"):
            vaezoo.create({"model": {**base, "encoder": {"name": "test-sig-encoder", "width": "wide"}}})
        with pytest.raises(vaezoo.ConfigError, match=r"unknown field 'widht' for encoder 'test-sig-encoder'"):
            vaezoo.create({"model": {**base, "encoder": {"name": "test-sig-encoder", "widht": 3}}})
        model = vaezoo.create({"model": {**base, "encoder": {"name": "test-sig-encoder", "width": 3}}})
        assert model.config.encoder.params == {"width": 3}
    finally:
        ENCODERS.remove("test-sig-encoder")
