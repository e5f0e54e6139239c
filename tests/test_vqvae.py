"""The vqvae family end to end: spatial backbones, the codes, the code priors, training, resume,
the second stage and its CLI, the evaluation, and the configs it refuses."""

from __future__ import annotations

import io
import math

import pytest
import torch
import yaml

import vaezoo
from vaezoo.cli import main
from vaezoo.errors import ConfigError, UsageError
from vaezoo.parts import CODE_PRIORS, DECODERS, ENCODERS
from vaezoo.layout.checkpoint import load_checkpoint
from vaezoo.layout.lock import run_folder_lock

from _tiny_training import TINY_FAMILIES, CrashAt, register, tiny_config
from test_training_processes import _weights, sigkill_after_checkpoint

register()


def tiny_vq(**model) -> vaezoo.VQVAE:
    torch.manual_seed(0)
    return vaezoo.create({"model": {"family": "vqvae", "input_shape": [1, 8, 8], **TINY_FAMILIES["vqvae"], **model}})


def images(n: int = 16, seed: int = 0) -> torch.Tensor:
    """Grey levels on the 1/255 grid that the discretized likelihoods score."""
    return (torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 255).round() / 255


# ------------------------------------------------------------------ spatial backbones


@pytest.mark.parametrize("name, params", [("conv", {"channels": [8, 16]}), ("resnet", {"channels": [8, 16], "norm": "none"})])
def test_conv_and_resnet_backbones_give_and_take_a_grid_of_latent_vectors(name, params):
    encoder = ENCODERS.get(name)((1, 8, 8), (5, 2, 2), **params)
    decoder = DECODERS.get(name)((5, 2, 2), (3, 8, 8), **params)
    grid = encoder(torch.rand(3, 1, 8, 8))
    assert grid.shape == (3, 5, 2, 2)
    assert decoder(grid).shape == (3, 3, 8, 8)
    assert ENCODERS.get(name)((1, 8, 8), 7, **params)(torch.rand(3, 1, 8, 8)).shape == (3, 7)  # vectors still work
    with pytest.raises(ValueError, match="deepest feature map is 2x2 but the latent grid is 4x4"):
        ENCODERS.get(name)((1, 8, 8), (5, 4, 4), **params)


# ------------------------------------------------------------------ the model


def test_codes_decode_and_the_straight_through_gradient_reaches_the_encoder():
    model = tiny_vq(quantizer={"name": "vq-ema", "codebook_size": 8, "commitment": 0.0}).train()
    x = images()
    out = model(x)
    assert set(out.terms) >= {"recon", "kl", "commitment", "usage", "perplexity"}
    assert out.terms["kl"].item() == pytest.approx(4 * math.log(8))  # -log of the uniform prior over 2x2 codes
    out.loss.backward()  # commitment 0: the encoder's only gradient comes through the straight-through copy
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    model.eval()
    codes = model.encode(x).indices
    assert codes.shape == (16, 2, 2) and codes.dtype == torch.int64 and int(codes.max()) < 8
    torch.testing.assert_close(model.decode_indices(codes), model.reconstruct(x))
    torch.testing.assert_close(model.elbo(x), model.iwae(x, k=7))  # a deterministic posterior: equal for every k
    torch.testing.assert_close(model.elbo(x), model(x).elbo)


def test_encoding_never_moves_the_codebook():
    model = tiny_vq().train()
    before = {k: v.clone() for k, v in model.quantizer.state_dict().items()}
    model.encode(images())
    model.elbo(images())
    assert all(torch.equal(before[k], v) for k, v in model.quantizer.state_dict().items())
    model(images())  # a training forward does
    assert not torch.equal(before["embedding"], model.quantizer.embedding)


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(2, 2, 2), "must be integers"),
    (torch.zeros(2, 3, 3, dtype=torch.long), r"shape \(B, 2, 2\)"),
    (torch.full((2, 2, 2), 8), r"in 0\.\.7"),
])
def test_bad_code_indices_are_refused(bad, message):
    with pytest.raises(UsageError, match=message):
        tiny_vq().decode_indices(bad)


def test_without_a_code_prior_it_does_not_pretend_to_sample(tmp_path):
    model = tiny_vq()
    assert not model.can_sample
    with pytest.raises(UsageError, match="vaezoo fit-prior"):
        model.sample(4)
    model.save_pretrained(tmp_path, samples=16)  # the card is written; there is nothing to draw
    assert not (tmp_path / "samples.png").exists() and (tmp_path / "README.md").is_file()


def test_fsq_serves_as_the_quantizer():
    model = tiny_vq(quantizer={"name": "fsq", "levels": [3, 3, 2, 2]}).train()
    assert model.codebook_size == 36
    out = model(images())
    out.loss.backward()
    assert next(model.encoder.parameters()).grad.abs().sum() > 0


@pytest.mark.parametrize("model, path, words", [
    ({"quantizer": {"name": "vq-ema", "codebook_size": 0}}, "model.quantizer.codebook_size", "> 0"),
    ({"quantizer": {"name": "fsq", "levels": [3, 2.5, 2, 2]}}, "model.quantizer.levels.1", "int"),
    ({"quantizer": {"name": "fsq", "levels": [3, 3]}}, "model.quantizer", "levels has 2 entries"),
    ({"grid": [4, 4]}, "model.encoder", "latent grid is 4x4"),
    ({"objective": "elbo"}, "model.objective", "use vq"),
    ({"code_prior": {"name": "pixelcnn", "kernel_size": 2}}, "model.code_prior.kernel_size", "odd"),
])
def test_bad_vq_configs_are_refused_naming_the_field(model, path, words):
    with pytest.raises(ConfigError) as info:
        tiny_vq(**model)
    assert any(line.startswith(f"{path}: ") and words in line for line in info.value.lines()), info.value.lines()


def test_a_code_prior_for_a_model_without_codes_is_refused():
    with pytest.raises(ConfigError, match="model.code_prior: unknown field 'code_prior' for model family 'vae'"):
        vaezoo.create({"model": {"family": "vae", "input_shape": [1, 8, 8], **TINY_FAMILIES["vae"],
                                 "code_prior": "pixelcnn"}})



def test_a_code_prior_stage_needs_codes_and_a_prior(tmp_path):
    vae = vaezoo.create({"model": {"family": "vae", "input_shape": [1, 8, 8], **TINY_FAMILIES["vae"]}})
    vae.save_pretrained(tmp_path / "vae")
    with pytest.raises(UsageError, match="a code prior is for models with discrete codes"):
        vaezoo.train_code_prior(tmp_path / "vae")
    with pytest.raises(ConfigError, match="model.objective: .*name one in model.code_prior"):
        tiny_vq(objective="code-prior")
    stage = tiny_vq(objective="code-prior", code_prior={"name": "pixelcnn", "channels": 8, "layers": 2})
    trained = [name for name, p in stage.named_parameters() if p.requires_grad]
    assert trained and all(name.startswith("code_prior.") for name in trained)  # the first stage is frozen
    assert [p.requires_grad for p in stage.optimizer_groups()["model"]] == [True] * len(trained)


# ------------------------------------------------------------------ code priors


@pytest.mark.parametrize("name, params", [("pixelcnn", {"channels": 16, "layers": 4}),
                                          ("transformer", {"width": 16, "depth": 2, "heads": 2, "dropout": 0.0})])
def test_code_priors_are_causal_and_see_everything_before(name, params):
    torch.manual_seed(0)
    prior = CODE_PRIORS.get(name)(6, (3, 4), **params).eval()
    codes = torch.randint(6, (2, 3, 4))
    base = prior.logits(codes)
    assert base.shape == (2, 6, 3, 4)
    for position in range(12):
        changed = codes.clone()
        changed.view(2, -1)[:, position] += 1
        changed %= 6
        moved = (prior.logits(changed) - base).abs().amax(dim=(0, 1)).flatten()
        assert moved[: position + 1].max() == 0, f"position {position} leaks into itself or earlier"
        assert (moved[position + 1:] > 0).all(), f"a position after {position} cannot see it (a blind spot)"
    log_p = prior.log_prob(codes)
    assert log_p.shape == (2,) and torch.isfinite(log_p).all() and (log_p < 0).all()
    drawn = prior.sample(5)
    assert drawn.shape == (5, 3, 4) and drawn.dtype == torch.int64 and 0 <= int(drawn.min()) and int(drawn.max()) < 6


def test_the_code_prior_stage_trains_on_the_codes_the_finished_model_gives():
    """Under the loop's bf16 autocast the prior still sees the float32 first stage's codes (a bf16
    encoder moves some codes to other entries), and the first stage's statistics do not move."""
    torch.manual_seed(0)
    first = tiny_vq().train()
    for _ in range(20):  # move the EMA codebook onto the data, so that the codes spread over it
        first(images(64, seed=1))
    stage = tiny_vq(objective="code-prior", code_prior={"name": "pixelcnn", "channels": 8, "layers": 2}).train()
    stage.load_state_dict(first.state_dict(), strict=False)
    x = images(256, seed=7)
    expected = stage.encode(x).indices
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not torch.equal(stage.encode(x).indices, expected)  # what the stage must not train on
    before = {k: v.clone() for k, v in stage.state_dict().items() if not k.startswith("code_prior.")}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = stage(x)
    out.loss.backward()
    assert torch.equal(out.z, expected) and stage.training and stage.encoder.training
    assert all(torch.equal(stage.state_dict()[k], v) for k, v in before.items())
    assert all(p.grad is None for n, p in stage.named_parameters() if not n.startswith("code_prior."))


def test_the_code_prior_is_a_stage_of_the_training_loop_resumed_bit_for_bit(tmp_path):
    """`train_code_prior` runs the shared loop on the frozen codes: a run folder of its own with
    checkpoints, selection on the validation split and resume; the model with its prior lands in OUT."""
    register()
    run = tmp_path / "run"
    vaezoo.train(tiny_config("vq", family="vqvae", epochs=2), out=run, stream=io.StringIO())
    first = vaezoo.load(run).state_dict()
    prior = {"name": "pixelcnn", "channels": 8, "layers": 2}
    recipe = dict(epochs=3, batch_size=16, lr=3e-3)
    whole = vaezoo.train_code_prior(run, prior, out=tmp_path / "whole", stream=io.StringIO(), **recipe)
    with pytest.raises(KeyboardInterrupt):  # dies in epoch 3, after epoch 2's checkpoint
        vaezoo.train_code_prior(run, prior, out=tmp_path / "broken", stream=CrashAt("epoch 3/3"), **recipe)
    stage = tmp_path / "broken" / "code-prior"
    assert load_checkpoint(stage).state["global_step"] == 24 and not (tmp_path / "broken" / "config.json").exists()
    with pytest.raises(vaezoo.training.CheckpointError, match="trainer.optimizer"):
        vaezoo.train_code_prior(run, prior, out=tmp_path / "broken", stream=io.StringIO(), **{**recipe, "lr": 1e-2})
    resumed = vaezoo.train_code_prior(run, prior, out=tmp_path / "broken", stream=io.StringIO(), **recipe)
    for key, value in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
        if not key.startswith("code_prior."):  # the first stage did not move: encoder, codebook, decoder
            assert torch.equal(value, first[key]), key
    # the epoch is selected on the validation split, by the loop's rule, and recorded
    records = [yaml.safe_load(line) for line in (tmp_path / "whole" / "code-prior" / "metrics.jsonl").read_text()
               .splitlines()]
    best = min(records, key=lambda r: r["val_neg_elbo"])
    recorded = vaezoo.load(tmp_path / "whole").config
    fit = yaml.safe_load((tmp_path / "whole" / "config.json").read_text())["training"]["code_prior"]
    assert fit["selected_epoch"] == best["epoch"] and fit["val_nll_nats_per_grid"] == pytest.approx(best["val_kl"])
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    # one checkpoint holds the autoencoder and its prior, under the first stage's objective
    loaded = vaezoo.load(tmp_path / "whole")
    assert recorded.code_prior.name == "pixelcnn" and recorded.objective.name == "vq"
    assert (tmp_path / "whole" / "samples.png").is_file()
    x = images(8, seed=3)
    torch.testing.assert_close(loaded.elbo(x), whole.eval().elbo(x))
    torch.manual_seed(5)
    codes = loaded.code_prior.sample(3)
    torch.manual_seed(5)
    torch.testing.assert_close(loaded.sample(3), loaded.decode_indices(codes))


# ------------------------------------------------------------------ training, resume, CLI, evaluation


def test_sigkill_mid_run_then_resume_gives_bit_identical_codebooks(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    config = tiny_config("vq", family="vqvae", epochs=3, checkpoint_every=4)
    path = tmp_path / "vq.yaml"
    path.write_text(yaml.safe_dump(config))
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    vaezoo.train(path, out=whole, stream=io.StringIO())
    sigkill_after_checkpoint(path, broken, step=8)
    vaezoo.train(resume=broken, stream=io.StringIO())
    a, b = _weights(whole), _weights(broken)
    assert {"quantizer.embedding", "quantizer.cluster_size", "quantizer.embed_sum"} <= set(a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_train_fit_prior_sample_and_eval_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CI", "1")
    path = tmp_path / "vq.yaml"
    path.write_text(yaml.safe_dump(tiny_config("vq", family="vqvae", epochs=2)))
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run)]) == 0
    metrics = [yaml.safe_load(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"train_term/usage", "train_term/perplexity", "val_term/mse", "val_term/psnr"} <= set(metrics[-1])
    assert main(["sample", str(run), "-o", str(tmp_path / "no.png")]) == 2  # no code prior yet
    assert "vaezoo fit-prior" in capsys.readouterr().err
    assert main(["fit-prior", str(run), "--prior", "transformer", "--set", "width=16", "--set", "heads=2",
                 "--set", "depth=1", "--epochs", "2", "--batch-size", "32"]) == 0
    assert (run / "code-prior" / "checkpoints" / "last.safetensors").is_file() and (run / "samples.png").is_file()
    assert vaezoo.load(run).config.code_prior.name == "transformer"
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "-q"]) == 0
    report = vaezoo.EvalReport.from_dict(yaml.safe_load(capsys.readouterr().out))
    assert report["neg_elbo"] == pytest.approx(report["recon"] + report["kl"], rel=1e-9)
    assert 0 < report["codebook_usage"] <= 1 and 1 <= report["perplexity"] <= 8
    assert report.protocol["prior"].startswith("transformer")
    assert main(["fit-prior", str(run), "--prior", "gmm"]) == 2
    assert "discrete codes" in capsys.readouterr().err


def test_fit_prior_gmm_for_a_vae_and_a_code_prior_refused_for_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CI", "1")
    path = tmp_path / "vae.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=1)))
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run)]) == 0
    assert main(["fit-prior", str(run), "--prior", "pixelcnn"]) == 2
    assert "a code prior is for models with discrete codes" in capsys.readouterr().err
    with run_folder_lock(tmp_path / "gmm"):  # a training writing that folder: fit-prior waits its turn
        assert main(["fit-prior", str(run), "--prior", "gmm", "--components", "3", "--out", str(tmp_path / "gmm")]) == 2
    assert f"another command holds the run folder {tmp_path / 'gmm'} (vaezoo, process " in capsys.readouterr().err
    assert not (tmp_path / "gmm" / "model.safetensors").exists()
    assert main(["fit-prior", str(run), "--prior", "gmm", "--components", "3", "--out", str(tmp_path / "gmm")]) == 0
    assert vaezoo.load(tmp_path / "gmm").config.prior.name == "mog"


def test_the_evaluation_counts_codebook_usage_and_psnr_over_the_whole_set():
    model = tiny_vq().eval()
    x = images(40, seed=4)
    report = vaezoo.evaluate(model, x, batch_size=7, progress=False)
    codes = model.encode(x).indices
    assert report["codebook_usage"] == pytest.approx(codes.unique().numel() / 8)
    frequencies = torch.bincount(codes.flatten(), minlength=8).double() / codes.numel()
    entropy = -(frequencies[frequencies > 0] * frequencies[frequencies > 0].log()).sum()
    assert report["perplexity"] == pytest.approx(float(entropy.exp()))
    mse = (model.reconstruct(x) - x).pow(2).flatten(1).mean(1)
    assert report["mse"] == pytest.approx(float(mse.mean()), rel=1e-5)
    assert report["psnr"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-5)
    assert report["neg_elbo"] == pytest.approx(float(-model.elbo(x).mean()), rel=1e-5)
    assert report["kl"] == pytest.approx(4 * math.log(8))
