"""The zoo's extra parts: mixture priors and the fitted prior, IWAE / free bits / beta-TCVAE
objectives, continuous Bernoulli and discretized logistic likelihoods, learned Gaussian variance."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

import vaezoo
from vaezoo.ops.gaussian import DiagonalGaussian, diagonal_gaussian_mixture_log_prob
from vaezoo.parts import DECODERS, ENCODERS
from vaezoo.parts.likelihoods import ContinuousBernoulliImage, DiscretizedLogisticMixture
from vaezoo.parts.likelihoods.continuous_bernoulli import cb_log_normalizer, cb_mean
from vaezoo.parts.objectives import free_bits_kl, tc_decomposition
from vaezoo.parts.priors import MixturePrior, VampPrior
from vaezoo.posthoc import fit_gaussian_mixture


def tiny(shape=(1, 4, 4), latent=3, encoder="mlp", decoder="mlp", **model):
    return {"model": {"input_shape": list(shape), "latent_dim": latent, "encoder": encoder, "decoder": decoder,
                      **model}}


# ---------------------------------------------------------------------------------- priors


def test_mixture_prior_log_prob_matches_a_manual_logsumexp():
    torch.manual_seed(0)
    prior = MixturePrior(3, components=4).double()
    with torch.no_grad():
        prior.logvars.copy_(torch.randn(4, 3, dtype=torch.float64))
        prior.logits.copy_(torch.randn(4, dtype=torch.float64))
    z = torch.randn(5, 7, 3, dtype=torch.float64)
    weights = torch.softmax(prior.logits, 0)
    manual = torch.logsumexp(torch.stack([
        torch.log(weights[k]) + Normal(prior.means[k], torch.exp(0.5 * prior.logvars[k])).log_prob(z).sum(-1)
        for k in range(4)]), dim=0)
    torch.testing.assert_close(prior.log_prob(z), manual)
    torch.testing.assert_close(prior.distribution().log_prob(z), manual)  # torch's MixtureSameFamily agrees
    assert prior.sample(11).shape == (11, 3)


def test_mixture_log_prob_keeps_float32_accuracy_under_bf16_autocast():
    # the matrix-product form cancels large terms: it must not run as a bf16 matmul
    torch.manual_seed(0)
    z, means = 3 * torch.randn(64, 40), 3 * torch.randn(500, 40)
    logvars, log_weights = torch.randn(500, 40) - 2, torch.log_softmax(torch.randn(500), 0)
    exact = diagonal_gaussian_mixture_log_prob(z.double(), means.double(), logvars.double(), log_weights.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = diagonal_gaussian_mixture_log_prob(z, means, logvars, log_weights)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast.double(), exact, rtol=1e-5, atol=1e-3)


def test_mixture_prior_learns_through_the_monte_carlo_kl_and_freezes_as_buffers():
    torch.manual_seed(0)
    model = vaezoo.create(tiny(prior={"name": "mog", "components": 3}))
    model(torch.rand(8, 1, 4, 4)).loss.backward()
    for name in ("means", "logvars", "logits"):
        assert getattr(model.prior, name).grad.abs().sum() > 0
    frozen = vaezoo.create(tiny(prior={"name": "mog", "components": 3, "learnable": False}))
    assert list(frozen.prior.parameters()) == []
    # frozen values are still weights: saved under the same names
    assert {"prior.means", "prior.logvars", "prior.logits"} <= set(frozen.state_dict())


def vamp_model(k=7, **model):
    return vaezoo.create(tiny(prior={"name": "vamp", "pseudo_inputs": k}, **model))


def test_vamp_prior_is_the_mixture_of_encoded_pseudo_inputs():
    torch.manual_seed(0)
    model = vamp_model()
    prior = model.prior
    assert isinstance(prior, VampPrior) and prior.pseudo_inputs.shape == (7, 1, 4, 4)
    z = torch.randn(6, 3)
    q = model.encode(prior.pseudo_inputs.clamp(0, 1))
    manual = torch.logsumexp(torch.stack([Normal(q.mu[k], torch.exp(0.5 * q.logvar[k])).log_prob(z).sum(-1)
                                          for k in range(7)]), 0) - math.log(7)
    torch.testing.assert_close(prior.log_prob(z), manual)
    # the gradient of log p(z) reaches the pseudo-inputs and, through them, the encoder
    prior.log_prob(z).sum().backward()
    assert prior.pseudo_inputs.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_vamp_prior_does_not_duplicate_the_encoder():
    model = vamp_model()
    assert list(model.prior.modules()) == [model.prior]  # the encoder is not a submodule of the prior
    prior_keys = [k for k in model.state_dict() if k.startswith("prior.")]
    assert prior_keys == ["prior.pseudo_inputs"]
    assert sum(v.numel() for v in model.state_dict().values()) == model.num_parameters()
    # a deepcopy's prior must use the copy's encoder, not the original's
    clone = copy.deepcopy(model)
    assert clone.prior.__dict__["_model"] is clone
    with torch.no_grad():
        clone.encoder.apply(lambda m: m.weight.zero_() if isinstance(m, nn.Linear) else None)
    z = torch.randn(4, 3)
    assert not torch.allclose(clone.prior.log_prob(z), model.prior.log_prob(z))
    # .to() reaches the pseudo-inputs (a GPU move goes through the same Module._apply)
    model.double()
    assert model.prior.pseudo_inputs.dtype == torch.float64
    assert model.prior.log_prob(z.double()).dtype == torch.float64


def test_vamp_prior_keeps_its_encoded_pseudo_inputs_only_while_the_weights_stay(monkeypatch):
    torch.manual_seed(0)
    model = vamp_model().eval()
    calls = []
    encode_top = model.encode_top
    monkeypatch.setattr(model, "encode_top", lambda x: calls.append(1) or encode_top(x))
    z = torch.randn(6, 3)

    def fresh():  # the prior as training computes it, with the gradient on: never cached
        return model.prior.log_prob(z).detach()

    with torch.no_grad():
        first = model.prior.log_prob(z)
        assert torch.equal(model.prior.log_prob(z), first) and len(calls) == 1  # scoring: encoded once
        next(model.encoder.parameters()).mul_(1.5)  # an in-place change (an optimizer step, a load's copy_)
        changed = model.prior.log_prob(z)
    assert len(calls) == 2 and not torch.allclose(changed, first)
    torch.testing.assert_close(changed, fresh())
    with torch.no_grad():
        model.prior.pseudo_inputs.add_(0.1)
        torch.testing.assert_close(model.prior.log_prob(z), fresh())
        model.load_state_dict(vamp_model().state_dict())
        torch.testing.assert_close(model.prior.log_prob(z), fresh())
        model.double()  # new storage
        assert model.prior.log_prob(z.double()).dtype == torch.float64
        model.float()
        cached = model.prior.log_prob(z)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # other arithmetic: encoded again
            count = len(calls)
            model.prior.log_prob(z)
            assert len(calls) == count + 1
        torch.testing.assert_close(model.prior.log_prob(z), cached)
        model.train()  # training mode, even without a gradient: encoded on every call
        count = len(calls)
        model.prior.log_prob(z), model.prior.log_prob(z)
        assert len(calls) == count + 2


def test_vamp_model_round_trips_through_save_pretrained(tmp_path):
    torch.manual_seed(0)
    model = vamp_model()
    with torch.no_grad():
        model.prior.pseudo_inputs.uniform_(0, 1)  # differ from a fresh init, so a lost tensor shows
    model.save_pretrained(tmp_path / "vamp")
    loaded = vaezoo.load(str(tmp_path / "vamp"))
    model.eval()
    x, z = torch.rand(5, 1, 4, 4), torch.randn(9, 3)
    torch.testing.assert_close(loaded.prior.log_prob(z), model.prior.log_prob(z))
    torch.manual_seed(1)
    expected = model.iwae(x, 4)
    torch.manual_seed(1)
    torch.testing.assert_close(loaded.iwae(x, 4), expected)


def test_vamp_model_trains_under_ddp(tmp_path):
    # one-process gloo group: DDP must accept a prior that runs the encoder a second time
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = vamp_model()
        ddp = nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)
        before = model.prior.pseudo_inputs.detach().clone()
        for _ in range(2):  # the second step is where DDP reports parameters left out of the first
            optimizer.zero_grad()
            ddp(torch.rand(6, 1, 4, 4)).loss.backward()
            optimizer.step()
        assert not torch.equal(before, model.prior.pseudo_inputs)
    finally:
        dist.destroy_process_group()


class PixelsAsMeans(nn.Module):
    """Test encoder: mu = the image's pixels, fixed small variance; so latents are known."""

    def __init__(self, in_shape, out_features):
        super().__init__()
        self.latent = out_features // 2

    def forward(self, x):
        mu = x.flatten(1)[:, : self.latent]
        return torch.cat([mu, torch.full_like(mu, -6.0)], dim=-1)


@pytest.fixture
def pixel_encoder():
    vaezoo.register_backbone("test-pixels")(PixelsAsMeans)
    yield
    ENCODERS.remove("test-pixels")


def two_clusters(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=g) < 0.7).long()  # weights 0.3 / 0.7
    centers = torch.tensor([[-3.0, -3.0], [3.0, 2.0]])
    return centers[labels] + 0.5 * torch.randn(n, 2, generator=g)


def test_fit_prior_recovers_two_clusters_and_survives_save_load(pixel_encoder, tmp_path):
    torch.manual_seed(0)
    model = vaezoo.create(tiny(shape=(1, 1, 2), latent=2, encoder="test-pixels"))
    images = two_clusters().view(-1, 1, 1, 2)
    vaezoo.fit_prior(model, images, components=2, seed=3)

    prior = model.prior
    assert isinstance(prior, MixturePrior) and list(prior.parameters()) == []  # frozen by default
    order = prior.means[:, 0].argsort()
    torch.testing.assert_close(prior.means[order], torch.tensor([[-3.0, -3.0], [3.0, 2.0]]), atol=0.12, rtol=0)
    torch.testing.assert_close(torch.softmax(prior.logits, 0)[order], torch.tensor([0.3, 0.7]), atol=0.05, rtol=0)
    torch.testing.assert_close(prior.logvars.exp()[order], torch.full((2, 2), 0.25), atol=0.06, rtol=0)
    assert model.config.prior.name == "mog" and model.config.prior.params["components"] == 2

    # deterministic for a seed
    again = vaezoo.create(tiny(shape=(1, 1, 2), latent=2, encoder="test-pixels"))
    vaezoo.fit_prior(again, images, components=2, seed=3)
    torch.testing.assert_close(again.prior.means, prior.means, atol=0, rtol=0)
    learnable = vaezoo.fit_prior(again, images, components=2, seed=3, learnable=True)
    assert len(list(learnable.prior.parameters())) == 3 and learnable.config.prior.params["learnable"] is True

    model.save_pretrained(tmp_path / "fitted")
    loaded = vaezoo.load(str(tmp_path / "fitted"))
    assert isinstance(loaded.prior, MixturePrior)
    z = torch.randn(10, 2) * 3
    torch.testing.assert_close(loaded.prior.log_prob(z), model.prior.log_prob(z))


def test_em_beats_a_single_gaussian_on_mixture_data():
    x = two_clusters(400, seed=1).double()
    _, means, variances = fit_gaussian_mixture(x, 1, iterations=5)
    torch.testing.assert_close(means[0], x.mean(0))  # one component: the sample mean and variance
    torch.testing.assert_close(variances[0], x.var(0, unbiased=False) + 1e-6)


# ------------------------------------------------------------------------------ objectives


def test_iwae_objective_at_k1_is_the_single_sample_monte_carlo_elbo():
    torch.manual_seed(0)
    model = vaezoo.create(tiny(objective={"name": "iwae", "k": 1}))
    x = torch.rand(6, 1, 4, 4)
    torch.manual_seed(5)
    out = model(x)
    torch.manual_seed(5)
    posterior = model.encode(x)
    z = posterior.rsample((1,))
    mc_elbo = model.decode(z).log_prob(x) - (posterior.log_prob(z) - model.prior.log_prob(z))
    torch.testing.assert_close(out.loss, -mc_elbo.mean())
    torch.testing.assert_close(out.elbo.mean(), -(out.recon + out.kl))
    assert out.z.shape == (6, 3) and out.x_hat.shape == (6, 1, 4, 4)


def test_iwae_loss_decreases_with_k_on_average():
    torch.manual_seed(0)
    model = vaezoo.create(tiny(objective={"name": "iwae", "k": 1}))
    # at init q(z|x) is close to p(z) and the weights barely vary with z, so every bound is
    # the same; a narrow posterior (log-variance -3) makes the log-weights spread out
    head = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        head.bias[3:] = -3.0
    x = torch.rand(16, 1, 4, 4)
    means = {}
    with torch.no_grad():
        for k in (1, 4, 16):
            model.objective.k = k
            torch.manual_seed(1)
            means[k] = torch.stack([model(x).loss for _ in range(20)]).mean().item()
    # measured gaps are ~0.45 and ~0.4 nats, standard errors of the means ~0.07
    assert means[1] > means[4] > means[16]


class ConstantPosterior(nn.Module):
    """Test encoder: the same (mu, logvar) for every image, from one parameter vector."""

    def __init__(self, in_shape, out_features):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return self.theta.expand(x.shape[0], -1)


class IgnoresZ(nn.Module):
    """Test decoder whose output does not depend on z: the loss's encoder gradient is the KL's."""

    def __init__(self, in_features, out_shape):
        super().__init__()
        self.out = nn.Parameter(torch.zeros(out_shape))

    def forward(self, z):
        return self.out.expand(z.shape[0], *self.out.shape)


@pytest.fixture
def constant_parts():
    vaezoo.register_backbone("test-constant")(ConstantPosterior)
    vaezoo.register_backbone("test-ignores-z", role="decoder")(IgnoresZ)
    yield
    ENCODERS.remove("test-constant")
    DECODERS.remove("test-ignores-z")


@pytest.mark.parametrize("free_bits", [0.0, 0.5])
def test_free_bits_cut_the_kl_gradient_below_lambda_and_keep_the_reported_kl(constant_parts, free_bits):
    model = vaezoo.create(tiny(latent=4, encoder="test-constant", decoder="test-ignores-z",
                               objective={"name": "elbo", "free_bits": free_bits}))
    mu = torch.tensor([0.1, 2.0, 0.0, 3.0])  # KL per dimension (unit variance): 0.005, 2, 0, 4.5
    with torch.no_grad():
        model.encoder.theta[:4] = mu
    x = torch.rand(5, 1, 4, 4)
    out = model(x)
    out.loss.backward()
    true_kl = 0.5 * mu.pow(2)
    torch.testing.assert_close(out.kl, true_kl.sum())  # reported KL is the true one either way
    torch.testing.assert_close(out.elbo, -torch.nn.functional.binary_cross_entropy_with_logits(
        torch.zeros(5, 16), x.view(5, 16), reduction="none").sum(-1) - true_kl.sum())
    torch.testing.assert_close(out.loss, out.recon + true_kl.clamp(min=free_bits).sum())
    grad_mu = model.encoder.theta.grad[:4]
    if free_bits:
        # dimensions 0 and 2 are under 0.5 nats: no KL gradient; 1 and 3 get d(mu^2/2)/dmu = mu
        torch.testing.assert_close(grad_mu, torch.tensor([0.0, 2.0, 0.0, 3.0]))
    else:
        torch.testing.assert_close(grad_mu, mu)


def test_free_bits_with_a_mixture_prior_clamp_the_total_kl():
    # no per-dimension KL for a mixture: the batch-mean total is clamped at lambda * latent_dim
    torch.manual_seed(0)
    model = vaezoo.create(tiny(prior="mog", objective={"name": "elbo", "free_bits": 100.0}))
    out = model(torch.rand(4, 1, 4, 4))
    assert out.kl < 300.0
    torch.testing.assert_close(out.loss, out.recon + 300.0)


def test_free_bits_average_over_the_batch_before_clamping():
    kl = torch.tensor([[0.0, 1.0], [0.8, 1.0]], requires_grad=True)  # dim 0: mean 0.4 < 0.5
    free_bits_kl(kl, 0.5).backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5], [0.0, 0.5]]))


def test_beta_tcvae_terms_sum_to_the_monte_carlo_kl():
    torch.manual_seed(0)
    model = vaezoo.create(tiny(objective={"name": "beta-tcvae", "dataset_size": 8, "alpha": 1.0, "beta": 1.0,
                                          "gamma": 1.0}))
    x = torch.rand(8, 1, 4, 4)
    torch.manual_seed(2)
    out = model(x)
    torch.manual_seed(2)
    posterior = model.encode(x)
    z = posterior.rsample()
    mc_kl = posterior.log_prob(z) - model.prior.log_prob(z)  # the minibatch estimate of E[KL]
    torch.testing.assert_close(out.kl, mc_kl.mean())
    torch.testing.assert_close(out.loss, out.recon + mc_kl.mean())
    mi, tc, dwkl = tc_decomposition(z, posterior.mu, posterior.logvar, model.prior.log_prob_per_dim(z), 8)
    torch.testing.assert_close(mi + tc + dwkl, mc_kl)
    # with beta = 6 only the total correlation term is weighted more
    model.objective.beta = 6.0
    torch.manual_seed(2)
    torch.testing.assert_close(model(x).loss, out.recon + (mi + 6 * tc + dwkl).mean())


def test_total_correlation_sees_correlated_latents():
    torch.manual_seed(0)
    n, logvar = 256, torch.full((256, 2), -4.0)
    independent = torch.randn(n, 2)
    correlated = torch.randn(n, 1).expand(n, 2).clone()  # z_1 = z_2: maximal dependence
    prior_log = lambda z: -0.5 * (z.pow(2) + math.log(2 * math.pi))  # noqa: E731

    def tc(mu):
        z = DiagonalGaussian(mu, logvar).rsample()
        return tc_decomposition(z, mu, logvar, prior_log(z), n)[1].mean().item()

    # The MWS estimate carries a constant offset (from its 1/(N M) weights), the same for both
    # batches, so compare the two: the true total correlation of (u + s e1, u + s e2) with
    # u ~ N(0, 1) and s^2 = e^-4 is -0.5 log(1 - rho^2) = 1.67 nats (rho = 1 / (1 + s^2)),
    # and it is 0 for independent latents.
    gap = tc(correlated) - tc(independent)
    assert 1.0 < gap < 2.5


def test_beta_tcvae_rejects_a_prior_that_does_not_factorize():
    model = vaezoo.create(tiny(prior="mog", objective={"name": "beta-tcvae", "dataset_size": 100}))
    with pytest.raises(ValueError, match="factorizes over latent dimensions"):
        model(torch.rand(2, 1, 4, 4))


# ----------------------------------------------------------------------------- likelihoods


def test_continuous_bernoulli_normalizer_matches_numerical_integration():
    # logits from the tails to both sides of lambda = 1/2, where the Taylor branch switches on
    eta = torch.tensor([-40.0, -5.0, -0.5, -0.02, -0.009, -1e-4, 0.0, 1e-6, 0.003, 0.0099, 0.0101,
                        0.05, 0.3, 4.0, 25.0], dtype=torch.float64)
    x = torch.linspace(0, 1, 100_001, dtype=torch.float64)[:, None]
    unnormalized = torch.exp(x * F.logsigmoid(eta) + (1 - x) * F.logsigmoid(-eta))
    numeric = -torch.log(torch.trapezoid(unnormalized, x, dim=0))
    torch.testing.assert_close(cb_log_normalizer(eta), numeric, atol=1e-7, rtol=0)  # trapezoid error ~1e-8
    torch.testing.assert_close(cb_log_normalizer(eta.float()), numeric.float(), atol=1e-6, rtol=1e-6)
    # the density integrates to one, and its mean is the reported one
    dist = ContinuousBernoulliImage(eta.view(1, 1, 1, -1).expand(x.shape[0], 1, 1, -1).reshape(-1, 1, 1, 1))
    density = dist.log_prob(x.expand(-1, eta.numel()).reshape(-1, 1, 1, 1)).exp().view(x.shape[0], -1)
    torch.testing.assert_close(torch.trapezoid(density, x, dim=0), torch.ones_like(eta), atol=1e-7, rtol=0)
    torch.testing.assert_close(cb_mean(eta), torch.trapezoid(x * density, x, dim=0), atol=1e-7, rtol=0)


def test_continuous_bernoulli_is_stable_at_one_half_and_samples_its_mean():
    eta = torch.tensor([0.0, 1e-3, -2.0, 6.0], requires_grad=True)
    dist = ContinuousBernoulliImage(eta.view(1, 1, 4))
    dist.log_prob(torch.full((1, 1, 4), 0.3)).backward()
    assert torch.isfinite(eta.grad).all()  # the unused branch of torch.where must not leak NaN
    torch.manual_seed(0)
    draws = dist.sample((20_000,))
    assert draws.min() >= 0 and draws.max() <= 1
    torch.testing.assert_close(draws.mean(0), dist.mean.detach(), atol=0.01, rtol=0)


def test_continuous_bernoulli_likelihood_in_a_model():
    model = vaezoo.create(tiny(likelihood="continuous-bernoulli"))
    out = model(torch.rand(3, 1, 4, 4))
    assert torch.isfinite(out.loss)
    assert out.x_hat.shape == (3, 1, 4, 4) and ((out.x_hat > 0) & (out.x_hat < 1)).all()


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-7), (torch.float32, 2e-6)])
def test_discretized_logistic_probabilities_over_256_bins_sum_to_one(dtype, atol):
    torch.manual_seed(0)
    m, pixels = 3, 6  # six pixels with different mixtures, from sharp (scale e^-9) to flat (e^5)
    logits = torch.randn(m, 1, 1, pixels, dtype=dtype)
    means = torch.randn(m, 1, 1, pixels, dtype=dtype) * 0.7 + 0.5
    log_scales = torch.tensor([-9.0, -5, -2, 0, 2, 5], dtype=dtype) + 0.3 * torch.randn(m, 1, 1, pixels, dtype=dtype)
    dist = DiscretizedLogisticMixture(logits, means, log_scales)
    levels = (torch.arange(256, dtype=dtype) / 255).view(256, 1, 1, 1).expand(256, 1, 1, pixels)
    # log_prob sums over pixels, so score one pixel at a time by putting the rest on a fixed level
    per_pixel = []
    for p in range(pixels):
        one = DiscretizedLogisticMixture(logits[..., p:p + 1], means[..., p:p + 1], log_scales[..., p:p + 1])
        per_pixel.append(one.log_prob(levels[..., p:p + 1]).exp())
    totals = torch.stack(per_pixel).sum(1)
    torch.testing.assert_close(totals, torch.ones(pixels, dtype=dtype), atol=atol, rtol=0)
    # its mean is that of the 256 levels (up to the rounding to levels)
    exact = torch.stack([(pp * levels[:, 0, 0, 0]).sum() for pp in per_pixel])
    torch.testing.assert_close(dist.mean.flatten(), exact, atol=2e-3, rtol=0)
    assert torch.isfinite(dist.log_prob(levels)).all()


def test_discretized_logistic_bits_per_dim_and_layout():
    likelihood = vaezoo.create(tiny(shape=(3, 4, 4), likelihood={"name": "discretized-logistic",
                                                                  "mixtures": 2})).likelihood
    assert likelihood.decoder_shape() == (3 * 3 * 2, 4, 4)
    # Channels are (logits, means, log-scales) x mixtures x image channels. Put both components
    # on the pixel's own interior level with scale s = half a bin: the level then has
    # probability sigmoid(1) - sigmoid(-1) = tanh(1/2), i.e. -log2(tanh(1/2)) bits/dim.
    x = torch.randint(1, 255, (5, 3, 4, 4)) / 255
    params = torch.zeros(5, 18, 4, 4)
    params[:, 6:12] = x.repeat(1, 2, 1, 1)                # means: component-major, then channel
    params[:, 12:] = math.log(0.5 / 255)                  # log-scales
    dist = likelihood(params)
    bits_per_dim = -dist.log_prob(x) / (3 * 16 * math.log(2))
    torch.testing.assert_close(bits_per_dim, torch.full((5,), -math.log2(math.tanh(0.5))), atol=1e-4, rtol=0)
    sample = dist.sample()
    assert sample.shape == (5, 3, 4, 4)
    torch.testing.assert_close(sample * 255, (sample * 255).round())  # on the 256 levels
    # the model trains with it
    model = vaezoo.create(tiny(likelihood={"name": "discretized-logistic", "mixtures": 2}))
    out = model(torch.randint(0, 256, (4, 1, 4, 4)) / 255)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.x_hat.shape == (4, 1, 4, 4)


def test_gaussian_learned_variance_is_a_saved_parameter_that_finds_the_noise(tmp_path):
    model = vaezoo.create(tiny(shape=(2, 4, 4), likelihood={"name": "gaussian", "variance": "learned",
                                                            "sigma": 1.0}))
    likelihood = model.likelihood
    assert isinstance(likelihood.log_sigma, nn.Parameter) and likelihood.log_sigma.shape == (2, 1, 1)
    assert "likelihood.log_sigma" in model.state_dict()
    # maximum likelihood over sigma alone, mean fixed: sigma goes to each channel's noise level
    torch.manual_seed(0)
    mean = torch.rand(256, 2, 4, 4)
    x = mean + torch.tensor([0.1, 0.4]).view(1, 2, 1, 1) * torch.randn(256, 2, 4, 4)
    optimizer = torch.optim.Adam([likelihood.log_sigma], lr=0.1)
    for _ in range(150):
        optimizer.zero_grad()
        (-likelihood(mean).log_prob(x).mean()).backward()
        optimizer.step()
    torch.testing.assert_close(likelihood.log_sigma.exp().flatten(), torch.tensor([0.1, 0.4]), atol=0.01, rtol=0)
    model.save_pretrained(tmp_path / "g")
    loaded = vaezoo.load(str(tmp_path / "g"))
    torch.testing.assert_close(loaded.likelihood.log_sigma, likelihood.log_sigma.detach())


def test_discretized_logistic_scores_the_same_under_bf16_autocast():
    torch.manual_seed(0)
    model = vaezoo.create({"model": {"input_shape": [1, 8, 8], "latent_dim": 4, "encoder": {"name": "mlp", "hidden": [32]},
                                     "decoder": {"name": "mlp", "hidden": [32]},
                                     "likelihood": {"name": "discretized-logistic", "mixtures": 2}}})
    with torch.no_grad():  # sharp components, the case bf16 means get wrong
        model.decoder.net[-1].bias.view(3, 2, 1, 8, 8)[2].fill_(-6.0)
    x = torch.randint(0, 256, (4, 1, 8, 8)).float() / 255
    z = torch.randn(4, 4)
    exact = model.decode(z).log_prob(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.decode(z).log_prob(x)
        bernoulli = vaezoo.create({"model": {"input_shape": [1, 8, 8], "latent_dim": 4, "encoder": "mlp",
                                             "decoder": "mlp"}}).decoder_maps(z)
    torch.testing.assert_close(mixed, exact, atol=1e-3, rtol=1e-5)
    assert bernoulli.dtype == torch.bfloat16  # other likelihoods keep the fast path
