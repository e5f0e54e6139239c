"""Custom backbones end to end (issue 6 item 5): decorator -> YAML -> train -> push -> load by name elsewhere.

Every step that matters runs in its own Python process, as it would for a user: the registries
are per process, so "loaded back in a fresh process" is only shown by a process that never saw
the decorators. The Hub is tests/hub_server.py on 127.0.0.1, reached through the standard
client environment (HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_DISABLE_XET=1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import vaezoo
from _tiny_training import _tiny
from hub_server import HubHTTPServer
from safetensors.torch import load, load_file, save_file

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
PLUGIN = EXAMPLES / "plugin"
TOKEN = "hf_custom_e2e_test_token_0123456789"
REPO_ID = "alice/custom-backbone-e2e"

# 8x8 images and widths of 16: a few optimizer steps, so the processes' cost is mostly imports
TINY_YAML = """\
name: custom-e2e
model:
  input_shape: [1, 8, 8]
  latent_dim: 4
  encoder: {{name: residual-mlp, width: 16, blocks: 1}}
  decoder: {{name: residual-mlp, width: 16, blocks: 2}}
data:
  dataset: {{name: tensors, path: {data}}}
  val_size: 32
trainer: {{epochs: 1, batch_size: 32, log_every: 2, eval_batch_size: 64}}
"""

# The fresh process: loads by name, then writes what it sees for the test to compare (safetensors, no pickle).
LOAD_SCRIPT = textwrap.dedent(
    """
    import sys, torch, vaezoo
    from safetensors.torch import load_file, save_file
    model = vaezoo.load(sys.argv[1])
    assert "custom_backbone_e2e" not in sys.modules  # the example's decorators never ran here
    x = load_file(sys.argv[2])["x"]
    torch.manual_seed(1)
    out = model(x)  # the ELBO samples z: the same seed in both processes gives the same draw
    save_file({**{"weight." + k: v.contiguous() for k, v in model.state_dict().items()},
               "loss": out.loss, "elbo": out.elbo, "recon": model.reconstruct(x)}, sys.argv[3])
    print(type(model.encoder).__module__, type(model.decoder).__module__)
    """
)


@pytest.fixture(scope="module")
def server():
    srv = HubHTTPServer({TOKEN: "alice"}).start()
    yield srv
    srv.stop()


def hub_env(server, home: Path, pythonpath: list[Path] = ()) -> dict[str, str]:
    """A user's shell pointed at the fake Hub, with only ``pythonpath`` added to the import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING")) and k != "PYTHONPATH"}
    env.update(HF_ENDPOINT=server.url, HF_HOME=str(home), HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(map(str, pythonpath)))
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)


def install_plugin(site: Path) -> Path:
    """What `pip install ./examples/plugin` leaves behind, without pip: the module and a dist-info
    whose entry_points.txt is generated from the plugin's own pyproject.toml, so a wrong group
    or module path there fails these tests."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    group = project["entry-points"]["vaezoo.plugins"]
    site.mkdir(parents=True)
    for package in (p.parent for p in PLUGIN.glob("*/__init__.py")):
        shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist / "entry_points.txt").write_text(
        "[vaezoo.plugins]\n" + "".join(f"{name} = {value}\n" for name, value in group.items()))
    return site


def write_tiny_experiment(root: Path) -> Path:
    """The tiny YAML and the generated images it trains on (the built-in 'tensors' dataset, so a
    process without the test's parts can still read the checkpoint's config)."""
    data = _tiny()
    save_file({"train_images": data.train_images, "test_images": data.test_images}, str(root / "blobs.safetensors"))
    (root / "custom.yaml").write_text(TINY_YAML.format(data=root / "blobs.safetensors"))
    return root / "custom.yaml"


@pytest.fixture(scope="module")
def pushed(server, tmp_path_factory):
    """The decorator path, in its own process: the example module's decorators register the parts
    (importing it does not run its main()), a YAML names them, vaezoo.train trains, push_to_hub tags."""
    root = tmp_path_factory.mktemp("decorator")
    write_tiny_experiment(root)
    script = textwrap.dedent(
        f"""
        import io, json, sys, torch, vaezoo
        from safetensors.torch import save_file
        import custom_backbone_e2e  # a user's module: its @vaezoo.register_backbone decorators run on import
        assert "vaezoo_residual_mlp" not in sys.modules  # no plugin here: the decorators did it
        model, metrics = vaezoo.train("custom.yaml", out="run", stream=io.StringIO())
        result = model.push_to_hub({REPO_ID!r}, tag="v1")
        model.eval()
        torch.manual_seed(0)
        x = torch.rand(5, 1, 8, 8)
        torch.manual_seed(1)
        out = model(x)
        save_file({{"x": x}}, "x.safetensors")
        save_file({{**{{"weight." + k: v.contiguous() for k, v in model.state_dict().items()}},
                   "loss": out.loss, "elbo": out.elbo, "recon": model.reconstruct(x)}}, "trained.safetensors")
        print(json.dumps({{"commit": result.commit, "step": metrics["step"]}}))
        """
    )
    proc = run(["-c", script], hub_env(server, root / "hf-home", [EXAMPLES]), root)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["root"] = root
    return info


def test_trained_with_decorators_loads_by_name_in_a_fresh_process_through_the_entry_point(server, pushed, tmp_path):
    root = pushed["root"]
    assert pushed["step"] == 7  # (256 - 32 held out) / 32: it really trained
    assert server.state.repos[REPO_ID].tags["v1"] == pushed["commit"]
    site = install_plugin(tmp_path / "site")
    proc = run(["-c", LOAD_SCRIPT, f"hf-hub:{REPO_ID}@v1", str(root / "x.safetensors"), str(tmp_path / "got.st")],
               hub_env(server, tmp_path / "hf-home", [site]), tmp_path)
    assert proc.returncode == 0, proc.stderr
    # the parts came from the plugin module, imported by vaezoo through the entry point
    assert proc.stdout.split() == ["vaezoo_residual_mlp", "vaezoo_residual_mlp"]
    trained, got = load_file(str(root / "trained.safetensors")), load_file(str(tmp_path / "got.st"))
    assert trained.keys() == got.keys()
    assert any(k.startswith("weight.encoder.blocks.") for k in trained)  # the custom parts' own tensors
    for key in trained:
        assert torch.equal(trained[key], got[key]), key
    # and the run folder the trainer wrote holds those same weights
    saved = load_file(str(root / "run" / "model.safetensors"))
    assert saved.keys() == {k.removeprefix("weight.") for k in trained if k.startswith("weight.")}
    assert all(torch.equal(v, trained["weight." + k]) for k, v in saved.items())


def test_fresh_process_without_the_plugin_names_the_part_and_how_to_register_it(server, pushed, tmp_path):
    script = ("import sys, vaezoo\n"
              "try:\n    vaezoo.load(sys.argv[1])\n"
              "except vaezoo.ConfigError as exc:\n    print(exc)\n    sys.exit(3)\n")
    proc = run(["-c", script, f"hf-hub:{REPO_ID}@v1"], hub_env(server, tmp_path / "hf-home"), tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = proc.stdout
    assert "unknown encoder 'residual-mlp'" in message and "unknown decoder 'residual-mlp'" in message
    assert "@vaezoo.register_backbone('residual-mlp')" in message  # the encoder's decorator
    assert "@vaezoo.register_backbone('residual-mlp', role='decoder')" in message
    assert "'vaezoo.plugins' entry-point group" in message


def test_example_script_trains_pushes_and_loads_back(server, tmp_path, fashion_mnist_dir):
    """examples/custom_backbone_e2e.py as a user runs it, on Fashion-MNIST, with the Hub set by environment."""
    env = hub_env(server, tmp_path / "hf-home")
    env["VAEZOO_DATA"] = str(fashion_mnist_dir)
    repo = "alice/example-residual-mlp"
    proc = run([str(EXAMPLES / "custom_backbone_e2e.py"), "--out", "run", "--steps", "3", "--repo", repo,
                "--tag", "v1"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    commit = server.state.repos[repo].tags["v1"]
    assert lines[0].startswith("trained: 3 steps, test -ELBO ")
    assert lines[1] == "saved: run"
    assert lines[2] == f"pushed: {repo} commit {commit} tagged v1"
    assert lines[3] == (f"loaded: hf-hub:{repo}@v1 (ResidualMLPEncoder + ResidualMLPDecoder), "
                        "same weights: True, same reconstructions: True")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["encoder"]["name"] == config["model"]["decoder"]["name"] == "residual-mlp"
    assert config["trainer"]["max_steps"] == 3  # --steps reached the trainer
    # what the Hub holds at the tag are the weights the run folder holds
    stored = server.state.repos[repo].commits[commit].files["model.safetensors"]
    pushed = load(server.state.file_bytes(stored))
    local = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert pushed.keys() == local.keys() and all(torch.equal(pushed[k], local[k]) for k in local)


def test_example_script_without_a_hub_skips_the_push_with_a_note(server, tmp_path):
    env = hub_env(server, tmp_path / "hf-home")
    del env["HF_TOKEN"]  # no token: no push; the local run folder is loaded back instead
    before = len(server.state.requests)
    # the tiny YAML rather than Fashion-MNIST: the test above already ran the shipped one
    proc = run([str(EXAMPLES / "custom_backbone_e2e.py"), "--config", str(write_tiny_experiment(tmp_path)),
                "--out", "run", "--steps", "1", "--repo", "alice/nope"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "not pushing: set HF_TOKEN" in proc.stdout
    assert "loaded: run (ResidualMLPEncoder + ResidualMLPDecoder), same weights: True" in proc.stdout
    assert len(server.state.requests) == before and "alice/nope" not in server.state.repos


def test_the_documented_lazy_linear_encoder_trains(tmp_path, monkeypatch):
    """docs/configs.md's example backbone uses nn.LazyLinear: it must train and save like any other."""
    import io

    from _tiny_training import register, tiny_config

    register()
    monkeypatch.setenv("CI", "1")

    @vaezoo.register_backbone("test-lazy-encoder")
    def lazy_encoder(in_shape, out_features, width: int = 16):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(width), torch.nn.ReLU(),
                                   torch.nn.Linear(width, out_features))

    try:
        config = tiny_config(max_steps=3)
        config["model"]["encoder"] = {"name": "test-lazy-encoder", "width": 16}
        model, _ = vaezoo.train(config, out=tmp_path / "lazy", stream=io.StringIO())
        assert model.encoder[1].weight.shape == (16, 64)  # materialized from the 8x8 input
        loaded = vaezoo.load(tmp_path / "lazy")
        assert torch.equal(loaded.encoder[1].weight, model.encoder[1].weight)
    finally:
        vaezoo.parts.ENCODERS.remove("test-lazy-encoder")
