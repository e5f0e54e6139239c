"""The model's math and shapes: KL, ELBO, reparameterization, gradients, parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

import vaezoo
from vaezoo.ops.gaussian import DiagonalGaussian, kl_to_standard_normal
from vaezoo.parts import DECODERS, ENCODERS


def tiny_config(encoder="mlp", decoder="mlp", shape=(1, 6, 6), latent=3, **model):
    return {"model": {"input_shape": list(shape), "latent_dim": latent, "encoder": encoder, "decoder": decoder,
                      **model}}


def test_closed_form_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar).sum(-1), expected)
    prior = vaezoo.create(tiny_config()).prior
    q = DiagonalGaussian(mu, logvar)
    torch.testing.assert_close(prior.kl(q, q.rsample()), expected)


def test_reparameterization_draws_standard_normal_noise():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.full((200_000, 1), 2.0), torch.full((200_000, 1), math.log(9.0)))
    z = q.rsample()
    # z = mu + sigma * eps with eps ~ N(0, 1): mean 2, std 3. Uniform noise (the seed's rand_like)
    # would give mean 3.5 and std 0.87.
    assert abs(z.mean().item() - 2.0) < 0.03
    assert abs(z.std().item() - 3.0) < 0.03


class Affine(nn.Module):
    """Test backbone: one linear map, so the ELBO can be computed by hand."""

    def __init__(self, n_in, n_out, out_shape=None):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.out_shape = out_shape

    def forward(self, x):
        y = self.linear(x.flatten(1))
        return y if self.out_shape is None else y.view(-1, *self.out_shape)


@pytest.fixture
def affine_parts():
    vaezoo.register_backbone("test-affine", role="encoder")(
        lambda in_shape, out_features: Affine(math.prod(in_shape), out_features))
    vaezoo.register_backbone("test-affine", role="decoder")(
        lambda in_features, out_shape: Affine(in_features, math.prod(out_shape), out_shape))
    yield
    ENCODERS.remove("test-affine")
    DECODERS.remove("test-affine")


def test_elbo_of_a_tiny_model_matches_a_hand_computation(affine_parts):
    torch.manual_seed(1)
    model = vaezoo.create(tiny_config("test-affine", "test-affine", shape=(1, 2, 2), latent=2)).double()
    x = torch.tensor([[[[0.0, 1.0], [0.25, 0.9]]], [[[1.0, 0.0], [0.5, 0.1]]]], dtype=torch.float64)

    torch.manual_seed(123)
    out = model(x)
    torch.manual_seed(123)
    eps = torch.randn(2, 2, dtype=torch.float64)  # the noise the forward pass drew

    W, b = model.encoder.linear.weight, model.encoder.linear.bias
    V, c = model.decoder.linear.weight, model.decoder.linear.bias
    total_loss, total_kl, total_recon = 0.0, 0.0, 0.0
    for i in range(2):
        xi = x[i].flatten().tolist()
        h = [sum(W[j, k].item() * xi[k] for k in range(4)) + b[j].item() for j in range(4)]
        mu, logvar = h[:2], h[2:]
        z = [mu[j] + math.exp(0.5 * logvar[j]) * eps[i, j].item() for j in range(2)]
        logits = [sum(V[p, j].item() * z[j] for j in range(2)) + c[p].item() for p in range(4)]
        log_px = sum(xi[p] * math.log(1 / (1 + math.exp(-l))) + (1 - xi[p]) * math.log(1 - 1 / (1 + math.exp(-l)))
                     for p, l in enumerate(logits))
        kl = 0.5 * sum(math.exp(logvar[j]) + mu[j] ** 2 - 1 - logvar[j] for j in range(2))
        total_recon += -log_px / 2
        total_kl += kl / 2
        total_loss += (kl - log_px) / 2
        assert out.elbo[i].item() == pytest.approx(log_px - kl, rel=1e-10)
    assert out.recon.item() == pytest.approx(total_recon, rel=1e-10)
    assert out.kl.item() == pytest.approx(total_kl, rel=1e-10)
    assert out.loss.item() == pytest.approx(total_loss, rel=1e-10)


def test_loss_is_summed_over_pixels_and_averaged_over_the_batch():
    torch.manual_seed(0)
    model = vaezoo.create(tiny_config())
    x = torch.rand(4, 1, 6, 6)
    torch.manual_seed(5)
    out = model(x)
    logits = model.decoder(out.z)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 4
    torch.testing.assert_close(out.recon, bce)
    torch.testing.assert_close(out.loss, out.recon + out.kl)
    torch.testing.assert_close(-out.elbo.mean(), out.loss)


def test_beta_weights_only_the_kl():
    torch.manual_seed(0)
    model = vaezoo.create(tiny_config(objective={"name": "elbo", "beta": 4.0}))
    out = model(torch.rand(3, 1, 6, 6))
    torch.testing.assert_close(out.loss, out.recon + 4.0 * out.kl)
    torch.testing.assert_close(-out.elbo.mean(), out.recon + out.kl)  # the ELBO itself is unweighted


def test_gradients_reach_the_encoder_through_the_sample():
    torch.manual_seed(0)
    # beta = 0 leaves only the reconstruction term: the encoder can only get a gradient through z
    model = vaezoo.create(tiny_config(objective={"name": "elbo", "beta": 0.0}))
    model(torch.rand(3, 1, 6, 6)).loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_seed_conv_has_the_notebooks_parameter_count_and_layers():
    model = vaezoo.create("fashion-conv64")
    assert model.num_parameters() == 5_997_825
    enc, dec = model.encoder, model.decoder
    assert enc.conv1.weight.shape == (16, 1, 5, 5) and enc.conv2.weight.shape == (64, 16, 3, 3)
    assert enc.mu_head.weight.shape == (64, 64 * 22 * 22) and enc.logvar_head.weight.shape == (64, 64 * 22 * 22)
    assert dec.fc.weight.shape == (64 * 22 * 22, 64)
    assert dec.deconv1.weight.shape == (64, 16, 3, 3) and dec.deconv2.weight.shape == (16, 1, 5, 5)


@pytest.mark.parametrize("name", ["fashion-conv64", "fashion-conv16", "fashion-mlp16"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 20, 36)])
def test_every_zoo_backbone_takes_several_input_sizes(name, shape):
    model = vaezoo.create(name, input_shape=list(shape))
    for batch in (1, 3):
        x = torch.rand(batch, *shape)
        out = model(x)
        assert out.loss.shape == () and torch.isfinite(out.loss)
        assert out.elbo.shape == (batch,)
        assert out.z.shape == (batch, model.latent_dim)
        assert out.x_hat.shape == (batch, *shape)
        assert model.reconstruct(x).shape == (batch, *shape)
    assert model.sample(2).shape == (2, *shape)


@pytest.mark.parametrize("name,shape,words", [
    ("fashion-conv64", (1, 6, 6), "seed-conv needs images larger than 6x6"),
    ("fashion-conv16", (1, 1, 1), "shrinks to nothing"),
])
def test_too_small_inputs_give_a_clear_error(name, shape, words):
    with pytest.raises(vaezoo.ConfigError, match=words):
        vaezoo.create(name, input_shape=list(shape))


def test_conv_decoder_restores_odd_sizes():
    model = vaezoo.create(tiny_config({"name": "conv", "channels": [4, 8, 8], "kernel_size": 3, "stride": 2},
                                      {"name": "conv", "channels": [4, 8, 8], "kernel_size": 3, "stride": 2},
                                      shape=(2, 27, 13)))
    assert model.sample(1).shape == (1, 2, 27, 13)


def test_samples_and_reconstructions_are_probabilities():
    model = vaezoo.create(tiny_config())
    assert 0 <= model.sample(5).min() and model.sample(5).max() <= 1
    assert model.sample(5, mean=False).unique().tolist() in ([0.0, 1.0], [0.0], [1.0])


@pytest.mark.parametrize("variance", ["fixed", "learned", "predicted"])
def test_gaussian_likelihood(variance):
    torch.manual_seed(0)
    model = vaezoo.create(tiny_config(likelihood={"name": "gaussian", "variance": variance, "sigma": 0.5}))
    decoder_channels = model.decoder(torch.zeros(1, 3)).shape[1]
    assert decoder_channels == (2 if variance == "predicted" else 1)
    x = torch.rand(2, 1, 6, 6)
    z = model.encode(x).mean
    dist = model.decode(z)
    raw = model.decoder(z)
    mean = raw[:, :1]
    sigma = torch.exp(raw[:, 1:]) if variance == "predicted" else torch.full_like(mean, 0.5)
    expected = Normal(mean, sigma).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(dist.log_prob(x), expected)
    learned = [n for n, _ in model.named_parameters() if n.startswith("likelihood.")]
    assert learned == (["likelihood.log_sigma"] if variance == "learned" else [])


def test_elbo_and_iwae_shapes_and_order():
    torch.manual_seed(0)
    model = vaezoo.create(tiny_config())
    x = torch.rand(4, 1, 6, 6)
    assert model.elbo(x, samples=3).shape == (4,)
    assert model.iwae(x, 10, chunk_size=3).shape == (4,)
    torch.manual_seed(1)
    elbo = model.elbo(x, samples=200).mean()
    iwae = model.iwae(x, 200).mean()
    assert iwae >= elbo  # the importance-weighted bound is tighter


def test_model_follows_its_device_and_dtype():
    model = vaezoo.create(tiny_config()).double()
    out = model(torch.rand(2, 1, 6, 6, dtype=torch.float64))
    assert out.loss.dtype == torch.float64
    assert model.sample(2).dtype == torch.float64


def test_iwae_keeps_no_graph_unless_asked():
    torch.manual_seed(0)
    model = vaezoo.create(tiny_config())
    x = torch.rand(3, 1, 6, 6)
    assert not model.iwae(x, 50, chunk_size=7).requires_grad  # bounded memory for any k
    bound = model.iwae(x, 20, grad=True)
    assert bound.requires_grad
    bound.sum().backward()
    assert next(model.encoder.parameters()).grad is not None
