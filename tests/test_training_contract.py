"""The family owns its training: named optimizers over named parameter groups, a step of several
updates, training parts kept in checkpoints and out of the published weights, with FactorVAE
(a discriminator with its own optimizer) as the proving model."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file, save_file

import vaezoo
from vaezoo.errors import CheckpointError, ConfigError
from vaezoo.parts.objectives import FactorVAEObjective, permute_dims
from vaezoo.parts.objectives.factorvae import JOINT, PRODUCT
from vaezoo.schemas import ExperimentConfig
from vaezoo.layout import checkpoint as ckpt
from vaezoo.layout.checkpoint import checkpoint_path, load_checkpoint
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config
from test_training_processes import sigkill_after_checkpoint, train_on_two_processes

register()

FACTOR = {"name": "factor-vae", "gamma": 4.0, "hidden": [16, 16]}


def _write(tmp_path, config, name="tiny.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def _factor_model(latent_dim: int = 4):
    config = tiny_config(FACTOR)["model"]
    config["latent_dim"] = latent_dim
    return vaezoo.create(config)


# ---------------------------------------------------------------------------- the computation


def test_permute_dims_shuffles_each_dimension_on_its_own():
    torch.manual_seed(0)
    z = torch.arange(64 * 3, dtype=torch.float32).reshape(64, 3)
    permuted = permute_dims(z)
    for j in range(3):  # each column keeps its values (a permutation of the batch)
        assert torch.equal(permuted[:, j].sort().values, z[:, j])
    rows = {tuple(row) for row in z.tolist()}
    # the columns move independently: almost no row of the product sample is a row of the batch
    assert sum(tuple(row) in rows for row in permuted.tolist()) < 8


def test_tc_estimate_is_the_total_correlation_for_the_optimal_discriminator():
    """With logits log q(z) and log prod_j q(z_j), the estimate is the TC: for a Gaussian with
    correlation rho in 2 dimensions, -0.5 log(1 - rho^2)."""
    rho = 0.8
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    joint = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov)
    product = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1)

    class Optimal(torch.nn.Module):
        def forward(self, z):
            logits = torch.zeros(z.shape[0], 2, dtype=z.dtype)
            logits[:, JOINT], logits[:, PRODUCT] = joint.log_prob(z), product.log_prob(z)
            return logits

    objective = FactorVAEObjective(gamma=1.0, hidden=(4,))
    objective.discriminator = Optimal()
    torch.manual_seed(0)
    z = joint.sample((200_000,))
    estimate = objective.tc_estimate(z).mean().item()
    assert estimate == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=0.01)


def test_factor_vae_model_loss_is_the_elbo_plus_gamma_times_the_tc_estimate():
    model = _factor_model()
    x = torch.rand(6, 1, 8, 8).bernoulli()
    torch.manual_seed(3)
    out = model(x)
    torch.manual_seed(3)
    draw = model.latent_pass(x, model.draw_noise(x, 1))
    z = draw.levels[0].z[0]
    logits = model.objective.discriminator(z)
    tc = (logits[:, 0] - logits[:, 1]).mean()
    recon, kl = -draw.log_px[0].mean(), draw.kl()[0].mean()
    torch.testing.assert_close(out.loss, recon + kl + 4.0 * tc)
    torch.testing.assert_close(out.terms["tc"], tc)
    torch.testing.assert_close(out.elbo, draw.log_px[0] - draw.kl()[0])  # the ELBO stays the ELBO


def test_factor_vae_discriminator_loss_is_its_cross_entropy_on_joint_and_permuted_halves():
    model = _factor_model()
    x = torch.rand(10, 1, 8, 8).bernoulli()
    torch.manual_seed(5)
    out = model(x, update="discriminator")
    torch.manual_seed(5)
    z = model.encode(x).rsample()
    joint, product = z[:5], permute_dims(z[5:])
    logits_joint, logits_product = model.objective.discriminator(joint), model.objective.discriminator(product)
    expected = (F.cross_entropy(logits_joint, torch.zeros(5, dtype=torch.long), reduction="sum")
                + F.cross_entropy(logits_product, torch.ones(5, dtype=torch.long), reduction="sum")) / 10
    torch.testing.assert_close(out.loss, expected)
    # its gradient reaches the discriminator only
    out.loss.backward()
    assert all(p.grad is not None for p in model.objective.discriminator.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())


def test_the_contract_names_groups_updates_and_training_parts():
    model = _factor_model()
    assert model.training_updates() == ("model", "discriminator")
    groups = model.optimizer_groups()
    discriminator = list(model.objective.discriminator.parameters())
    assert [id(p) for p in groups["discriminator"]] == [id(p) for p in discriminator]
    assert {id(p) for p in groups["model"]} | {id(p) for p in discriminator} == {id(p) for p in model.parameters()}
    assert not {id(p) for p in groups["model"]} & {id(p) for p in discriminator}
    assert model.training_only_keys() == {k for k in model.state_dict() if k.startswith("objective.discriminator.")}
    assert model.num_parameters() == sum(p.numel() for p in groups["model"])
    plain = vaezoo.create(tiny_config()["model"])
    assert plain.training_updates() == ("model",) and plain.training_only_keys() == set()
    assert plain.published_state_dict().keys() == plain.state_dict().keys()


def test_factor_vae_refuses_a_hierarchy_naming_the_objective():
    config = tiny_config(FACTOR, family="hvae")["model"]
    with pytest.raises(ConfigError, match="model.objective.*factor-vae needs one latent level"):
        vaezoo.create(config)


# ---------------------------------------------------------------------------- the config


def test_objective_recipe_fills_the_discriminator_optimizer_field_by_field():
    config = tiny_config(FACTOR, optimizers={"discriminator": {"lr": 2e-4}})
    trainer = ExperimentConfig.model_validate(config).trainer
    assert trainer.optimizers["discriminator"].lr == 2e-4
    assert tuple(trainer.optimizers["discriminator"].betas) == (0.5, 0.9)  # the paper's, from the objective
    # the recorded recipe round-trips to the same settings
    again = ExperimentConfig.model_validate(ExperimentConfig.model_validate(config).model_dump(mode="json"))
    assert again.trainer.optimizers == trainer.optimizers


def test_optimizers_model_is_the_model_optimizer_and_not_twice():
    trainer = ExperimentConfig.model_validate(tiny_config(optimizers={"model": {"lr": 0.01}})).trainer
    assert trainer.optimizer.lr == 0.01 and trainer.optimizers == {}
    with pytest.raises(ConfigError, match="both set the model's optimizer"):
        vaezoo.get_config(tiny_config(optimizer={"lr": 0.1}, optimizers={"model": {"lr": 0.01}}))


def test_an_optimizer_the_model_does_not_train_is_refused(tmp_path):
    config = tiny_config(optimizers={"discriminatr": {"lr": 1e-4}})
    with pytest.raises(ConfigError, match=r"trainer\.optimizers\.discriminatr.*its optimizers are model"):
        vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    assert not checkpoint_path(tmp_path / "run").exists()


# ---------------------------------------------------------------------------- training end to end


def test_factor_vae_trains_both_optimizers_and_publishes_without_the_discriminator(tmp_path):
    config = tiny_config(FACTOR, epochs=2, optimizers={"discriminator": {"lr": 1e-3}})
    torch.manual_seed(0)
    init = vaezoo.create(config["model"]).state_dict()
    printed = io.StringIO()
    model, metrics = vaezoo.train(config, out=tmp_path / "run", stream=printed)
    run = tmp_path / "run"
    published = load_file(str(run / "model.safetensors"))
    assert not [k for k in published if "discriminator" in k]
    checkpoint = load_checkpoint(run)
    assert sorted(checkpoint.optimizers) == ["discriminator", "model"]
    assert sorted(checkpoint.state["schedulers"]) == ["discriminator", "model"]
    trained = {k: v for k, v in checkpoint.model.items() if k.startswith("objective.discriminator.")}
    assert trained and all(not torch.equal(v, init[k]) for k, v in trained.items())  # it was trained
    # each optimizer holds moments for its own group only
    groups = model.optimizer_groups()
    for name in ("model", "discriminator"):
        state = checkpoint.optimizers[name]["state"]
        assert len(state) == len(groups[name])
        assert [list(state[i]["exp_avg"].shape) for i in range(len(groups[name]))] == \
            [list(p.shape) for p in groups[name]]
    assert checkpoint.optimizers["discriminator"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    assert "discriminator/loss" in printed.getvalue() and "discriminator/accuracy" in printed.getvalue()
    assert "train_term/discriminator/loss" in read_metrics(run)[-1]
    loaded = vaezoo.load(run)  # the published folder loads without the discriminator
    assert loaded.num_parameters() == model.num_parameters()
    assert json.loads((run / "config.json").read_text())["trainer"]["optimizers"]["discriminator"]["lr"] == 1e-3


def test_published_weights_that_hold_a_training_part_are_refused(tmp_path):
    model = _factor_model()
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    save_file({**load_file(str(weights)), **{k: v.contiguous() for k, v in model.state_dict().items()
                                             if "discriminator" in k}}, str(weights))
    with pytest.raises(CheckpointError, match="unexpected tensors: objective.discriminator"):
        vaezoo.load(tmp_path / "m")


def test_a_resume_that_changes_the_discriminator_optimizer_is_refused(tmp_path):
    path = _write(tmp_path, tiny_config(FACTOR, epochs=1))
    vaezoo.train(path, out=tmp_path / "run", stream=io.StringIO())
    with pytest.raises(CheckpointError, match=r"trainer\.optimizers\.discriminator\.lr: 0\.01 here, 0\.0001"):
        vaezoo.train(path, {"trainer.epochs": 2, "trainer.optimizers.discriminator.lr": 0.01},
                     resume=tmp_path / "run", stream=io.StringIO())


def test_a_format_1_checkpoint_resumes_as_the_model_optimizer(tmp_path):
    """Checkpoints written before named optimizers (one optimizer, ``optim.<index>.<key>``) continue
    bit for bit as the run would have."""
    path = _write(tmp_path, tiny_config(epochs=2, checkpoint_every=4))
    whole, old = tmp_path / "whole", tmp_path / "old"
    vaezoo.train(path, out=whole, stream=io.StringIO())
    vaezoo.train(path, {"trainer.max_steps": 8}, out=old, stream=io.StringIO())
    _rewrite_as_format_1(checkpoint_path(old))
    assert load_checkpoint(old).state["progress"]["global_step"] == 8
    vaezoo.train(path, resume=old, stream=io.StringIO(), allow_changes=True)  # max_steps is not a recipe field
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(old / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _rewrite_as_format_1(path):
    """The file as the one-optimizer release wrote it: its keys, its JSON, its checksums."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    state = json.loads(meta[ckpt.STATE_KEY])
    assert state["format"] == ckpt.FORMAT
    state["format"] = "vaezoo-train-checkpoint/1"
    state["optimizer"] = state.pop("optimizers")["model"]
    state["scheduler"] = state.pop("schedulers")["model"]
    tensors = {k.replace("optim.model.", "optim.", 1): v for k, v in tensors.items()}
    text = json.dumps(state, sort_keys=True)
    save_file(tensors, str(path), metadata={
        ckpt.STATE_KEY: text, ckpt.STATE_SHA_KEY: ckpt._sha256_text(text),
        ckpt.TENSORS_SHA_KEY: ckpt.tensors_sha256(tensors), "format": "pt"})


# ---------------------------------------------------------------------------- real processes


def test_factor_vae_sigkill_mid_epoch_resumes_bit_identically(tmp_path, monkeypatch):
    """Both optimizers' moments, both schedulers, the discriminator and the RNG come back: the
    killed and resumed run ends with the uninterrupted run's training checkpoint, bit for bit."""
    monkeypatch.setenv("CI", "1")
    config = tiny_config(FACTOR, epochs=2, checkpoint_every=4, grad_clip=5.0,
                         scheduler={"name": "cosine", "warmup_steps": 2})
    config["data"]["binarize"] = "dynamic"
    path = _write(tmp_path, config)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    vaezoo.train(path, out=whole, stream=io.StringIO())
    sigkill_after_checkpoint(path, broken, step=8)  # batch 2 of 6 in epoch 2
    assert not (broken / "model.safetensors").exists()
    vaezoo.train(resume=broken, stream=io.StringIO())
    a, b = load_checkpoint(whole), load_checkpoint(broken)
    assert a.model.keys() == b.model.keys() and any("discriminator" in k for k in a.model)
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    for name in ("model", "discriminator"):
        sa, sb = a.optimizers[name]["state"], b.optimizers[name]["state"]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[i][key], sb[i][key]) for i in sa for key in ("exp_avg", "exp_avg_sq", "step"))
    assert a.state["schedulers"] == b.state["schedulers"]
    assert [r["train_loss"] for r in read_metrics(whole)] == [r["train_loss"] for r in read_metrics(broken)]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_factor_vae_on_two_gloo_processes_trains_the_weights_of_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    # no sampling noise and no mixing across images (see MeanLatentFactorVAE): what differs is the
    # sharding, the averaging of two optimizers' gradients and the updates that leave parameters unused
    config = tiny_config({**FACTOR, "name": "test-mean-latent-factor-vae"}, epochs=1, checkpoint_every=5,
                         optimizers={"discriminator": {"lr": 1e-3}})
    path = _write(tmp_path, config)
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    vaezoo.train(path, out=single, stream=io.StringIO())
    assert "on 2 processes" in train_on_two_processes(path, ddp).stderr
    a, b = load_checkpoint(single).model, load_checkpoint(ddp).model
    torch.manual_seed(0)
    init = vaezoo.create(config).state_dict()
    for key in a:
        assert not torch.equal(a[key], init[key]) or key.endswith("log_sigma"), f"{key} did not train"
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_the_documented_adversarial_objective_trains_as_written(tmp_path):
    """docs/families.md's example of one's own two-optimizer objective, run as it is printed."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "families.md").read_text()
    start = text.index("```python\n", text.index("Your own adversarial objective")) + len("```python\n")
    code = text[start:text.index("```\n", start)]
    from vaezoo.parts.kinds import OBJECTIVES
    if "elbo-with-critic" not in OBJECTIVES:
        exec(compile(code, "docs/families.md", "exec"), {})
    config = tiny_config("elbo-with-critic", epochs=1, optimizers={"critic": {"lr": 3e-4}})
    printed = io.StringIO()
    model, _ = vaezoo.train(config, out=tmp_path / "run", stream=printed)
    assert "critic/loss" in printed.getvalue() and "fool" in printed.getvalue()
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.optimizers["critic"]["param_groups"][0]["lr"] == pytest.approx(3e-4)
    assert tuple(checkpoint.optimizers["critic"]["param_groups"][0]["betas"]) == (0.5, 0.9)  # the recipe's
    assert any(k.startswith("objective.critic.") for k in checkpoint.model)
    assert not [k for k in load_file(str(tmp_path / "run" / "model.safetensors")) if "critic" in k]


def test_every_family_takes_the_update_and_factor_vae_says_which_posteriors_it_permutes():
    from _tiny_training import TINY_FAMILIES

    x = torch.rand(4, 1, 8, 8).round()
    flow = vaezoo.create({**tiny_config(FACTOR)["model"], "posterior": {"name": "planar", "steps": 2}})
    assert set(flow(x, update="discriminator").terms) == {"accuracy"}  # a flow posterior is continuous too
    categorical = vaezoo.create({"family": "categorical", "input_shape": [1, 8, 8], **TINY_FAMILIES["categorical"],
                                 "objective": FACTOR})
    assert "tc" in categorical(x).terms  # the family's forward passes the update on
    with pytest.raises(vaezoo.errors.UsageError, match="permutes each dimension of continuous latents.*Categorical"):
        categorical(x, update="discriminator")
