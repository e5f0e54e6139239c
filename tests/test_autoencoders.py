"""Deterministic encoders (``family: ae``): the point posterior, the WAE's MMD against its definition,
training and selection without a bound, and what needs a density saying there is none."""

from __future__ import annotations

import io
import math

import pytest
import torch

import vaezoo
from vaezoo.errors import ConfigError, UsageError
from vaezoo.ops.kernels import kernel_matrix, mmd_squared
from vaezoo.ops.point import PointPosterior
from vaezoo.posthoc import fit_prior
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()

AE = {"family": "ae", "input_shape": [1, 8, 8], "latent_dim": 4, "encoder": {"name": "mlp", "hidden": [32]},
      "decoder": {"name": "mlp", "hidden": [32]}}


def _direct_mmd(a, b, kernel, bandwidths):
    """The unbiased MMD^2 as its three double sums, term by term."""
    def k(u, v):
        d = float(((u - v) ** 2).sum())
        return sum(c / (c + d) if kernel == "imq" else math.exp(-d / c) for c in bandwidths)
    n, m = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    bb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    ab = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return aa + bb - 2 * ab


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_is_the_unbiased_double_sum(kernel):
    torch.manual_seed(0)
    a, b = torch.randn(7, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64) + 0.5
    bandwidths = [0.6, 6.0]
    assert float(mmd_squared(a, b, kernel, bandwidths)) == pytest.approx(_direct_mmd(a, b, kernel, bandwidths),
                                                                         rel=1e-10)
    assert kernel_matrix(a, b, kernel, bandwidths).shape == (7, 5)


def test_mmd_tells_one_distribution_from_a_shifted_one():
    torch.manual_seed(0)
    same = mmd_squared(torch.randn(400, 4), torch.randn(400, 4), "imq", [8.0])
    shifted = mmd_squared(torch.randn(400, 4), torch.randn(400, 4) + 1.0, "imq", [8.0])
    assert abs(float(same)) < 0.01 < float(shifted)


def test_wae_loss_is_reconstruction_plus_lambda_mmd_to_the_prior():
    torch.manual_seed(0)
    model = vaezoo.create({**AE, "objective": {"name": "wae-mmd", "lam": 3.0, "scales": [1.0]}})
    x = torch.rand(6, 1, 8, 8).round()
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)
    z = model.encoder(x)
    prior = torch.randn(6, 4)
    recon = -model.decode(z).log_prob(x).mean()
    torch.testing.assert_close(out.terms["mmd"], mmd_squared(z, prior, "imq", [8.0]))
    torch.testing.assert_close(out.loss, recon + 3.0 * mmd_squared(z, prior, "imq", [8.0]))
    assert out.elbo is None and list(out.terms) == ["recon", "mmd"]


def test_a_point_posterior_has_no_density_and_says_so():
    model = vaezoo.create(AE)
    x = torch.rand(3, 1, 8, 8).round()
    q = model.encode(x)
    assert isinstance(q, PointPosterior) and q.mean.shape == (3, 4)
    assert torch.equal(q.rsample((2,)), q.mean.expand(2, 3, 4))
    for call in (lambda: model.elbo(x), lambda: model.iwae(x, 10), lambda: q.log_prob(q.mean)):
        with pytest.raises(UsageError, match="deterministic encoder .* has no density"):
            call()
    # the evaluation gives what applies (the reconstructions' metrics) and says in one line why no bound
    report = vaezoo.evaluate(model, x, progress=False)
    assert set(report.metrics) == {"mse", "psnr"} and "has no density" in report.protocol["no_bounds"]
    assert report["mse"] == pytest.approx(float((model.reconstruct(x) - x).pow(2).mean()), rel=1e-5)
    with pytest.raises(UsageError, match="refine_steps.*deterministic"):
        vaezoo.evaluate(model, x, refine_steps=2)
    assert model.sample(5).shape == (5, 1, 8, 8)  # through its prior


def test_objectives_and_families_must_agree_on_their_latents():
    with pytest.raises(ConfigError, match="model.objective.*'elbo' works on gaussian.*use ae or wae-mmd"):
        vaezoo.create({**AE, "objective": "elbo"})
    with pytest.raises(ConfigError, match="model.objective.*'wae-mmd' works on points"):
        vaezoo.create({**tiny_config()["model"], "objective": "wae-mmd"})


def test_an_autoencoder_trains_selects_on_validation_loss_and_samples_through_a_fitted_prior(tmp_path):
    config = tiny_config("wae-mmd", epochs=3, select="best_val")
    config["model"] = {**AE, "objective": "wae-mmd"}
    printed = io.StringIO()
    model, metrics = vaezoo.train(config, out=tmp_path / "run", stream=printed)
    records = read_metrics(tmp_path / "run")
    assert all(r["val_neg_elbo"] is None and r["val_loss"] is not None for r in records)
    assert "-elbo" not in printed.getvalue() and "val loss" in printed.getvalue()
    best = min(records, key=lambda r: r["val_loss"])
    assert records[-1]["best_epoch"] == best["epoch"]
    loaded = vaezoo.load(tmp_path / "run")
    assert isinstance(loaded.encode(torch.rand(2, 1, 8, 8).round()), PointPosterior)
    images = torch.rand(64, 1, 8, 8).round()
    fitted = fit_prior(loaded, images, components=2)
    assert fitted.config.prior.name == "mog" and fitted.sample(4).shape == (4, 1, 8, 8)


def test_a_wae_is_scored_by_samples_and_codes_and_published_without_a_bound(fashion_mnist_dir, tmp_path, capsys):
    """The whole way for a model with no density: train (selection on validation loss), `vaezoo eval`
    says in one line why there is no bound and scores the reconstructions, --fid and --probe the samples
    and codes, and publishing records the selection by validation loss and those metrics."""
    import datetime as dt
    import json

    from vaezoo.cli import main
    from vaezoo.maintenance.models_doc import render_models_md
    from vaezoo.maintenance.publish import publish_run

    run = tmp_path / "wae"
    vaezoo.train("fashion-wae", {"trainer.max_steps": 40, "trainer.epochs": 1, "trainer.val_limit": 500,
                                 "data.root": str(fashion_mnist_dir)}, out=run, stream=io.StringIO())
    assert main(["eval", str(run), "-q", "-o", str(tmp_path / "eval.json")]) == 0
    assert "no bounds    a deterministic encoder" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "eval.json").read_text())["metrics"]) == {"mse", "psnr"}
    assert main(["eval", str(run), "--fid", "--fid-samples", "500", "--probe", "--data", str(fashion_mnist_dir),
                 "-q", "-o", str(tmp_path / "fid.json")]) == 0
    report = json.loads((tmp_path / "fid.json").read_text())
    assert {"fd-fashion-v1", "fd-recon-fashion-v1", "probe-accuracy"} <= set(report["metrics"])
    entry_path = publish_run(run, "tiny-wae", "alice/tiny-wae", config="fashion-wae", metrics=[tmp_path / "fid.json", tmp_path / "eval.json"],
                             registry=tmp_path / "registry", date=dt.date(2026, 12, 5))
    from vaezoo.hub.index import read_entry
    entry = read_entry(entry_path)
    assert entry.training.selection["rule"] == "the lowest validation loss (trainer.select: best_val)"
    assert entry.training.selection["val_loss"] > 0
    names = {m.name for m in entry.metrics}
    assert {"probe-accuracy", "psnr"} <= names and not names & {"iwae_nll", "neg_elbo"}
    psnr = next(m for m in entry.metrics if m.name == "psnr")
    assert psnr.unit == "dB" and psnr.protocol.importance_samples is None and psnr.protocol.num_examples == 10000
    assert "tiny-wae" in render_models_md([entry])


# ---------------------------------------------------------------------------- the sliced-Wasserstein AE


def test_sliced_wasserstein_is_the_mean_optimal_matching_cost_over_the_directions():
    """Each direction's W_2^2 against the optimal assignment of the projected points (scipy's
    Hungarian solver, which knows nothing of sorting), and W_1 against scipy's wasserstein_distance."""
    from scipy.optimize import linear_sum_assignment
    from scipy.stats import wasserstein_distance

    from vaezoo.ops.transport import random_directions, sliced_wasserstein

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(9, 3, generator=gen, dtype=torch.float64), torch.rand(9, 3, generator=gen, dtype=torch.float64)
    theta = random_directions(3, 5, a, generator=gen)
    assert torch.allclose(theta.norm(dim=0), torch.ones(5, dtype=torch.float64))
    w2, w1 = [], []
    for j in range(5):
        pa, pb = (a @ theta[:, j]).numpy(), (b @ theta[:, j]).numpy()
        cost = (pa[:, None] - pb[None, :]) ** 2
        rows, cols = linear_sum_assignment(cost)
        w2.append(cost[rows, cols].mean())
        w1.append(wasserstein_distance(pa, pb))
    assert float(sliced_wasserstein(a, b, theta, p=2)) == pytest.approx(sum(w2) / 5, rel=1e-10)
    assert float(sliced_wasserstein(a, b, theta, p=1)) == pytest.approx(sum(w1) / 5, rel=1e-10)
    with pytest.raises(ValueError, match="same size"):
        sliced_wasserstein(a, b[:4], theta)


def test_swae_loss_is_reconstruction_plus_lambda_sliced_wasserstein_to_the_prior():
    from vaezoo.ops.transport import sliced_wasserstein

    torch.manual_seed(0)
    model = vaezoo.create({**AE, "objective": {"name": "swae", "lam": 7.0, "projections": 11}})
    x = torch.rand(6, 1, 8, 8).round()
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)  # the prior's draws, then the directions, in the objective's order
    prior, theta = torch.randn(6, 4), torch.randn(4, 11)
    z = model.encode(x).mean
    recon = -model.decode(z).log_prob(x).mean()
    sw = sliced_wasserstein(z, prior, theta / theta.norm(dim=0), p=2)
    torch.testing.assert_close(out.terms["sw"], sw)
    torch.testing.assert_close(out.loss, recon + 7.0 * sw)


def test_swae_pulls_the_codes_to_the_prior():
    data = (torch.rand(256, 1, 8, 8) > 0.5).float()
    stats = {}
    for lam in (0.0, 300.0):
        torch.manual_seed(0)
        model = vaezoo.create({**AE, "objective": {"name": "swae", "lam": lam}})
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(150):
            loss = model(data[torch.randint(0, 256, (64,))]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            z = model.encode(data).mean
        stats[lam] = float((z.mean(0) ** 2).sum() + ((z.var(0) - 1) ** 2).sum())  # distance of the moments from N(0, I)
    assert stats[300.0] < stats[0.0] / 3


def _rae(regularizer, **objective):
    torch.manual_seed(0)
    return vaezoo.create({**AE, "objective": {"name": "rae", "regularizer": regularizer, **objective}})


def test_rae_l2_loss_is_reconstruction_plus_code_norm_plus_the_decoders_weights_alone():
    model = _rae("l2", beta=0.3, lam=0.01)
    x = torch.rand(6, 1, 8, 8).round()
    out = model(x)
    z = model.encoder(x)
    recon = -model.decode(z).log_prob(x).mean()
    code = 0.5 * (z ** 2).sum(1).mean()
    decoder_weights = sum(float((p.detach().double() ** 2).sum()) for p in model.decoder.parameters())
    torch.testing.assert_close(out.loss, recon + 0.3 * code + 0.01 * decoder_weights)
    torch.testing.assert_close(out.terms["l2"].double(), torch.tensor(decoder_weights, dtype=torch.float64))
    # the penalty moves each decoder weight by 2 lambda theta and leaves the encoder's gradient alone
    grads = {}
    for lam in (0.0, 0.01):
        model.objective.lam = lam
        model.zero_grad()
        model(x).loss.backward()
        grads[lam] = {name: p.grad.clone() for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        extra = 2 * 0.01 * p.detach() if name.startswith("decoder.") else torch.zeros_like(p)
        torch.testing.assert_close(grads[0.01][name] - grads[0.0][name], extra, atol=1e-6, rtol=1e-5)
    assert any(name.startswith("encoder.") for name in grads[0.0])


def test_rae_gradient_penalty_is_the_squared_gradient_of_the_squared_decoding_by_finite_differences():
    from vaezoo.parts.objectives.autoencoders import decoder_gradient_penalty

    model = _rae("gp", beta=0.0, lam=1.0).double()
    z = torch.randn(3, 4, dtype=torch.float64)
    expected, h = 0.0, 1e-6
    for image in z:
        for i in range(4):
            step = torch.zeros(4, dtype=torch.float64)
            step[i] = h
            with torch.no_grad():
                up = float((model.decode(image + step).mean ** 2).sum())
                down = float((model.decode(image - step).mean ** 2).sum())
            expected += ((up - down) / (2 * h)) ** 2
    expected /= 3
    with torch.no_grad():  # a validation pass: no graph recorded, so it decodes again with one
        assert float(decoder_gradient_penalty(model, z)) == pytest.approx(expected, rel=1e-6)
    z_graph = z.clone().requires_grad_(True)
    penalty = decoder_gradient_penalty(model, z_graph, model.decode(z_graph).mean)
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-6)
    penalty.backward()  # a graph of the gradient: the penalty trains the decoder
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())


def test_rae_gp_loss_adds_lambda_times_the_penalty_in_training_and_in_validation():
    from vaezoo.parts.objectives.autoencoders import decoder_gradient_penalty

    model = _rae("gp", beta=0.5, lam=2.0)
    x = torch.rand(6, 1, 8, 8).round()
    trained = model(x)
    with torch.no_grad():
        validated = model(x)
    z = model.encoder(x).detach()
    recon = -model.decode(z).log_prob(x).mean()
    expected = recon + 0.5 * 0.5 * (z ** 2).sum(1).mean() + 2.0 * decoder_gradient_penalty(model, z)
    torch.testing.assert_close(trained.loss, expected)
    torch.testing.assert_close(validated.loss, expected)
    assert list(trained.terms) == ["recon", "code", "gp"]


def test_a_rae_trains_through_the_loop_and_keeps_its_codes_smaller_than_a_plain_autoencoder(tmp_path):
    config = tiny_config("rae", epochs=2, select="best_val")
    config["model"] = {**AE, "objective": {"name": "rae", "regularizer": "gp", "beta": 1.0, "lam": 1e-3}}
    model, _ = vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    records = read_metrics(tmp_path / "run")
    assert all(r["val_loss"] is not None and math.isfinite(r["val_loss"]) for r in records)
    data = (torch.rand(256, 1, 8, 8) > 0.5).float()
    norms = {}
    for beta in (0.0, 5.0):
        model = _rae("l2", beta=beta, lam=1e-4)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(100):
            loss = model(data[torch.randint(0, 256, (64,))]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            norms[beta] = float((model.encode(data).mean ** 2).sum(1).mean())
    assert norms[5.0] < norms[0.0] / 3
