"""Weight packs (vaezoo/hub/packs.py): an entry whose weights travel in a companion distribution is
published there, found in a checkout or an installed pack, sha256-checked, and, when absent, named."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vaezoo
from vaezoo import resources, zoo
from vaezoo.cli import main as cli_main
from vaezoo.errors import ConfigError, HubError
from vaezoo.hub.index import read_entry, sha256_file
from vaezoo.hub.packs import PACKS, get_pack
from vaezoo.maintenance.models_doc import render_models_md
from vaezoo.maintenance.publish import publish_run
from vaezoo.maintenance.retire import retire

PACK = PACKS["conv"]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    experiment = vaezoo.get_config("fashion-mlp16", {"trainer.epochs": 1})
    return vaezoo.create("fashion-mlp16").save_pretrained(tmp_path / "run", experiment=experiment)


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    """A checkout's layout in miniature: tmp/registry beside tmp/weightpacks, and vaezoo reading it."""
    registry = tmp_path / "checkout" / "registry"
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    monkeypatch.setattr(zoo, "registry_dir", lambda: registry)
    return registry


def _in_pack(registry: Path, name: str) -> Path:
    return registry.parent / "weightpacks" / "conv" / PACK.package / "weights" / f"{name}.safetensors"


def test_publish_into_a_pack_and_load_from_the_checkout(run_dir, registry):
    entry = read_entry(publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry,
                                   pack="conv"))
    assert entry.pack == "conv" and entry.shipped == "weights/tiny.safetensors"
    assert sha256_file(_in_pack(registry, "tiny")) == entry.weights.sha256
    assert not (registry / "weights" / "tiny.safetensors").exists(), "one copy, in the pack"
    model = vaezoo.load("tiny", local_files_only=True)
    original = vaezoo.load(run_dir)
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value.half().float())
    # publishing again (new metrics, say) keeps the entry in its pack without being told
    assert read_entry(publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry)).pack == "conv"
    assert "| float16, shipped in vaezoo-weights-conv |" in render_models_md([read_entry(registry / "tiny.json")])


def test_the_cli_publishes_into_a_pack(run_dir, registry, capsys):
    assert cli_main(["publish", str(run_dir), "tiny", "alice/tiny", "--config", "fashion-mlp16",
                     "--registry", str(registry), "--pack", "conv"]) == 0
    assert read_entry(registry / "tiny.json").pack == "conv" and _in_pack(registry, "tiny").is_file()
    with pytest.raises(SystemExit):
        cli_main(["publish", str(run_dir), "tiny", "alice/tiny", "--registry", str(registry), "--pack", "large"])
    err = capsys.readouterr().err
    assert "argument --pack: invalid choice: 'large'" in err and "conv" in err.rsplit('choose from', 1)[1]


def test_moving_an_entry_into_a_pack_leaves_one_copy(run_dir, registry):
    publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry)
    assert (registry / "weights" / "tiny.safetensors").is_file()
    publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry, pack="conv")
    assert not (registry / "weights" / "tiny.safetensors").exists() and _in_pack(registry, "tiny").is_file()
    assert vaezoo.load("tiny").training is False


def test_an_installed_pack_is_found_without_importing_it(run_dir, registry, tmp_path, monkeypatch):
    publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry, pack="conv")
    site = tmp_path / "site"
    package = site / PACK.package
    (package / "weights").mkdir(parents=True)
    # a package that would fail loudly if anything imported it: locating its files must run nothing
    (package / "__init__.py").write_text("raise RuntimeError('a weight pack was imported')\n")
    shutil.move(_in_pack(registry, "tiny"), package / "weights" / "tiny.safetensors")
    monkeypatch.syspath_prepend(str(site))
    assert PACK.installed_folders() == [package]
    assert vaezoo.load("tiny").training is False
    assert PACK.package not in sys.modules


def test_an_altered_copy_is_passed_over_for_a_good_one(run_dir, registry, tmp_path, monkeypatch):
    publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry, pack="conv")
    site = tmp_path / "site"
    (site / PACK.package / "weights").mkdir(parents=True)
    (site / PACK.package / "__init__.py").write_text("")
    stale = site / PACK.package / "weights" / "tiny.safetensors"
    stale.write_bytes(_in_pack(registry, "tiny").read_bytes()[:-1] + b"\x00")  # an older pack, say
    monkeypatch.syspath_prepend(str(site))
    assert vaezoo.load("tiny").training is False  # the checkout's copy has the pinned sha256
    _in_pack(registry, "tiny").unlink()
    with pytest.raises(HubError, match=r"shipped weights were altered .*tiny.safetensors.*reinstall vaezoo-weights-conv"):
        vaezoo.load("tiny")


def test_a_missing_pack_says_what_to_install(run_dir, registry, capsys):
    publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry, pack="conv")
    _in_pack(registry, "tiny").unlink()
    with pytest.raises(HubError, match=r"not on the Hub yet.*weight pack vaezoo-weights-conv.*not installed: "
                                       r"`pip install vaezoo-weights-conv`.*pip install \./weightpacks/conv"):
        vaezoo.load("tiny")
    assert cli_main(["pull", "tiny"]) != 0
    assert "pip install vaezoo-weights-conv" in capsys.readouterr().err


def test_an_entry_names_a_known_pack_and_ships_what_it_packs(run_dir, registry):
    path = publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry, pack="conv")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "pack": "../../elsewhere"}))
    with pytest.raises(ConfigError, match=r"pack.*expected one of the weight packs \['conv'\]"):
        read_entry(path)
    path.write_text(json.dumps({**data, "shipped": None}))
    with pytest.raises(ConfigError, match="set shipped too, or drop pack"):
        read_entry(path)
    with pytest.raises(HubError, match="no weight pack named 'large'; the packs are: conv"):
        publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry, pack="large")
    with pytest.raises(HubError, match="no weight pack named"):
        get_pack("vaezoo")


def test_retiring_a_packed_entry_records_the_packs_file(run_dir, registry):
    for name in ("tiny", "tiny-better"):
        publish_run(run_dir, name, f"alice/{name}", config="fashion-mlp16", registry=registry, pack="conv")
    checkout = registry.parent
    git = lambda *args: subprocess.run(["git", *args], cwd=checkout, check=True, capture_output=True).stdout  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "publish")
    pinned = read_entry(registry / "tiny.json").weights.sha256
    retire("tiny", "tiny-better", "it scores better", registry=registry)
    entry = read_entry(registry / "tiny.json")
    assert entry.shipped is None and entry.pack is None and not _in_pack(registry, "tiny").exists()
    assert entry.retired.path == f"weightpacks/conv/{PACK.package}/weights/tiny.safetensors"
    assert hashlib.sha256(git("show", f"{entry.retired.commit}:{entry.retired.path}")).hexdigest() == pinned


def test_info_says_where_the_weights_come_from(run_dir, registry, capsys):
    publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry, pack="conv")
    assert cli_main(["info", "tiny"]) == 0
    assert "; weights in vaezoo-weights-conv\n" in capsys.readouterr().out
    _in_pack(registry, "tiny").unlink()
    assert cli_main(["info", "tiny"]) == 0
    assert "weights in vaezoo-weights-conv, not installed: `pip install vaezoo-weights-conv`" in capsys.readouterr().out
    publish_run(run_dir, "tiny", "alice/tiny", config="fashion-mlp16", registry=registry)  # back in vaezoo's own
    json_path = registry / "tiny.json"
    json_path.write_text(json.dumps({**json.loads(json_path.read_text()), "pack": None}))
    assert cli_main(["info", "tiny"]) == 0
    assert "; weights ship with vaezoo" in capsys.readouterr().out
