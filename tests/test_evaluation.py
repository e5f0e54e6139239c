"""Evaluation metrics and refinement, checked against closed forms on probabilistic PCA.

A linear-Gaussian VAE (p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I)) has
p(x) = N(b, WW^T + sigma^2 I) and, when W's columns are orthogonal, a diagonal Gaussian
exact posterior N(M^-1 W^T (x - b), sigma^2 M^-1) with M = W^T W + sigma^2 I diagonal. So
the importance-weighted estimate has an exact target and the best diagonal Gaussian
posterior closes the whole gap: the ground truth the estimators are tested against.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

import vaezoo
from vaezoo.errors import UsageError
from vaezoo.ops.gaussian import DiagonalGaussian
from vaezoo.evaluation import (
    EvalReport, active_units, bits_per_dim, elbo, evaluate, iwae_log_likelihood, refine, resolve_data,
)

D_SIDE, LATENT = 4, 3  # 4x4 "images": 16 pixels
SCALES = torch.tensor([2.0, 1.5, 1.0])


def linear_gaussian_vae(sigma: float = 0.5, seed: int = 0):
    """pPCA with hand-set weights; returns the model, W, b and sigma."""
    g = torch.Generator().manual_seed(seed)
    model = vaezoo.create({"model": {
        "input_shape": [1, D_SIDE, D_SIDE], "latent_dim": LATENT, "encoder": "linear", "decoder": "linear",
        "likelihood": {"name": "gaussian", "variance": "fixed", "sigma": sigma},
    }})
    q, _ = torch.linalg.qr(torch.randn(D_SIDE * D_SIDE, LATENT, generator=g))
    w = q * SCALES  # orthogonal columns -> diagonal M -> a diagonal Gaussian posterior is exact
    b = 0.3 * torch.randn(D_SIDE * D_SIDE, generator=g)
    with torch.no_grad():
        model.decoder.linear.weight.copy_(w)
        model.decoder.linear.bias.copy_(b)
    return model.eval(), w, b, sigma


def exact_posterior(w, b, sigma):
    """(A, c, logvar): mu = A x + c and the constant log-variance of p(z|x)."""
    m_inv = 1.0 / (SCALES**2 + sigma**2)
    a = m_inv[:, None] * w.T
    return a, -(a @ b), torch.log(sigma**2 * m_inv)


def set_encoder(model, a, c, logvar):
    with torch.no_grad():
        enc = model.encoder.linear
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[:LATENT] = a
        enc.bias[:LATENT] = c
        enc.bias[LATENT:] = logvar


def marginal(w, b, sigma):
    return torch.distributions.MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(len(b)))


@pytest.fixture(scope="module")
def ppca():
    """pPCA with a poor but over-dispersed encoder (shrunk means, variances x e), data from the model."""
    model, w, b, sigma = linear_gaussian_vae()
    a, c, logvar = exact_posterior(w, b, sigma)
    set_encoder(model, 0.7 * a, 0.7 * c, logvar + 1.0)
    x, exact = ppca_data(w, b, sigma)
    return model, x, exact, (w, b, sigma)


def ppca_data(w, b, sigma, n: int = 64):
    """n draws from p(x) (seeded) and their exact log-likelihoods."""
    px = marginal(w, b, sigma)
    eps = torch.randn(n, len(b), generator=torch.Generator().manual_seed(1))
    x = (b + eps @ torch.linalg.cholesky(px.covariance_matrix).T).view(-1, 1, D_SIDE, D_SIDE)
    return x, px.log_prob(x.flatten(1)).double()


def test_exact_posterior_makes_every_importance_weight_equal_to_log_px(ppca):
    # Sanity check of the closed forms the other tests lean on: with q = p(z|x) each weight is p(x).
    _, x, exact, (w, b, sigma) = ppca
    model, *_ = linear_gaussian_vae()
    set_encoder(model, *exact_posterior(w, b, sigma))
    assert torch.allclose(iwae_log_likelihood(model, x, k=7), exact, atol=1e-4)


def test_iwae_is_at_least_the_elbo_and_grows_with_k():
    # An under-dispersed proposal (narrower than p(z|x), as trained encoders tend to be)
    # makes the weights heavy-tailed, so the bound keeps rising over decades of k.
    model, w, b, sigma = linear_gaussian_vae()
    a, c, logvar = exact_posterior(w, b, sigma)
    set_encoder(model, 0.6 * a, 0.6 * c, logvar - 0.7)
    x, exact = ppca_data(w, b, sigma)
    elbo_mean = elbo(model, x, samples=200).mean()
    bounds = [iwae_log_likelihood(model, x, k=k).mean() for k in (1, 10, 100, 1000)]
    assert bounds[0] == pytest.approx(float(elbo_mean), abs=0.5)  # k = 1 is the ELBO (single-sample noise)
    assert all(bound >= elbo_mean for bound in bounds[1:])
    assert all(later > earlier for earlier, later in zip(bounds, bounds[1:]))
    assert bounds[-1] < exact.mean()  # still a lower bound on average


def test_iwae_grows_with_k_on_a_bernoulli_mlp_too():
    # A non-Gaussian decoder, untrained: the ordering is a property of the estimator, not of pPCA.
    torch.manual_seed(0)
    model = vaezoo.create({"model": {"input_shape": [1, 8, 8], "latent_dim": 4, "encoder": {"name": "mlp", "hidden": [32]},
                                     "decoder": {"name": "mlp", "hidden": [32]}}}).eval()
    x = (torch.rand(32, 1, 8, 8) > 0.5).float()
    e = elbo(model, x, samples=100).mean()
    k10, k300 = (iwae_log_likelihood(model, x, k=k).mean() for k in (10, 300))
    assert e < k10 < k300


def test_iwae_with_k_5000_converges_to_the_exact_log_likelihood(ppca):
    model, x, exact, _ = ppca
    elbo_gap = float((exact - elbo(model, x, samples=100)).mean())
    k10_gap = float((exact - iwae_log_likelihood(model, x, k=10)).mean())
    estimate = iwae_log_likelihood(model, x, k=5000, chunk_size=1000)
    assert elbo_gap > 1.0 and k10_gap > 0.1  # the poor encoder leaves a real gap for k to close
    assert abs(float((exact - estimate).mean())) < 0.01


def test_chunked_iwae_equals_unchunked_for_the_same_seed(ppca):
    model, x, _, _ = ppca
    whole = iwae_log_likelihood(model, x, k=300, seed=3)
    assert torch.allclose(iwae_log_likelihood(model, x, k=300, chunk_size=7, seed=3), whole, atol=1e-5, rtol=0)
    assert torch.allclose(iwae_log_likelihood(model, x[:5], k=300, seed=3), whole[:5], atol=1e-5, rtol=0)
    other_seed = iwae_log_likelihood(model, x, k=300, seed=4)
    assert not torch.allclose(other_seed, whole)  # the seed does matter


def test_iwae_is_stable_when_log_weights_are_huge():
    # sigma = 1e-3 with a poor encoder: log-weights around -1e5, where exp() underflows to 0.
    model, w, b, sigma = linear_gaussian_vae(sigma=1e-3)
    a, c, logvar = exact_posterior(w, b, sigma)
    set_encoder(model, 0.9 * a, c, logvar + 4.0)
    x = (b + torch.randn(8, LATENT) @ w.T).view(-1, 1, D_SIDE, D_SIDE)
    lower = elbo(model, x, samples=50)
    assert lower.max() < -1e3  # the regime where a naive mean of exp(log w) is log(0)
    bound = iwae_log_likelihood(model, x, k=500, chunk_size=64)
    assert torch.isfinite(bound).all()
    assert bound.mean() >= lower.mean()


def test_refinement_closes_the_amortization_gap_and_leaves_the_decoder_alone(ppca):
    model, x, exact, (w, b, sigma) = ppca
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = model.refine(x, steps=200, lr=0.05)
    assert isinstance(q, DiagonalGaussian) and q.mu.shape == (x.shape[0], LATENT)
    gap_before = float((exact - elbo(model, x, samples=200)).mean())
    from vaezoo.evaluation.metrics import elbo_terms
    from vaezoo.ops.noise import NoiseSource

    eps = NoiseSource(0, 1, range(x.shape[0]), (LATENT,)).draw(0, 200)
    with torch.no_grad():
        log_px, kls = elbo_terms(model, x, eps, posterior=q)
    gap_after = float((exact - (log_px - kls["kl"])).mean())
    assert gap_after < 0.1 * gap_before
    # The optimum is the exact posterior, so refinement should land near it (up to the
    # jitter of single-sample stochastic gradients): 5x closer than the encoder started.
    a, c, logvar = exact_posterior(w, b, sigma)
    start = model.encode(x)
    mu_true, logvar_true = x.flatten(1) @ a.T + c, logvar.expand_as(q.logvar)
    assert (q.mu - mu_true).abs().mean() < 0.2 * (start.mu - mu_true).abs().mean()
    assert (q.logvar - logvar_true).abs().mean() < 0.2 * (start.logvar - logvar_true).abs().mean()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_refinement_of_a_batch_equals_refinement_one_example_at_a_time(ppca):
    # Vectorized refinement must be B independent problems: no coupling through the batch.
    model, x, _, _ = ppca
    together = refine(model, x[:4], steps=30)
    alone = refine(model, x[2:3], steps=30, indices=[2])
    assert torch.allclose(together.mu[2:3], alone.mu, atol=1e-5)
    assert torch.allclose(together.logvar[2:3], alone.logvar, atol=1e-5)


def test_bits_per_dim_converts_nats_per_image():
    assert bits_per_dim(784 * math.log(2) * 3.0, 784) == pytest.approx(3.0)
    assert bits_per_dim(100.0, 10) == pytest.approx(100.0 / (10 * math.log(2)))


def test_active_units_count_dimensions_whose_posterior_mean_varies():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(2000, 1, generator=g)
    means = torch.cat([2.0 * base, 0.5 * torch.randn(2000, 1, generator=g),  # variances 4 and 0.25: active
                       0.05 * base, torch.full((2000, 1), 3.0)], dim=1)     # 0.0025 and 0: inactive
    count, variance = active_units(means)
    assert count == 2
    assert variance[0] == pytest.approx(4.0, rel=0.1) and variance[3] == 0


def test_evaluate_reports_metrics_with_their_protocol(ppca):
    model, x, exact, _ = ppca
    # Shrink one encoder row so that latent 2's mean barely moves: 2 of 3 units active.
    model2, w, b, sigma = linear_gaussian_vae()
    a, c, logvar = exact_posterior(w, b, sigma)
    a[2] *= 0.01
    set_encoder(model2, a, c, logvar)
    report = vaezoo.evaluate(model2, x, iw_samples=50, elbo_samples=5, batch_size=16, refine_steps=20, model_name="ppca")
    p = report.protocol
    assert p["likelihood"].startswith("gaussian") and p["iw_samples"] == 50 and p["elbo_samples"] == 5
    assert p["examples"] == 64 and p["split"] == "given" and p["binarization"] == "none (values as given)"
    assert p["pixels"] == 16 and p["model"] == "ppca"
    assert report["active_units"] == 2
    assert report["neg_elbo"] == pytest.approx(report["recon"] + report["kl"], rel=1e-9)
    assert report["nll_bpd"] == pytest.approx(report["iwae_nll"] / (16 * math.log(2)))
    assert report["amortization_gap"] == pytest.approx(report["neg_elbo"] - report["neg_elbo_refined"])
    assert report.metrics["iwae_nll"].protocol.startswith("k=50")
    assert list(report.kl_per_dim) == ["z"] and len(report.kl_per_dim["z"]) == LATENT
    again = EvalReport.from_dict(json.loads(report.to_json()))
    assert again.to_dict() == report.to_dict()
    table = report.format_table()
    assert "k=50" in table and "binarization" in table and "64 examples" in table


def test_evaluate_is_deterministic_and_independent_of_batch_and_chunk_size(ppca):
    model, x, _, _ = ppca
    kwargs = dict(iw_samples=40, elbo_samples=3, refine_steps=5)
    a = vaezoo.evaluate(model, x, batch_size=64, seed=1, **kwargs)
    b = vaezoo.evaluate(model, x, batch_size=5, chunk_size=3, seed=1, **kwargs)
    c = vaezoo.evaluate(model, x, batch_size=64, seed=2, **kwargs)
    for name in ("neg_elbo", "iwae_nll", "neg_elbo_refined"):
        assert a[name] == pytest.approx(b[name], abs=1e-4)
    assert a["iwae_nll"] != c["iwae_nll"]


def test_evaluate_reads_the_test_split_of_a_dataset_by_name(fashion_mnist_dir):
    model = vaezoo.create({"model": {"input_shape": [1, 28, 28], "latent_dim": 2, "encoder": "linear",
                                     "decoder": "linear"}})
    report = vaezoo.evaluate(model, "fashion-mnist", iw_samples=4, elbo_samples=1, limit=16)
    p = report.protocol
    assert (p["dataset"], p["split"], p["examples"], p["examples_available"]) == ("fashion-mnist", "test", 16, 10000)
    assert p["binarization"].startswith("none")
    binary = resolve_data("fashion-mnist", binarize="static", limit=16)
    assert set(binary.images.unique().tolist()) <= {0.0, 1.0}
    assert binary.protocol["binarization"].startswith("binarized")
    grey = resolve_data("fashion-mnist", limit=16).images
    assert len(grey.unique()) > 2


def test_evaluate_rejects_images_of_the_wrong_shape(ppca):
    model, *_ = ppca
    with pytest.raises(ValueError, match="shape"):
        vaezoo.evaluate(model, torch.zeros(4, 1, 5, 5), iw_samples=2)


def test_the_static_pass_size_is_small_for_conv_decoders_on_cpu():
    from vaezoo.fastpath.plan import default_decodes_per_pass

    cpu = torch.device("cpu")
    assert default_decodes_per_pass(vaezoo.create("fashion-resnet32"), cpu) == 128
    assert default_decodes_per_pass(vaezoo.create("fashion-vamp40"), cpu) == 2048  # MLPs: large passes
    assert default_decodes_per_pass(vaezoo.create("fashion-conv64"), torch.device("cuda")) == 2048


def test_evaluate_shows_its_cost_unless_told_not_to(ppca, capsys):
    model, x, *_ = ppca
    evaluate(model, x[:40], iw_samples=8, elbo_samples=1, batch_size=8)
    lines = capsys.readouterr().err.splitlines()
    # the first line comes after one image (batches ramp up 1, 2, 4, 8, 8, ...), not after a whole batch
    assert re.match(r"  first 1 of 40 examples in \d+ s: about \d+ s in all \([\d.]+ examples/s\)", lines[0]), lines
    assert re.match(r"  40/40 examples, [\d.]+ examples/s, eta 0 s", lines[-1]), lines
    evaluate(model, x[:40], iw_samples=8, elbo_samples=1, batch_size=8, progress=False)
    assert capsys.readouterr().err == ""


def test_a_wrong_dataset_name_is_one_line_for_every_evaluation():
    model = vaezoo.create("fashion-mlp16")
    for measure in (vaezoo.evaluate, vaezoo.sample_quality, vaezoo.linear_probe):
        with pytest.raises(UsageError, match="unknown dataset 'fashion-mnis'. Did you mean 'fashion-mnist'?"):
            measure(model, "fashion-mnis")
