"""The variational nested dropout family (``vnd``): the cut's downhill distribution and the KL against
sums written out by hand over every cut, the masks, and the bound against log p(x) by quadrature."""

from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.ops.nested import downhill_log_probs, kept_dimensions


def _model(latent_dim: int, reserved: int = 1, shape=(1, 8, 8), **extra):
    return vaezoo.create({"model": {"family": "vnd", "input_shape": list(shape), "latent_dim": latent_dim,
                                    "reserved": reserved, "encoder": {"name": "mlp", "hidden": [16]},
                                    "decoder": {"name": "mlp", "hidden": [16]}, **extra}})


def test_the_downhill_probabilities_are_the_products_of_keeping_and_stopping():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, dtype=torch.float64)
    keep = torch.sigmoid(logits)
    log_q = downhill_log_probs(logits)
    for b in range(3):
        for k in range(5):  # k further dimensions kept: keep_1 ... keep_k, then stop (none left to stop at k = 4)
            expected = math.prod(float(keep[b, j]) for j in range(k)) * (1 - float(keep[b, k]) if k < 4 else 1.0)
            assert float(log_q[b, k].exp()) == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(log_q.exp().sum(-1), torch.ones(3, dtype=torch.float64))


def test_a_cut_keeps_the_reserved_dimensions_and_the_next_k():
    cut = torch.eye(4)  # k = 0, 1, 2, 3 further dimensions kept, 2 reserved: 5 dimensions
    expected = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]).float()
    torch.testing.assert_close(kept_dimensions(cut, 2), expected)
    probabilities = torch.tensor([[0.1, 0.2, 0.3, 0.4]])  # P(kept) = P(k > j) for dimension 2 + j
    torch.testing.assert_close(kept_dimensions(probabilities, 2), torch.tensor([[1.0, 1.0, 0.9, 0.7, 0.4]]))


def test_the_kl_is_the_cuts_kl_plus_the_kept_dimensions_kl_averaged_over_the_cut():
    torch.manual_seed(0)
    model = _model(4, reserved=2).double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64).round()
    with torch.no_grad():
        terms = model(x).terms
        q = model.encode(x)
        mu, logvar = q.z.mu, q.z.logvar
        q_cut = q.cut.log_probs.flatten(-2).exp()  # (3, 3): 0, 1 or 2 of the 2 optional dimensions kept
    p_cut = [0.05, 0.95 * 0.05, 0.95 ** 2]  # the prior's keep 0.95, written out
    kl_gauss = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)  # per dimension, against N(0, 1)
    kl_cut = (q_cut * (q_cut.log() - torch.tensor(p_cut, dtype=torch.float64).log())).sum(-1)
    kl_code = sum(q_cut[:, k] * kl_gauss[:, :2 + k].sum(-1) for k in range(3))
    # to float32's rounding: the categorical normalizes the cut's log-probabilities in float32, so the
    # written-out sum weighs the reserved dimensions by sum_k q(k) = 1 - O(1e-8), the model by 1
    assert float(terms["kl/cut"]) == pytest.approx(float(kl_cut.mean()), rel=1e-6)
    assert float(terms["kl/z"]) == pytest.approx(float(kl_code.mean()), rel=1e-6)


def test_outside_training_a_code_is_zero_past_its_cut_and_the_cuts_follow_q():
    torch.manual_seed(0)
    model = _model(5).eval()
    x = torch.rand(2, 1, 8, 8).round()
    with torch.no_grad():
        draw = model.latent_pass(x, model.draw_noise(x, 20000))
        q_cut = model.encode(x).cut.log_probs.flatten(-2).exp()
    z, cut = draw.levels[0].z, draw.levels[1].z
    assert set(cut.unique().tolist()) == {0.0, 1.0} and bool((cut.sum(-1) == 1).all())  # exact one-hot cuts
    kept = 1 + cut.argmax(-1)  # dimensions kept by each draw
    positions = torch.arange(5).view(1, 1, 5)
    assert bool((z[positions.expand_as(z) >= kept.unsqueeze(-1)] == 0).all())
    assert bool((z[positions.expand_as(z) < kept.unsqueeze(-1)] != 0).all())
    torch.testing.assert_close(cut.mean(0), q_cut, atol=0.015, rtol=0)


def test_training_draws_pass_a_gradient_to_the_keep_logits():
    torch.manual_seed(0)
    model = _model(4)
    x = torch.rand(6, 1, 8, 8).round()
    model(x).loss.backward()
    last = model.encoder.net[-1] if hasattr(model.encoder, "net") else list(model.encoder.modules())[-1]
    grad = last.weight.grad
    assert grad is not None and float(grad[2 * 4 + 1:].abs().sum()) > 0  # the keep logits' rows are trained


def test_iwae_converges_to_the_exact_log_likelihood_over_both_cuts():
    """Two dimensions, one reserved: p(x) = p(k=0) int p(x|z1, 0) N(z1) + p(k=1) int int p(x|z1, z2) N(z1) N(z2),
    both integrals by quadrature on a grid; the importance weights over (z, k) must converge to it."""
    torch.manual_seed(0)
    model = _model(2, shape=(1, 1, 2)).double()
    images = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64).view(4, 1, 1, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        optimizer.zero_grad()
        model(images.repeat(8, 1, 1, 1)).loss.backward()
        optimizer.step()
    model.eval()
    grid = torch.linspace(-8.0, 8.0, 321, dtype=torch.float64)
    step = float(grid[1] - grid[0])
    normal = -0.5 * (math.log(2 * math.pi) + grid.pow(2))
    z1, z2 = torch.meshgrid(grid, grid, indexing="ij")
    plane = torch.stack([z1.reshape(-1), z2.reshape(-1)], -1)
    line = torch.stack([grid, torch.zeros_like(grid)], -1)
    exact = []
    with torch.no_grad():
        for x in images:
            one = torch.logsumexp(model.decode(line).log_prob(x.expand(len(grid), *x.shape)) + normal, 0)
            two = torch.logsumexp(model.decode(plane).log_prob(x.expand(len(plane), *x.shape))
                                  + (normal.view(-1, 1) + normal.view(1, -1)).reshape(-1), 0)
            exact.append(torch.logaddexp(math.log(0.05) + one + math.log(step),
                                         math.log(0.95) + two + 2 * math.log(step)))
    exact = torch.stack(exact)
    assert float(torch.logsumexp(exact, 0).exp()) == pytest.approx(1.0, abs=1e-4)  # p(x) sums to 1 over x
    with torch.no_grad():
        iwae, elbo = model.iwae(images, k=20000, seed=1), model.elbo(images, samples=2000)
    torch.testing.assert_close(iwae, exact, atol=0.02, rtol=0)
    assert (elbo <= exact + 0.01).all()


def test_a_reserved_count_that_leaves_no_cut_is_refused_by_name():
    with pytest.raises(vaezoo.errors.ConfigError, match="reserved.*latent_dim"):
        _model(3, reserved=3)


def test_samples_and_the_round_trip_through_save(tmp_path):
    torch.manual_seed(0)
    model = _model(4).eval()
    images = model.sample(6)
    assert images.shape == (6, 1, 8, 8) and bool(((images >= 0) & (images <= 1)).all())
    model.save_pretrained(tmp_path / "m")
    loaded = vaezoo.load(tmp_path / "m")
    x = torch.rand(3, 1, 8, 8).round()
    with torch.no_grad():
        torch.testing.assert_close(loaded.iwae(x, k=50, seed=0), model.iwae(x, k=50, seed=0))


def test_the_evaluation_report_names_the_familys_own_prior():
    torch.manual_seed(0)
    report = vaezoo.evaluation.evaluate(_model(4).eval(), torch.rand(4, 1, 8, 8).round(), iw_samples=8,
                                        elbo_samples=2, progress=False)
    assert report.protocol["prior"] == "N(0, I) on the kept dimensions, a downhill cut (keep 0.95)"
    assert "prior N(0, I) on the kept dimensions" in str(report)
