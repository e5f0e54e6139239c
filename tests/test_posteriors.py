"""Flow posteriors: the change of variables, the autoregressive structure, invertibility, the
bounds, and what does not apply to a density known only at its draws."""

from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.errors import ConfigError, UsageError
from vaezoo.ops.gaussian import DiagonalGaussian
from vaezoo.parts.kinds import POSTERIORS
from vaezoo.parts.posteriors import FlowPosterior, PlanarStep

FLOWS = {"planar": {"name": "planar", "steps": 3}, "radial": {"name": "radial", "steps": 3},
         "iaf": {"name": "iaf", "blocks": 2, "hidden": [8, 8]},
         # pythae's VAE_IAF: the affine step, ReLU, the first block in the reversed order
         "iaf-affine": {"name": "iaf", "blocks": 2, "hidden": [8, 8], "step": "affine", "activation": "relu",
                        "first_order": "reversed"}}


def _flow(name: str, dim: int):
    spec = FLOWS[name]
    return POSTERIORS.get(spec["name"])(dim, **{k: v for k, v in spec.items() if k != "name"}).double()


def _perturb(module: torch.nn.Module, scale: float = 0.5) -> None:
    """Move every parameter away from its (near-identity) initialization."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)


@pytest.mark.parametrize("name", FLOWS)
def test_log_det_is_the_log_abs_determinant_of_the_jacobian(name):
    flow = _flow(name, 3)
    _perturb(flow)
    torch.manual_seed(0)
    z = torch.randn(4, 3, dtype=torch.float64)
    with torch.no_grad():
        out, log_det = flow(z)
    for i in range(4):
        jacobian = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0))[0][0], z[i])
        assert float(log_det[i]) == pytest.approx(float(torch.linalg.slogdet(jacobian).logabsdet), abs=1e-8)


def test_draw_log_q_is_the_change_of_variables_density():
    flow = _flow("iaf", 3)
    _perturb(flow)
    torch.manual_seed(0)
    base = DiagonalGaussian(torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64) * 0.3)
    q = FlowPosterior(base, flow)
    eps = torch.randn(5, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        z, log_q = q.draw(eps)
    z0 = base.mu + torch.exp(0.5 * base.logvar) * eps
    for s in range(5):
        for b in range(2):
            jacobian = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0))[0][0], z0[s, b])
            expected = DiagonalGaussian(base.mu[b], base.logvar[b]).log_prob(z0[s, b]) - \
                torch.linalg.slogdet(jacobian).logabsdet
            assert float(log_q[s, b]) == pytest.approx(float(expected), abs=1e-8)
    torch.testing.assert_close(z, flow(z0)[0].detach())


def test_a_one_dimensional_flow_density_integrates_to_one():
    """q(z) = N(z0) / |f'(z0)| on a grid of z = f(z0): its integral over z is 1 (f is monotone)."""
    flow = _flow("planar", 1)
    _perturb(flow, 1.0)
    base = DiagonalGaussian(torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([[-0.5]], dtype=torch.float64))
    z0 = torch.linspace(-12, 12, 200_001, dtype=torch.float64).view(-1, 1, 1)
    with torch.no_grad():
        z, log_q = FlowPosterior(base, flow).draw((z0 - 0.3) / math.exp(-0.25))
    z, density = z.view(-1), log_q.view(-1).exp()
    assert bool((z[1:] > z[:-1]).all())  # invertible: monotone in one dimension
    assert float(torch.trapezoid(density, z)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name, first", [("iaf", 0), ("iaf-affine", 1)])
def test_iaf_is_autoregressive_in_each_blocks_order(name, first):
    flow = _flow(name, 4)
    _perturb(flow)
    z = torch.randn(4, dtype=torch.float64)
    for i, block in enumerate(flow.steps):
        jacobian = torch.autograd.functional.jacobian(lambda v: block(v.unsqueeze(0))[0][0], z)
        # jacobian[i, j] = d out_i / d z_j: in the forward order, output i sees inputs j < i only
        forward = (first + i) % 2 == 0
        later = torch.triu(jacobian, 1) if forward else torch.tril(jacobian, -1)
        assert torch.count_nonzero(later) == 0, (i, jacobian)
        other = torch.tril(jacobian, -1) if forward else torch.triu(jacobian, 1)
        assert torch.count_nonzero(other) > 0  # and does see them: the flow is not elementwise


def test_the_affine_iaf_step_scales_by_exp_s_and_starts_as_the_identity():
    """z' = z exp(s) + m, not the gated sigma z + (1 - sigma) m: the diagonal of its Jacobian is exp(s)."""
    flow = _flow("iaf-affine", 3)
    z = torch.randn(5, 3, dtype=torch.float64)
    out, log_det = flow(z)
    torch.testing.assert_close(out, z)  # a zero head: m = s = 0
    assert torch.count_nonzero(log_det) == 0
    _perturb(flow)
    block = flow.steps[0]
    m, s = block.head(block.trunk(z)).chunk(2, dim=-1)
    out, log_det = block(z)
    torch.testing.assert_close(out, z * torch.exp(s) + m)
    jacobian = torch.autograd.functional.jacobian(lambda v: block(v.unsqueeze(0))[0][0], z[0])
    torch.testing.assert_close(torch.diagonal(jacobian), torch.exp(s[0]).detach())


def test_planar_steps_keep_their_invertibility_condition():
    """w . u_hat = -1 + softplus(w . u) >= -1 whatever u and w: each step is invertible."""
    torch.manual_seed(0)
    for _ in range(50):
        step = PlanarStep(5).double()
        with torch.no_grad():
            step.u.copy_(torch.randn(5) * 3)
            step.w.copy_(torch.randn(5) * 3)
            wu = step.w @ step.u
            assert float(step.w @ step.u_hat()) == pytest.approx(float(torch.nn.functional.softplus(wu) - 1), abs=1e-9)
            assert float(step.w @ step.u_hat()) >= -1.0 - 1e-12  # up to rounding


@pytest.mark.parametrize("name", FLOWS)
def test_flow_vae_iwae_is_at_least_its_elbo_and_trains(name, tmp_path):
    torch.manual_seed(0)
    model = vaezoo.create({"model": {"input_shape": [1, 8, 8], "latent_dim": 3, "posterior": FLOWS[name],
                                     "encoder": {"name": "mlp", "hidden": [16]},
                                     "decoder": {"name": "mlp", "hidden": [16]}}})
    x = torch.rand(6, 1, 8, 8).round()
    with torch.no_grad():
        iwae, elbo = model.iwae(x, k=500, seed=0), model.elbo(x, samples=500)
    assert (iwae >= elbo - 0.05).all()
    out = model(x)
    out.loss.backward()
    assert all(p.grad is not None for p in model.flow.parameters())  # the flow is trained by the ELBO
    torch.testing.assert_close(-out.elbo.mean(), out.recon + out.kl)
    model.save_pretrained(tmp_path / "m")
    loaded = vaezoo.load(tmp_path / "m")
    assert loaded.config.posterior.name == FLOWS[name]["name"]
    assert all(torch.equal(a, b) for a, b in zip(model.flow.state_dict().values(), loaded.flow.state_dict().values()))


def test_what_needs_a_gaussian_posterior_says_so():
    config = {"input_shape": [1, 8, 8], "latent_dim": 3, "encoder": {"name": "mlp", "hidden": [16]},
              "decoder": {"name": "mlp", "hidden": [16]}, "posterior": "planar"}
    model = vaezoo.create(config)
    x = torch.rand(2, 1, 8, 8).round()
    with pytest.raises(UsageError, match="known at its own draws"):
        model.encode(x).log_prob(torch.zeros(2, 3))
    with pytest.raises(UsageError, match="refinement optimizes one diagonal Gaussian"):
        model.refine(x, steps=2)
    with pytest.raises(ConfigError, match="model.prior.*vamp.*flow posterior"):
        vaezoo.create({**config, "prior": "vamp"})
    with pytest.raises(UsageError, match="beta-tcvae needs a diagonal Gaussian posterior"):
        vaezoo.create({**config, "objective": "beta-tcvae"})(x)


def test_each_level_of_a_hierarchy_takes_its_own_flow(tmp_path):
    config = {"family": "hvae", "input_shape": [1, 8, 8], "latent_dims": [3, 2], "hidden": 16, "features": 16,
              "encoder": {"name": "gated-mlp", "hidden": [16]}, "encoder_z1": {"name": "gated-mlp", "hidden": []},
              "decoder": {"name": "gated-mlp", "hidden": [16]}, "posterior": {"name": "iaf", "hidden": [8]}}
    torch.manual_seed(0)
    model = vaezoo.create(config)
    assert sorted(model.flows) == ["z1", "z2"] and model.flows["z1"].steps[0].head.out_features == 6
    x = torch.rand(4, 1, 8, 8).round()
    draw = model.latent_pass(x, torch.randn(2, 4, 5))
    assert all(level.log_q_at_draw is not None and level.kl_per_dim() is None for level in draw.levels)
    out = model(x)
    torch.testing.assert_close(-out.elbo.mean(), out.recon + out.kl)
    q = model.encode(x)
    assert isinstance(q["z1"], FlowPosterior) and q.mean["z2"].shape == (4, 2)
    model.save_pretrained(tmp_path / "h")
    loaded = vaezoo.load(tmp_path / "h")
    torch.testing.assert_close(loaded.reconstruct(x), model.eval().reconstruct(x))
    with pytest.raises(ConfigError, match="model.prior.*vamp.*flow posterior"):
        vaezoo.create({**config, "prior": "vamp"})
