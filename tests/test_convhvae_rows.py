"""scripts/convhvae_rows.sh: which steps a session's run of the pipeline takes, in which order, with
which flags. The steps themselves (training, publication, rescoring) are tested on their own; here
`vaezoo` and `python` are stand-ins that record their arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import vaezoo

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "convhvae_rows.sh"


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts")
    shutil.copytree(SCRIPT.parents[1] / "configs", tmp_path / "configs")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("vaezoo", "python"):
        stand_in = bin_dir / tool
        stand_in.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/calls"\n')
        stand_in.chmod(0o755)
    return tmp_path


def _run(checkout: Path, name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    env = {**os.environ, "PATH": f"{checkout / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(checkout / "scripts" / "convhvae_rows.sh"), name], env=env,
                          capture_output=True, text=True)
    calls = checkout / "calls"
    return done, calls.read_text().splitlines() if calls.is_file() else []


def test_a_fresh_run_trains_then_publishes_into_the_pack_then_rescores(checkout):
    done, calls = _run(checkout, "fashion-convhvae40")
    assert done.returncode == 0, done.stderr
    assert calls[0] == "vaezoo train configs/fashion-convhvae40.yaml --out runs/fashion-convhvae40"
    publish, rescore = calls[1].split(), calls[2].split()
    assert publish[:3] == ["python", "scripts/publish_fashion_run.py", "fashion-convhvae40"]
    assert {"--fast-path", "--no-costs"} <= set(publish)
    assert publish[publish.index("--pack") + 1] == "conv"
    assert publish[publish.index("--answers") + 1] == "exemplar-vae/convhvae"
    assert rescore[:3] == ["python", "benchmarks/rescore.py", "fashion-convhvae40"]
    assert rescore[rescore.index("--seed") + 1] == "1" and rescore[rescore.index("--shards") + 1] == "1"
    assert "--record" in rescore and rescore[rescore.index("--keep") + 1] == "runs/rescore/fashion-convhvae40-seed1"


def test_an_interrupted_training_resumes_and_a_finished_one_is_not_trained_again(checkout):
    run = checkout / "runs" / "fashion-convhvae40-vamp"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.safetensors").write_bytes(b"")
    done, calls = _run(checkout, "fashion-convhvae40-vamp")
    assert done.returncode == 0, done.stderr
    epochs = vaezoo.get_config(str(checkout / "configs" / "fashion-convhvae40-vamp.yaml")).trainer.epochs
    assert calls[0] == f"vaezoo train --resume runs/fashion-convhvae40-vamp --set trainer.epochs={epochs}"
    assert "exemplar-vae/convhvae-vampprior" in calls[1]
    (checkout / "calls").unlink()
    (run / "model.safetensors").write_bytes(b"")
    _, calls = _run(checkout, "fashion-convhvae40-vamp")
    assert not any(call.startswith("vaezoo train") for call in calls) and len(calls) == 2


def test_a_resume_goes_to_the_recipes_epoch_count_as_it_is_now(checkout):
    (checkout / "runs" / "fashion-convhvae40" / "checkpoints").mkdir(parents=True)
    (checkout / "runs" / "fashion-convhvae40" / "checkpoints" / "last.safetensors").write_bytes(b"")
    recipe = checkout / "configs" / "fashion-convhvae40.yaml"
    recipe.write_text(recipe.read_text().replace("\n  epochs: ", "\n  epochs: 1234\n  # was: "))
    _, calls = _run(checkout, "fashion-convhvae40")
    assert calls[0] == "vaezoo train --resume runs/fashion-convhvae40 --set trainer.epochs=1234"
    recipe.write_text(recipe.read_text().replace("\n  epochs: 1234", ""))
    done, _ = _run(checkout, "fashion-convhvae40")
    assert done.returncode == 2 and "has no trainer.epochs line" in done.stderr


def test_another_name_is_refused(checkout):
    done, calls = _run(checkout, "fashion-conv64")
    assert done.returncode == 2 and "unknown run 'fashion-conv64'" in done.stderr and not calls
