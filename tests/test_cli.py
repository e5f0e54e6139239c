"""`vaezoo list` and `vaezoo info`: stdout for results, stderr and exit 2 for problems."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vaezoo._registry import natural_key
from vaezoo.cli import main


def test_list_prints_every_model(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.split()
    assert out == sorted(out, key=natural_key) and "fashion-conv64" in out
    assert out.index("fashion-vae40") < out.index("fashion-vae-iaf")  # natural order, not character order


def test_list_filters_and_excludes(capsys):
    assert main(["list", "fashion-*", "--exclude", "*mlp*"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"fashion-conv16", "fashion-conv64", "fashion-resnet32"} <= set(listed)
    assert not any("mlp" in name for name in listed) and all(name.startswith("fashion-") for name in listed)


def test_list_with_no_match_fails(capsys):
    assert main(["list", "nothing-*"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no models match" in captured.err


def test_info_summarizes_a_model(capsys):
    assert main(["info", "fashion-conv64"]) == 0
    out = capsys.readouterr().out
    assert "5,997,825" in out
    assert "seed-conv" in out and "bernoulli" in out
    assert "200 epochs, batch 1024, adam lr 0.001" in out
    assert "pretrained" in out


def test_info_applies_overrides(capsys):
    assert main(["info", "fashion-conv64", "--set", "model.latent_dim=32"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["latent"] == "32" and rows["family"] == "vae"
    # the two heads (30976 -> 32 each) and the decoder's input layer (32 -> 30976) shrink
    assert rows["parameters"] == "3,024,065"
    # the published weights are for the 64-d latent: info must not claim they apply
    assert rows["pretrained"].startswith("no: the override of model.latent_dim changes the architecture")


def test_info_of_an_unknown_name_suggests(capsys):
    assert main(["info", "fashion-conv46"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown model 'fashion-conv46'" in captured.err and "Did you mean 'fashion-conv64'?" in captured.err


def test_info_of_a_missing_file(capsys):
    assert main(["info", "nowhere/x.yaml"]) == 2
    assert "nowhere/x.yaml: no such config file" in capsys.readouterr().err


def test_bad_set_syntax(capsys):
    assert main(["info", "fashion-conv64", "--set", "latent_dim"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_console_entry_point_runs_as_module():
    result = subprocess.run([sys.executable, "-m", "vaezoo", "info", "fashion-conv64", "--set", "model.latent_dim=0"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "model.latent_dim: expected an int > 0, got 0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["--version"]])
def test_version(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("vaezoo ")
