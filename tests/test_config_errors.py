"""Broken configs: each error names the exact field path and says what was expected."""

from __future__ import annotations

import textwrap

import pytest
import yaml

import vaezoo
from vaezoo.cli import main as cli_main
from vaezoo.config import ConfigError, apply_overrides, load_experiment, parse_set_args

GOOD = {
    "model": {
        "input_shape": [1, 28, 28],
        "latent_dim": 8,
        "encoder": {"name": "conv", "channels": [8, 16]},
        "decoder": {"name": "conv", "channels": [8, 16]},
    },
    "trainer": {"epochs": 2, "optimizer": {"name": "adam", "lr": 0.001}},
}


def broken(path: str, value, *, delete: bool = False) -> dict:
    """GOOD with one dotted field set (or deleted)."""
    data = apply_overrides(GOOD, {path: value})
    if delete:
        node = data
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        del node[last]
    return data


CASES = [
    # (description, config, field path, words the message must contain)
    ("unknown top-level key", broken("modle", {}), "modle", "unknown field 'modle'. Did you mean 'model'?"),
    ("unknown model key", broken("model.latent_size", 3), "model.latent_size", "Did you mean 'latent_dim'?"),
    ("unknown trainer key", broken("trainer.epohcs", 3), "trainer.epohcs", "Did you mean 'epochs'?"),
    ("unknown optimizer key", broken("trainer.optimizer.learning_rate", 0.1), "trainer.optimizer.learning_rate",
     "Allowed: betas, lr, name, weight_decay"),
    ("unknown data key", broken("data.bianrize", "none"), "data.bianrize", "Did you mean 'binarize'?"),
    ("unknown part argument", broken("model.encoder.chanels", [4]), "model.encoder.chanels",
     "unknown field 'chanels' for encoder 'conv'. Did you mean 'channels'? Allowed: activation, channels"),
    ("argument to a part that takes none", broken("model.prior", {"name": "normal", "scale": 2}), "model.prior.scale",
     "prior 'normal' takes no arguments"),
    ("wrong type in a part", broken("model.encoder.channels", "abc"), "model.encoder.channels",
     "expected a list of int > 0 with at least 1 item, got 'abc'"),
    ("wrong list item type", broken("model.encoder.channels", [8, "x"]), "model.encoder.channels.1",
     "expected an int > 0, got 'x'"),
    ("negative latent size", broken("model.latent_dim", -4), "model.latent_dim", "expected an int > 0, got -4"),
    ("zero in input shape", broken("model.input_shape", [1, 0, 28]), "model.input_shape.1",
     "expected an int > 0, got 0"),
    ("string where int", broken("trainer.epochs", "many"), "trainer.epochs", "expected an int > 0, got 'many'"),
    ("negative learning rate", broken("trainer.optimizer.lr", -1.0), "trainer.optimizer.lr",
     "expected a number > 0, got -1.0"),
    ("bad literal", broken("trainer.optimizer.name", "adma"), "trainer.optimizer.name",
     "expected one of 'adam', 'adamw', got 'adma'. Did you mean 'adam'?"),
    ("bad literal in a part", broken("model.encoder.norm", "batchnorm"), "model.encoder.norm",
     "expected one of 'none', 'batch', 'group', 'layer', got 'batchnorm'"),
    ("unknown encoder", broken("model.encoder.name", "resnet99"), "model.encoder.name",
     "unknown encoder 'resnet99'"),
    ("unknown prior by bare name", broken("model.prior", "nromal"), "model.prior.name",
     "unknown prior 'nromal'. Did you mean 'normal'?"),
    ("unknown likelihood", broken("model.likelihood", "bernouli"), "model.likelihood.name",
     "Did you mean 'bernoulli'?"),
    ("missing required field", broken("model.latent_dim", None, delete=True), "model.latent_dim",
     "required field is missing (expected an int > 0)"),
    ("part without a name", broken("model.decoder", {"channels": [8]}), "model.decoder.name",
     "required field is missing"),
    ("mismatched per-layer lists", broken("model.encoder.stride", [2, 2, 2]), "model.encoder",
     "stride has 3 entries but channels has 2"),
    ("bad binarize mode", broken("data.binarize", "yes"), "data.binarize",
     "expected one of 'none', 'static', 'dynamic', got 'yes'"),
    ("wrong type for a section", broken("trainer", 5), "trainer", "expected a mapping, got 5"),
]


@pytest.mark.parametrize("description,config,path,words", CASES, ids=[c[0] for c in CASES])
def test_broken_config_names_the_field(description, config, path, words):
    with pytest.raises(ConfigError) as info:
        vaezoo.get_config(config)
    paths = [p for p, _ in info.value.problems]
    assert path in paths, f"{description}: {info.value}"
    message = dict(info.value.problems)[path]
    assert words in message, f"{description}: {message}"


def test_many_problems_are_reported_together():
    config = apply_overrides(GOOD, {"model.latent_dim": 0, "trainer.epochs": "x", "model.encoder.chanels": 1})
    with pytest.raises(ConfigError) as info:
        vaezoo.get_config(config)
    assert {p for p, _ in info.value.problems} == {"model.latent_dim", "trainer.epochs", "model.encoder.chanels"}


def test_shape_a_backbone_cannot_take_is_an_error_naming_the_part():
    with pytest.raises(ConfigError) as info:
        vaezoo.create("fashion-conv64", input_shape=[1, 5, 5])
    (path, message), = info.value.problems
    assert path == "model.encoder"
    assert "seed-conv" in message and "5x5" in message


def test_yaml_file_errors_carry_the_file_name(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(broken("model.encoder.channels", "abc")))
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value).endswith("x.yaml: model.encoder.channels: expected a list of int > 0 with at least 1 "
                                    "item, got 'abc'")


def test_invalid_yaml_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  latent_dim: [1, 2\n  encoder: conv\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML: line \d+, column \d+"):
        load_experiment(path)


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_experiment(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("model: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_experiment(path)


def test_set_arguments_parse_as_yaml_values():
    assert parse_set_args(["trainer.epochs=10", "model.encoder.channels=[8, 16]", "data.root=null",
                           "trainer.compile=true"]) == {
        "trainer.epochs": 10, "model.encoder.channels": [8, 16], "data.root": None, "trainer.compile": True,
    }


@pytest.mark.parametrize("bad", ["trainer.epochs", "=3", "trainer.epochs=[1,"])
def test_bad_set_arguments(bad):
    with pytest.raises(ConfigError):
        parse_set_args([bad])


def test_override_into_a_scalar_is_refused():
    with pytest.raises(ConfigError) as info:
        apply_overrides(GOOD, {"model.latent_dim.size": 3})
    assert info.value.problems[0][0] == "model.latent_dim.size"
    assert "cannot set a field inside model.latent_dim" in info.value.problems[0][1]


def test_override_turns_a_bare_part_name_into_a_mapping():
    data = apply_overrides({"model": {"prior": "normal"}}, {"model.prior.name": "normal"})
    assert data["model"]["prior"] == {"name": "normal"}


def test_create_overrides_reach_inside_parts():
    model = vaezoo.create("fashion-conv16", latent_dim=4, **{"encoder.channels": [4, 8], "decoder.channels": [4, 8]})
    assert model.latent_dim == 4
    assert model.config.encoder.params["channels"] == [4, 8]
    with pytest.raises(ConfigError, match=r"model\.epochs: unknown field 'epochs'"):
        vaezoo.create("fashion-conv16", epochs=3)


def test_cli_reports_config_errors_without_traceback(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text(textwrap.dedent("""
        model:
          input_shape: [1, 28, 28]
          latent_dim: 8
          encoder: {name: conv, channels: abc}
          decoder: conv
    """))
    code = cli_main(["info", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "x.yaml: model.encoder.channels: expected a list of int" in captured.err
    assert "Traceback" not in captured.err


def test_a_problem_an_override_brought_in_names_the_override_not_the_file(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text("model:\n  input_shape: [1, 28, 28]\n  latent_dim: -3\n  encoder: mlp\n  decoder: mlp\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path, {"model.encoder.widht": 4, "trainer.epochs": 0})
    lines = info.value.lines()
    assert len(lines) == 3
    assert any(line.endswith("mixed.yaml: model.latent_dim: expected an int > 0, got -3") for line in lines)
    assert ("override model.encoder.widht=4: model.encoder.widht: unknown field 'widht' for encoder 'mlp'. "
            "Allowed: activation, hidden, norm.") in lines
    assert "override trainer.epochs=0: trainer.epochs: expected an int > 0, got 0" in lines
