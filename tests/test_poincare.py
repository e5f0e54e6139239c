"""The Poincaré VAE's geometry and wrapped normal against independent computations: the maps invert
each other, the density integrates to one over the ball (quadrature in the disk, Monte Carlo in 3-d),
the sampler draws from that density, and the pvae family's bounds use it."""

from __future__ import annotations

import io
import math

import pytest
import torch

import vaezoo
from vaezoo.errors import ConfigError
from vaezoo.ops.poincare import (
    WrappedNormal, conformal_factor, distance, exp_map, log_map, log_volume_to_lebesgue, mobius_add,
)
from vaezoo.training.records import read_metrics

from _tiny_training import register, tiny_config

register()


def _disk_grid(radius, nr=3000, nt=800):
    r = (torch.arange(nr, dtype=torch.float64) + 0.5) / nr * radius
    t = (torch.arange(nt, dtype=torch.float64) + 0.5) / nt * 2 * math.pi
    rr, tt = torch.meshgrid(r, t, indexing="ij")
    z = torch.stack([rr * torch.cos(tt), rr * torch.sin(tt)], dim=-1).reshape(-1, 2)
    return z, (rr * (radius / nr) * (2 * math.pi / nt)).reshape(-1)


@pytest.mark.parametrize("c", [1.0, 0.3])
def test_the_maps_invert_each_other_and_measure_geodesic_distance(c):
    torch.manual_seed(0)
    x = 0.6 / math.sqrt(c) * torch.nn.functional.normalize(torch.randn(5, 3, dtype=torch.float64), dim=-1)
    y = 0.8 / math.sqrt(c) * torch.rand(5, 1, dtype=torch.float64) * torch.nn.functional.normalize(
        torch.randn(5, 3, dtype=torch.float64), dim=-1)
    torch.testing.assert_close(exp_map(x, log_map(x, y, c), c), y)
    torch.testing.assert_close(mobius_add(-x, x, c), torch.zeros_like(x))
    # the Riemannian length of the log map is the geodesic distance
    riemannian = (conformal_factor(x, c) * log_map(x, y, c)).norm(dim=-1)
    torch.testing.assert_close(riemannian, distance(x, y, c))
    # from the origin, distance is 2/sqrt(c) artanh(sqrt(c) |y|)
    torch.testing.assert_close(distance(torch.zeros_like(y), y, c),
                               2 / math.sqrt(c) * torch.atanh(math.sqrt(c) * y.norm(dim=-1)))


@pytest.mark.parametrize("c", [1.0, 0.4])
def test_the_wrapped_normal_integrates_to_one_on_the_disk_and_its_samples_follow_it(c):
    radius = 1 / math.sqrt(c)
    q = WrappedNormal(torch.tensor([0.3, -0.2], dtype=torch.float64) * radius,
                      torch.tensor([0.7, 1.3], dtype=torch.float64), c)
    z, area = _disk_grid(radius)
    density = (q.log_prob(z) + log_volume_to_lebesgue(z, c)).exp()
    assert float((density * area).sum()) == pytest.approx(1.0, abs=1e-6)
    torch.manual_seed(1)
    samples = q.sample((200000,))
    second_moment = float((density * area * (z ** 2).sum(-1)).sum())
    assert float((samples ** 2).sum(-1).mean()) == pytest.approx(second_moment, abs=0.003)


def test_in_three_dimensions_the_density_integrates_to_one_by_monte_carlo():
    torch.manual_seed(2)
    q = WrappedNormal(torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64), torch.full((3,), 0.8,
                      dtype=torch.float64), 1.0)
    n = 2_000_000
    direction = torch.nn.functional.normalize(torch.randn(n, 3, dtype=torch.float64), dim=-1)
    points = direction * torch.rand(n, 1, dtype=torch.float64) ** (1 / 3)  # uniform in the unit ball
    values = (q.log_prob(points) + log_volume_to_lebesgue(points, 1.0)).exp() * (4 / 3 * math.pi)
    assert float(values.mean()) == pytest.approx(1.0, abs=4 * float(values.std()) / math.sqrt(n))


def test_at_its_centre_the_prior_is_the_standard_normal_of_the_tangent_space():
    q = WrappedNormal(torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64), 1.0)
    assert float(q.log_prob(torch.zeros(1, 4, dtype=torch.float64))) == pytest.approx(-2 * math.log(2 * math.pi))


PVAE = {"family": "pvae", "input_shape": [1, 8, 8], "latent_dim": 2, "curvature": 0.7,
        "encoder": {"name": "mlp", "hidden": [16]}, "decoder": {"name": "mlp", "hidden": [16]}}


def test_the_pvae_bounds_use_the_wrapped_normals_and_the_iwae_bound_is_tighter():
    torch.manual_seed(0)
    model = vaezoo.create(PVAE).eval()
    x = (torch.rand(6, 1, 8, 8) > 0.5).float()
    eps = torch.randn(4, 6, 2)
    draw = model.latent_pass(x, eps)
    q = model.encode(x)
    z = q.rsample_from(eps)
    prior = WrappedNormal(torch.zeros(2), torch.ones(2), 0.7)
    torch.testing.assert_close(draw.levels[0].z, z)
    torch.testing.assert_close(draw.log_weights(), model.decode(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z))
    assert model.prior.curvature == 0.7
    with torch.no_grad():
        assert float(model.iwae(x, k=300).mean()) >= float(model.elbo(x, samples=300).mean()) - 0.05


def test_a_pvae_trains_saves_and_keeps_its_codes_in_the_ball(tmp_path):
    config = tiny_config("pvae", epochs=2, select="best_val")
    config["model"] = {**PVAE, "input_shape": config["model"]["input_shape"]}
    vaezoo.train(config, out=tmp_path / "run", stream=io.StringIO())
    assert all(math.isfinite(r["val_neg_elbo"]) for r in read_metrics(tmp_path / "run"))
    loaded = vaezoo.load(tmp_path / "run")
    assert loaded.prior.curvature == pytest.approx(0.7)
    codes = loaded.posterior_means(torch.rand(16, *config["model"]["input_shape"]))["z"]
    assert float(codes.detach().norm(dim=-1).max()) < 1 / math.sqrt(0.7)


def test_a_euclidean_prior_is_refused_by_name():
    with pytest.raises(ConfigError, match="poincare-normal"):
        vaezoo.create({**PVAE, "prior": "normal"})
