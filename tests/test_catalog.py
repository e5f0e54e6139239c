"""`vaezoo parts`, the generated parts table of docs/configs.md, and `--import` of a user's module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
import yaml

import vaezoo
from vaezoo import catalog
from vaezoo.maintenance import parts_doc
from vaezoo.cli import main

TESTS = Path(__file__).resolve().parent


def test_the_docs_parts_table_is_generated_from_the_registries():
    text = parts_doc.DOCS.read_text()
    assert parts_doc._with_table(text, parts_doc.render_parts_table(catalog.describe_parts())) == text, \
        "run: python -m vaezoo.maintenance.parts_doc"
    for name in ("gated-mlp", "linear", "image-folder", "tensors", "hvae", "beta-tcvae"):
        assert f"| `{name}` |" in text, name


def test_parts_lists_every_kind_with_arguments_and_a_plugins_part(capsys):
    @vaezoo.register_backbone("test-plugin-encoder")
    def plugin_encoder(in_shape, out_features, depth: int = 3):
        """An encoder some other package registered."""
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(out_features))

    try:
        assert main(["parts"]) == 0
        out = capsys.readouterr().out
        kinds = {line.split()[0] for line in out.splitlines() if not line.startswith(" ")}
        assert kinds == set(catalog.KINDS)
        assert "    channels: a list of int > 0 with at least 1 item, default [32, 64, 128]" in out
        assert main(["parts", "encoder"]) == 0
        out = capsys.readouterr().out
        assert f"encoder test-plugin-encoder  [{__name__}]: An encoder some other package registered." in out
        assert "    depth: an int, default 3" in out and not any(line.startswith("decoder ") for line in out.splitlines())
    finally:
        vaezoo.parts.ENCODERS.remove("test-plugin-encoder")


def test_import_makes_a_scripts_backbone_usable_from_train(tmp_path):
    script = tmp_path / "my_parts.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        import torch, vaezoo, _tiny_training

        _tiny_training.register()  # the tiny 8x8 dataset


        @vaezoo.register_backbone("script-encoder")
        def script_encoder(in_shape, out_features, width: int = 16):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, width), torch.nn.ReLU(),
                                       torch.nn.Linear(width, out_features))
    """))
    sys.path.insert(0, str(TESTS))
    from _tiny_training import tiny_config

    config = tiny_config(max_steps=2)
    config["model"]["encoder"] = {"name": "script-encoder", "width": 8}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "vaezoo", "train", "cfg.yaml", "--out", "run"]
    without = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert without.returncode == 2 and "unknown encoder 'script-encoder'" in without.stderr
    done = subprocess.run([*command, "--import", "my_parts"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["encoder"] == {"name": "script-encoder", "width": 8}
    missing = subprocess.run([sys.executable, "-m", "vaezoo", "--import", "nope.py", "list"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "error: --import nope.py: no such file" in missing.stderr
