"""trainer.init_from (a fresh run from another model's weights), VampPrior ``init: data``, and the
CPU's flushed denormals while training."""

from __future__ import annotations

import io
import platform

import pytest
import torch

import vaezoo
from vaezoo.errors import CheckpointError
from vaezoo.training import loop
from vaezoo.layout.checkpoint import checkpoint_path
from vaezoo.training.distributed import init_distributed
from vaezoo.training.setup import prepare_run

from _tiny_training import register, tiny_config

register()

VAMP = {"name": "vamp", "pseudo_inputs": 8, "init": "data"}


@pytest.fixture
def ci_env(monkeypatch):
    monkeypatch.setenv("CI", "1")


@pytest.fixture
def parent(tmp_path, ci_env):
    """A briefly trained tiny VAE with a standard normal prior, as a run folder."""
    out = tmp_path / "parent"
    vaezoo.train(tiny_config(), overrides={"trainer.epochs": 1}, out=out, stream=io.StringIO())
    return out


def _prepared(config: dict, overrides: dict, out):
    experiment = vaezoo.get_config(config, overrides)
    return prepare_run(experiment, out, init_distributed("cpu"), resume=None)


def test_a_warm_start_copies_every_shared_tensor_and_says_what_is_fresh(parent, tmp_path):
    source = vaezoo.load(parent).state_dict()
    run = _prepared(tiny_config(), {"trainer.init_from": str(parent), "model.prior": VAMP}, tmp_path / "child")
    mine = run.model.state_dict()
    shared = [k for k in mine if k in source]
    assert shared and all(torch.equal(mine[k], source[k].to(mine[k].dtype)) for k in shared)
    notes = "\n".join(run.notes)
    assert f"{len(shared)} tensors from {parent}" in notes
    assert "freshly initialized: prior.pseudo_inputs" in notes
    # the fresh pseudo-inputs are training images, squeezed inside the hard tanh's open range
    pseudo = run.model.prior.pseudo_inputs.detach()
    assert "8 pseudo-inputs set to random training images" in notes
    assert pseudo.min() >= 0.01 - 1e-6 and pseudo.max() <= 0.99 + 1e-6
    pixels = (pseudo - 0.01) / 0.98 * 255
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)  # 8-bit pixel values, not noise


def test_the_moving_average_starts_from_the_warm_started_weights(parent, tmp_path):
    run = _prepared(tiny_config(), {"trainer.init_from": str(parent), "trainer.ema_decay": 0.9}, tmp_path / "child")
    source = vaezoo.load(parent).state_dict()
    averaged = run.average.module.state_dict()
    assert all(torch.equal(averaged[k], source[k]) for k in source)


def test_a_vamp_prior_from_scratch_starts_at_training_images_only_when_asked(tmp_path, ci_env):
    noise = _prepared(tiny_config(), {"model.prior": {**VAMP, "init": "noise"}}, tmp_path / "a")
    data = _prepared(tiny_config(), {"model.prior": VAMP}, tmp_path / "b")
    assert abs(float(noise.model.prior.pseudo_inputs.detach().mean()) - 0.05) < 0.02  # N(0.05, 0.01^2)
    assert float(data.model.prior.pseudo_inputs.detach().std()) > 0.1
    assert not any("pseudo-inputs" in note for note in noise.notes)
    again = _prepared(tiny_config(), {"model.prior": VAMP}, tmp_path / "c")
    assert torch.equal(again.model.prior.pseudo_inputs, data.model.prior.pseudo_inputs)  # from trainer.seed
    with pytest.raises(vaezoo.errors.UsageError, match="at least 500 training images .*the dataset has 192"):
        _prepared(tiny_config(), {"model.prior": {**VAMP, "pseudo_inputs": 500}}, tmp_path / "d")


def test_pseudo_inputs_from_the_source_are_kept_not_drawn_again(tmp_path, ci_env):
    first = tmp_path / "vamp"
    vaezoo.train(tiny_config(), overrides={"trainer.epochs": 1, "model.prior": VAMP}, out=first, stream=io.StringIO())
    trained = vaezoo.load(first).prior.pseudo_inputs.detach()
    run = _prepared(tiny_config(), {"trainer.init_from": str(first), "model.prior": VAMP}, tmp_path / "child")
    assert torch.equal(run.model.prior.pseudo_inputs.detach(), trained)
    assert not any("random training images" in note for note in run.notes)


def test_another_architecture_is_refused_naming_the_tensor(parent, tmp_path):
    wrong = r"another architecture \(decoder\.net\.0\.weight is \[32, 4\] there, \[32, 3\] here"
    with pytest.raises(CheckpointError, match=wrong):
        _prepared(tiny_config(), {"trainer.init_from": str(parent), "model.latent_dim": 3}, tmp_path / "child")


def test_a_resumed_warm_start_reads_its_checkpoint_not_the_source(parent, tmp_path):
    out = tmp_path / "child"
    overrides = {"trainer.init_from": str(parent), "trainer.epochs": 1}
    vaezoo.train(tiny_config(), overrides=overrides, out=out, stream=io.StringIO())
    moved = tmp_path / "elsewhere"
    parent.rename(moved)  # the source is gone: a resume must not need it
    _, metrics = vaezoo.train(overrides={"trainer.epochs": 2}, resume=out, stream=io.StringIO())
    assert metrics["epoch"] == 2
    with pytest.raises(CheckpointError, match="trainer.init_from"):
        vaezoo.train(tiny_config(), overrides={**overrides, "trainer.init_from": str(moved), "trainer.epochs": 3},
                     resume=out, stream=io.StringIO())


def test_training_flushes_denormals_on_the_cpu_and_restores_the_default(tmp_path, ci_env, monkeypatch):
    supported = torch.set_flush_denormal(True)
    torch.set_flush_denormal(False)
    if platform.machine() in ("x86_64", "AMD64"):
        assert supported  # SSE3: every x86-64 CPU torch runs on
    seen = []
    step = loop.train_step

    def watching(*args, **kwargs):
        seen.append(float(torch.tensor([1e-40]) * 1.0) == 0.0)
        return step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", watching)
    vaezoo.train(tiny_config(), overrides={"trainer.epochs": 1}, out=tmp_path / "run", stream=io.StringIO())
    assert seen and all(flushed == supported for flushed in seen)
    assert float(torch.tensor([1e-40]) * 1.0) != 0.0  # the user's process gets torch's default back


def test_a_weights_file_is_a_source_too(parent, tmp_path):
    from safetensors.torch import save_file

    weights = {k: v.half() for k, v in vaezoo.load(parent).state_dict().items()}  # as the registry ships them
    save_file(weights, str(tmp_path / "retired.safetensors"))
    run = _prepared(tiny_config(), {"trainer.init_from": str(tmp_path / "retired.safetensors")}, tmp_path / "child")
    mine = run.model.state_dict()
    assert all(torch.equal(mine[k], weights[k].to(mine[k].dtype)) for k in weights)
    with pytest.raises(CheckpointError, match="trainer.init_from: .*missing.safetensors: no such weights file"):
        _prepared(tiny_config(), {"trainer.init_from": str(tmp_path / "missing.safetensors")}, tmp_path / "other")


def test_an_unknown_source_is_refused_before_any_training(tmp_path, ci_env):
    unknown = "trainer.init_from: cannot load 'fashion-vae40-emma'.*Did you mean 'fashion-vae40-ema'"
    with pytest.raises(vaezoo.VaezooError, match=unknown):
        vaezoo.train(tiny_config(), overrides={"trainer.init_from": "fashion-vae40-emma"}, out=tmp_path / "run",
                     stream=io.StringIO())
    assert not checkpoint_path(tmp_path / "run").exists()
