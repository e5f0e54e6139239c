"""Hostile and careless input meets a clear refusal: each case asserts the message, and each
fails if its guard is removed. (More classes join this battery as they are hardened.)"""

from __future__ import annotations

import json
import time

import pytest
import yaml

import vaezoo
from vaezoo.cli import main
from vaezoo.config import parse_set_args
from vaezoo.errors import CheckpointError, ConfigError
from vaezoo.safe_text import MAX_DEPTH, MAX_NODES

# ------------------------------------------------------------------ config files

# Nine levels of ten aliases each: a few hundred bytes that expand to 10^9 values.
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))

YAML_CASES = {
    "alias bomb": (BOMB, f"expands to more than {MAX_NODES:,} values"),
    "recursive alias": ("a: &a [*a]\n", "an alias refers to a value that holds it"),
    "deep nesting": ("a: " + "[" * 3000 + "]" * 3000 + "\n", f"nests deeper than {MAX_DEPTH} levels"),
    "deep but within recursion": ("a: " + "[" * 100 + "]" * 100 + "\n", f"nests deeper than {MAX_DEPTH} levels"),
    "duplicate key": ("trainer:\n  epochs: 3\n  batch_size: 4\n  epochs: 5\n",
                      "line 4, column 3: the key 'epochs' is given twice in one mapping, on line 2 and on line 4"),
    "duplicate top-level section": ("model: fashion-conv64\ntrainer: {}\nmodel: x\n",
                                    "the key 'model' is given twice in one mapping, on line 1 and on line 3"),
    "duplicate key in a flow mapping": ("trainer: {epochs: 1, epochs: 2}\n", "the key 'epochs' is given twice"),
    "a python tag": ("trainer: !!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
}


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_hostile_yaml_is_refused_quickly_with_the_reason(tmp_path, case):
    text, message = YAML_CASES[case]
    path = tmp_path / "x.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        vaezoo.get_config(path)
    assert time.perf_counter() - start < 10
    assert message in str(info.value)


def test_a_config_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xe9 on line 1\): save it as UTF-8"):
        vaezoo.get_config(path)


def test_a_file_larger_than_any_config_is_not_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: [" + "1," * 600_000 + "1]\n")
    with pytest.raises(ConfigError, match=r"bytes; a config is at most 1,048,576"):
        vaezoo.get_config(path)


def test_aliases_within_reason_still_work(tmp_path):
    config = vaezoo.get_config("fashion-mlp16").model_dump(mode="json")
    text = yaml.safe_dump(config).replace("  checkpoint_every: 200", "  checkpoint_every: &every 7")
    path = tmp_path / "ok.yaml"
    path.write_text(text.replace("  log_every: 50", "  log_every: *every"))
    trainer = vaezoo.get_config(path).trainer
    assert trainer.log_every == trainer.checkpoint_every == 7


@pytest.mark.parametrize("value, message", [
    ("{a: 1, a: 2}", "the key 'a' is given twice"),
    ("[" * 200 + "]" * 200, "nests deeper"),
    ("!!python/name:os.system", "could not determine a constructor"),
])
def test_set_values_are_read_with_the_same_limits(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_set_args([f"trainer.epochs={value}"])


def test_the_cli_shows_a_message_not_a_traceback_for_a_bad_file(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("trainer:\n  epochs: 3\n  epochs: 5\n")
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "the key 'epochs' is given twice" in err and "Traceback" not in err


# ------------------------------------------------------------------ checkpoint files

def _saved(tmp_path):
    folder = tmp_path / "model"
    vaezoo.create("fashion-mlp16").save_pretrained(folder)
    return folder


def test_config_json_with_a_key_twice_is_refused(tmp_path):
    folder = _saved(tmp_path)
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text.replace('{\n', '{\n  "family": "hvae",\n', 1))
    assert json.loads((folder / "config.json").read_text())["family"] == "vae"  # json alone keeps the last
    with pytest.raises(CheckpointError, match="the key 'family' is given twice in one object"):
        vaezoo.load(folder)


def test_config_json_that_is_not_utf8_is_refused(tmp_path):
    folder = _saved(tmp_path)
    (folder / "config.json").write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(CheckpointError, match=r"not a valid config.json: config.json is not UTF-8 text"):
        vaezoo.load(folder)
