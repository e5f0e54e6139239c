"""Push to and load from a Hub-compatible server on 127.0.0.1 with the stock huggingface_hub client.

The server (tests/hub_server.py) is started once for the module; every test gets its own
HF_HOME, so no test touches a user's cache or sees another test's downloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_server import HubHTTPServer, point_client_at
from safetensors.torch import load_file

import vaezoo
import vaezoo.cli
from vaezoo import resources
from vaezoo.errors import ChecksumError, HubError
from vaezoo.maintenance.publish import publish_run

TOKEN = "hf_vaezoo_test_Secret_0123456789"  # distinctive, so a leak is easy to find
OTHER_TOKEN = "hf_bob_test_token_9876543210"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    srv = HubHTTPServer({TOKEN: "alice", OTHER_TOKEN: "bob"}).start()
    yield srv
    srv.stop()


@pytest.fixture
def hub(server, tmp_path, monkeypatch):
    """The client pointed at the server, with an isolated HF_HOME and alice's token in HF_TOKEN."""
    home = tmp_path / "hf-home"
    point_client_at(monkeypatch, server.url, home, token=TOKEN)
    server.home = home
    return server


def tiny_model(seed: int = 0) -> vaezoo.VAE:
    torch.manual_seed(seed)
    return vaezoo.create("fashion-mlp16", latent_dim=4, **{"encoder.hidden": [16], "decoder.hidden": [16]})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_push_then_pull_by_tag_gives_identical_tensors(hub):
    model = tiny_model()
    result = model.push_to_hub("alice/tiny-tag", tag="v1")
    repo = hub.state.repos["alice/tiny-tag"]
    assert repo.tags["v1"] == result.commit
    # one commit holds every file: config, weights, card and the sample grid
    assert set(repo.commits[result.commit].files) == {".gitattributes", "config.json", "model.safetensors",
                                                      "README.md", "samples.png"}
    assert sum(1 for m, p in hub.state.requests if m == "POST" and p == "/api/models/alice/tiny-tag/commit/main") == 1

    loaded = vaezoo.load("hf-hub:alice/tiny-tag@v1")
    assert same_weights(model, loaded)
    assert not loaded.training
    assert loaded.config == model.config


def test_pinned_revision_keeps_first_weights_after_second_push(hub):
    first, second = tiny_model(1), tiny_model(2)
    r1 = vaezoo.push_to_hub(first, "alice/tiny-pin", tag="v1")
    r2 = vaezoo.push_to_hub(second, "alice/tiny-pin", tag="v2")
    assert r1.commit != r2.commit
    assert same_weights(vaezoo.load(f"hf-hub:alice/tiny-pin@{r1.commit}"), first)
    assert same_weights(vaezoo.load("hf-hub:alice/tiny-pin", revision="v1"), first)
    assert same_weights(vaezoo.load("hf-hub:alice/tiny-pin"), second)  # main moved on


def test_push_a_folder_with_the_cli_prints_no_token(hub, tmp_path, capsys, caplog):
    folder = tmp_path / "run"
    tiny_model().save_pretrained(folder, samples=4)
    caplog.set_level("DEBUG")
    assert vaezoo.cli.main(["push", str(folder), "alice/tiny-cli", "--tag", "v1", "--private"]) == 0
    out = capsys.readouterr()
    assert "alice/tiny-cli" in out.out and hub.state.repos["alice/tiny-cli"].private
    assert vaezoo.cli.main(["pull", "hf-hub:alice/tiny-cli@v1"]) == 0
    pulled = Path(capsys.readouterr().out.strip())
    assert (pulled / "model.safetensors").is_file() and (pulled / "README.md").is_file()
    # the token reached the server (the private repo was created and read) but nothing wrote it down
    written = [p for root in (tmp_path, hub.home) for p in root.rglob("*") if p.is_file()]
    assert written, "expected files to scan"
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in out.out + out.err + caplog.text


def test_registry_entry_pointing_at_the_hub_downloads_and_verifies(hub, tmp_path, monkeypatch):
    registry = make_hub_entry(hub, tmp_path, monkeypatch, "tiny-pub")
    entry = vaezoo.hub.get_entry("tiny-pub")
    (registry / entry.shipped).unlink()  # a fresh machine without the shipped file: the Hub serves it
    model = vaezoo.load("tiny-pub")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    stored = load_file(str(hub.home / "hub" / "models--alice--tiny-pub" / "snapshots" / entry.weights.revision
                           / "model.safetensors"))
    assert all(torch.equal(model.state_dict()[k], v.float()) for k, v in stored.items())


def test_tampered_download_is_refused(hub, tmp_path, monkeypatch):
    registry = make_hub_entry(hub, tmp_path, monkeypatch, "tiny-tamper")
    entry = vaezoo.hub.get_entry("tiny-tamper")
    (registry / entry.shipped).unlink()
    good = hub.state.file_bytes(hub.state.repos["alice/tiny-tamper"].commits[entry.weights.revision]
                                .files["model.safetensors"])
    bad = bytearray(good)
    bad[-1] ^= 0xFF  # one flipped bit in the last tensor: still a readable file, other bytes
    hub.state.tamper("alice/tiny-tamper", entry.weights.revision, "model.safetensors", bytes(bad))
    with pytest.raises(ChecksumError, match="refused the weights of 'tiny-tamper'.*sha256"):
        vaezoo.load("tiny-tamper")


def test_tampered_cache_is_refused_offline(hub, tmp_path, monkeypatch):
    registry = make_hub_entry(hub, tmp_path, monkeypatch, "tiny-cache")
    entry = vaezoo.hub.get_entry("tiny-cache")
    (registry / entry.shipped).unlink()
    vaezoo.load("tiny-cache")  # fills the cache
    cached = hub.home / "hub" / "models--alice--tiny-cache" / "snapshots" / entry.weights.revision / "model.safetensors"
    blob = cached.resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    point_client_at(monkeypatch, hub.url, hub.home, offline=True)
    with pytest.raises(ChecksumError, match="registry pins"):
        vaezoo.load("tiny-cache")


def test_offline_mode_serves_from_the_cache(hub, tmp_path, monkeypatch):
    model = tiny_model(3)
    model.push_to_hub("alice/tiny-offline", tag="v1")
    vaezoo.load("hf-hub:alice/tiny-offline@v1")  # online: downloads into HF_HOME
    before = len(hub.state.requests)
    point_client_at(monkeypatch, hub.url, hub.home, offline=True)
    assert same_weights(vaezoo.load("hf-hub:alice/tiny-offline@v1"), model)
    assert len(hub.state.requests) == before, "offline mode must not contact the server"
    with pytest.raises(HubError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        vaezoo.load("hf-hub:alice/tiny-offline@never-downloaded")


def test_missing_repo_revision_and_file_in_vaezoo_words(hub):
    with pytest.raises(HubError, match="'alice/does-not-exist'.*was not found"):
        vaezoo.load("hf-hub:alice/does-not-exist")
    tiny_model().push_to_hub("alice/tiny-missing")
    with pytest.raises(HubError, match="revision 'v9' does not exist in Hub repository 'alice/tiny-missing'"):
        vaezoo.load("hf-hub:alice/tiny-missing@v9")
    with pytest.raises(HubError, match="file 'config.json' is not in Hub repository 'alice/tiny-missing'"):
        from huggingface_hub import hf_hub_download

        from vaezoo.layout import translate_hub_errors

        with translate_hub_errors("alice/tiny-missing", "main", "config.json"):
            hf_hub_download("alice/tiny-missing", "nope/config.json")
    # a repo that is not a vaezoo checkpoint at all
    from huggingface_hub import HfApi

    HfApi().create_repo("alice/not-a-vae")
    with pytest.raises(HubError, match="'config.json' is not in Hub repository 'alice/not-a-vae'"):
        vaezoo.load("hf-hub:alice/not-a-vae")


def test_private_repo_needs_a_token(hub, monkeypatch):
    model = tiny_model(4)
    model.push_to_hub("alice/tiny-private", private=True, tag="v1")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="not found, or it is private and no valid token was given"):
        vaezoo.load("hf-hub:alice/tiny-private@v1")
    with pytest.raises(HubError, match="HTTP 401"):
        vaezoo.load("hf-hub:alice/tiny-private@v1", token="hf_wrong")
    assert same_weights(vaezoo.load("hf-hub:alice/tiny-private@v1", token=TOKEN), model)
    # pushing needs a token too, and another user's token cannot write to alice's repo
    with pytest.raises(HubError):
        model.push_to_hub("alice/tiny-private")
    with pytest.raises(HubError, match="HTTP 403"):
        model.push_to_hub("alice/tiny-private", token=OTHER_TOKEN)


def test_cli_in_a_subprocess_uses_the_standard_environment(hub, tmp_path):
    """HF_ENDPOINT/HF_HOME/HF_TOKEN set before import, as a user's shell would: no patching."""
    folder = tmp_path / "run"
    model = tiny_model(5)
    model.save_pretrained(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "sub-home"), HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(REPO_ROOT))
    script = ("import sys, vaezoo.cli as c\n"
              "rc = c.main(['push', sys.argv[1], 'alice/tiny-sub', '--tag', 'v1'])\n"
              "rc = rc or c.main(['pull', 'hf-hub:alice/tiny-sub@v1'])\n"
              "rc = rc or c.main(['pull', 'hf-hub:alice/missing-repo'])\n"
              "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(folder)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr  # the last pull fails cleanly
    pulled = Path(proc.stdout.strip().splitlines()[-1])
    assert pulled.is_relative_to(tmp_path / "sub-home")
    assert same_weights(vaezoo.load(pulled), model)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "alice/missing-repo" in errors[0] and "Traceback" not in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------- helpers


def make_hub_entry(hub, tmp_path: Path, monkeypatch, name: str) -> Path:
    """A registry in tmp_path holding ``name``, published with push=True to alice/<name>."""
    registry = tmp_path / "registry"
    registry.mkdir()
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    run = tmp_path / "run"
    # distinct weights per entry: the server's LFS store is content-addressed and shared, so a test that
    # tampers with one object must not hit another test's identical file
    torch.manual_seed(sum(map(ord, name)))
    experiment = vaezoo.get_config("fashion-mlp16")
    vaezoo.create("fashion-mlp16").save_pretrained(run, experiment=experiment)
    publish_run(run, name, f"alice/{name}", config="fashion-mlp16", push=True, tag="v1", registry=registry)
    entry = json.loads((registry / f"{name}.json").read_text())
    assert entry["weights"]["revision"] == hub.state.repos[f"alice/{name}"].tags["v1"]
    return registry


def test_the_pushed_card_loads_from_the_hub_not_from_the_pushers_folder(hub, tmp_path, capsys):
    from huggingface_hub import hf_hub_download

    folder = tiny_model().save_pretrained(tmp_path / "runs" / "hv", samples=4)
    local_line = f"model = vaezoo.load({str(folder)!r})  # eval mode"
    assert local_line in (folder / "README.md").read_text()
    assert vaezoo.cli.main(["push", str(folder), "alice/tiny-card", "--tag", "v1"]) == 0
    pushed = Path(hf_hub_download("alice/tiny-card", "README.md", revision="v1")).read_text()
    assert "model = vaezoo.load('hf-hub:alice/tiny-card@v1')  # eval mode" in pushed and str(folder) not in pushed
    assert pushed.count("vaezoo.load(") == 1
    assert local_line in (folder / "README.md").read_text()  # the local card still loads the local folder
    capsys.readouterr()
    for ref in (str(folder), "hf-hub:alice/tiny-card@v1"):  # `info` reads a run folder and a Hub repo alike
        assert vaezoo.cli.main(["info", ref]) == 0
        shown = dict(line.split("  ", 1) for line in capsys.readouterr().out.splitlines())
        assert shown["family"].strip() == "vae" and shown["parameters"].strip() == f"{tiny_model().num_parameters():,}"
        assert shown["load with"].strip() == f"vaezoo.load({ref!r})"
    assert vaezoo.cli.main(["info", str(folder), "--set", "model.latent_dim=8"]) == 2
    assert "config.json holds its resolved config" in capsys.readouterr().err
    result = tiny_model().push_to_hub("alice/tiny-card-main")  # a model pushed without a tag: the repo's main
    card = hub.state.repos["alice/tiny-card-main"].commits[result.commit].files["README.md"]
    assert "vaezoo.load('hf-hub:alice/tiny-card-main')  # eval mode" in card.content.decode()


def test_a_run_remembers_its_data_folder_and_the_push_leaves_that_path_at_home(hub, tmp_path):
    """A run trained with --data DIR records DIR (`vaezoo eval RUN` then finds the data); the pushed
    config.json does not carry that folder of the pusher's machine."""
    experiment = vaezoo.get_config("fashion-mlp16")
    data = experiment.data.model_copy(update={"root": str(tmp_path / "my-data")})
    folder = tiny_model().save_pretrained(tmp_path / "run", experiment=experiment.model_copy(update={"data": data}))
    assert json.loads((folder / "config.json").read_text())["data"]["root"] == str(tmp_path / "my-data")
    result = vaezoo.cli.main(["push", str(folder), "alice/tiny-data"])
    assert result == 0
    last = list(hub.state.repos["alice/tiny-data"].commits.values())[-1]
    pushed = json.loads(last.files["config.json"].content.decode())
    assert pushed["data"]["root"] is None and pushed["data"]["dataset"] == {"name": "fashion-mnist"}
    assert str(tmp_path) not in json.dumps(pushed)


def test_pushing_a_run_folder_leaves_its_training_state_out(hub, tmp_path):
    folder = tmp_path / "run"
    tiny_model().save_pretrained(folder)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.safetensors").write_bytes(b"optimizer state, 3x the model")
    (folder / "metrics.jsonl").write_text('{"epoch": 1}\n')
    result = vaezoo.push_to_hub(folder, "alice/tiny-run")
    files = set(hub.state.repos["alice/tiny-run"].commits[result.commit].files)
    assert {"config.json", "model.safetensors", "README.md", "metrics.jsonl"} <= files
    assert not any(f.startswith("checkpoints/") for f in files)
    assert vaezoo.cli.main(["push", str(folder), "alice/tiny-run-all", "--include-training"]) == 0
    repo = hub.state.repos["alice/tiny-run-all"]
    assert "checkpoints/last.safetensors" in set(repo.commits[repo.branches["main"]].files)


def test_pull_of_a_name_not_on_the_hub_returns_the_shipped_copy(hub, capsys):
    assert vaezoo.cli.main(["pull", "fashion-conv64"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_file() and path == resources.registry_dir() / "weights" / "fashion-conv64.safetensors"


def test_a_symlink_out_of_the_folder_is_refused_and_nothing_is_pushed(hub, tmp_path):
    folder = tiny_model().save_pretrained(tmp_path / "linked")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the Hub")
    (folder / "notes.txt").symlink_to(secret)
    with pytest.raises(HubError, match=r"notes.txt is a symbolic link to .*secret.txt, outside the folder; copy the "
                                       r"file in, or remove the link"):
        vaezoo.push_to_hub(folder, "alice/linked")
    assert "alice/linked" not in hub.state.repos or not hub.state.repos["alice/linked"].commits
    (folder / "notes.txt").unlink()
    (folder / "card-copy.md").symlink_to(folder / "README.md")  # a link inside the folder is its file
    os.mkfifo(folder / "pipe")  # neither file nor folder: skipped
    result = vaezoo.push_to_hub(folder, "alice/linked")
    files = hub.state.repos["alice/linked"].commits[result.commit].files
    assert "card-copy.md" in files and "pipe" not in files


def test_pushing_an_existing_tag_fails_before_main_moves(hub):
    first = tiny_model(0).push_to_hub("alice/tagged", tag="v1")
    repo = hub.state.repos["alice/tagged"]
    with pytest.raises(HubError, match="tag 'v1' already exists in alice/tagged; nothing was pushed: pick another "
                                       "tag"):
        tiny_model(1).push_to_hub("alice/tagged", tag="v1")
    assert repo.branches["main"] == first.commit and repo.tags["v1"] == first.commit
