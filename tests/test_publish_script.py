"""``scripts/publish_fashion_run.py``: which evaluations a publication runs, with which flags. The
evals themselves are ``vaezoo eval`` (tested on their own); here each command is recorded and its
report written as a stand-in, so the plan is checked without hours of scoring."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def script():
    spec = importlib.util.spec_from_file_location("publish_fashion_run", ROOT / "scripts" / "publish_fashion_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _measure(script, monkeypatch, tmp_path, **options):
    folder = tmp_path / "run"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": {"family": "hvae"}}))
    commands = []

    def fake_run(command):
        commands.append(command)
        out = Path(command[command.index("-o") + 1])
        out.write_text(json.dumps({"metrics": {"neg_elbo": {}} if "elbo" in out.name else {"iwae_nll": {}}}))

    monkeypatch.setattr(script, "run", fake_run)
    files = script.measure(folder, mixture=False, **options)
    assert all(f.is_file() for f in files)
    return {Path(c[c.index("-o") + 1]).name.split(".")[0]: c for c in commands}


def test_the_nll_is_scored_in_float32_unless_the_fast_path_is_asked_for(script, monkeypatch, tmp_path):
    plain = _measure(script, monkeypatch, tmp_path / "a")["iwae"]
    assert plain[plain.index("--precision") + 1] == "float32" and plain[plain.index("--iw-samples") + 1] == "5000"
    fast = _measure(script, monkeypatch, tmp_path / "b", fast_path=True)
    assert fast["iwae"][fast["iwae"].index("--precision") + 1] == "auto"
    assert "float32" not in fast["iwae"] and set(fast) == {"elbo", "iwae", "fid", "probe", "dis"}
    assert script.BOUNDS["iwae.json"][script.BOUNDS["iwae.json"].index("--precision") + 1] == "float32"  # untouched


def test_a_packed_publication_passes_its_pack_to_vaezoo_publish(script, monkeypatch, tmp_path):
    commands, written = [], []
    monkeypatch.setattr(script, "run", commands.append)
    monkeypatch.setattr(script, "finished_run", lambda name, runs: tmp_path)
    monkeypatch.setattr(script.vaezoo, "load", lambda folder: None)
    monkeypatch.setattr(script, "supports_gmm_prior", lambda model: False)
    monkeypatch.setattr(script, "measure", lambda *args: [tmp_path / "elbo.json"])
    monkeypatch.setattr(script, "entry_path", lambda name: tmp_path / f"{name}.json")
    monkeypatch.setattr(script, "read_entry", lambda path: type("Entry", (), {"model_copy": lambda self, update: update})())
    monkeypatch.setattr(script, "write_entry", lambda entry, folder: written.append(entry))
    assert script.main(["fashion-convhvae40", "--use-for", "x", "--pack", "conv", "--no-costs",
                        "--answers", "exemplar-vae/convhvae"]) == 0
    publish = next(c for c in commands if c[:2] == ["vaezoo", "publish"])
    assert publish[publish.index("--pack") + 1] == "conv" and written == [{"use_for": "x"}]
    assert publish[publish.index("--answers") + 1] == "exemplar-vae/convhvae"
    commands.clear()
    assert script.main(["fashion-convhvae40", "--use-for", "x", "--no-costs"]) == 0
    assert not {"--pack", "--answers"} & set(next(c for c in commands if c[:2] == ["vaezoo", "publish"]))
    with pytest.raises(SystemExit):
        script.main(["fashion-convhvae40", "--use-for", "x", "--pack", "large"])
