"""The autoregressive Bernoulli likelihood (``likelihood: pixelcnn``): causal, normalized, its
sampler draws from the distribution it scores, and a model trains, scores and saves with it."""

import itertools

import pytest
import torch

import vaezoo
from vaezoo.errors import ConfigError
from vaezoo.parts.likelihoods import AutoregressiveBernoulli


def config(shape=(1, 4, 4), **likelihood):
    return {"model": {"input_shape": list(shape), "latent_dim": 3,
                      "encoder": {"name": "mlp", "hidden": [16]}, "decoder": {"name": "mlp", "hidden": [16]},
                      "likelihood": {"name": "pixelcnn", "maps": 2, "channels": 8, "layers": 4,
                                     "kernel_size": 3, **likelihood}}}


def model_with_random_weights(shape=(1, 4, 4), seed=0, **likelihood):
    """A model whose PixelCNN has weights large enough that every dependency shows."""
    torch.manual_seed(seed)
    model = vaezoo.create(config(shape, **likelihood)).eval()
    with torch.no_grad():
        for parameter in model.likelihood.parameters():
            parameter.normal_(0.0, 0.5)
    return model


def every_image(shape):
    pixels = torch.tensor(list(itertools.product([0.0, 1.0], repeat=int(torch.tensor(shape).prod()))))
    return pixels.reshape(-1, *shape)


def test_decoder_outputs_the_maps_and_a_pixel_sees_only_the_pixels_before_it():
    model = model_with_random_weights(shape=(2, 3, 4))
    assert model.likelihood.decoder_shape() == (2 * 2, 3, 4)
    dist = model.decode(torch.randn(2, 3))
    assert isinstance(dist, AutoregressiveBernoulli) and dist.batch_shape == (2,) and dist.event_shape == (2, 3, 4)
    x = (torch.rand(2, 2, 3, 4) > 0.5).float()
    base = dist.logits(x)
    for position in range(12):
        for channel in range(2):
            changed = x.clone()
            changed[:, channel].view(2, -1)[:, position] = 1 - changed[:, channel].view(2, -1)[:, position]
            moved = (dist.logits(changed) - base).abs().amax(dim=(0, 1)).flatten()
            assert moved[: position + 1].max() == 0, f"pixel {position} leaks into itself or earlier"
            assert (moved[position + 1:] > 0).all(), f"a pixel after {position} cannot see it (a blind spot)"


@pytest.mark.parametrize("shape", [(1, 2, 2), (2, 1, 2), (1, 3, 2)])
def test_the_probabilities_of_all_binary_images_sum_to_one(shape):
    model = model_with_random_weights(shape=shape, layers=2)
    dist = model.decode(torch.randn(3, 3))
    images = every_image(shape)
    log_p = dist.log_prob(images.unsqueeze(1))  # (2^D, 3): every image under each of 3 latents
    assert log_p.shape == (len(images), 3)
    torch.testing.assert_close(log_p.double().exp().sum(0), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)


def test_drawing_pixel_by_pixel_gives_the_probabilities_that_scoring_gives():
    # the sampler runs the stack on the few rows a pixel can see; teacher forcing runs it whole
    for layers, kernel_size in [(1, 3), (3, 5), (4, 3)]:
        model = model_with_random_weights(shape=(2, 9, 5), layers=layers, kernel_size=kernel_size)
        dist = model.decode(torch.randn(3, 3))
        drawn, probs = dist._decode(greedy=False)
        torch.testing.assert_close(probs, torch.sigmoid(dist.logits(drawn)), atol=1e-6, rtol=0)
        # the mean: the probabilities along the most probable path, the same every call
        mean = dist.mean
        torch.testing.assert_close(mean, dist.mean)
        path = dist._decode(greedy=True)[0]
        assert torch.equal(path, (mean > 0.5).float())
        torch.testing.assert_close(mean, torch.sigmoid(dist.logits(path)), atol=1e-6, rtol=0)


def test_samples_follow_the_distribution_that_log_prob_scores():
    model = model_with_random_weights(shape=(1, 1, 3), layers=2)
    dist = model.decode(torch.randn(1, 3))
    images = every_image((1, 1, 3))
    exact = dist.log_prob(images.unsqueeze(1)).squeeze(1).exp()
    torch.manual_seed(1)
    drawn = dist.sample((4000,)).reshape(4000, 3)
    assert drawn.shape == (4000, 3) and set(drawn.unique().tolist()) <= {0.0, 1.0}
    codes = (drawn * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()
    frequencies = torch.bincount(codes, minlength=8).float() / 4000
    torch.testing.assert_close(frequencies, exact, atol=0.03, rtol=0)  # 4 standard errors at p = 1/2


def test_importance_weights_score_each_draw_against_the_same_image():
    model = model_with_random_weights()
    x = (torch.rand(3, 1, 4, 4) > 0.5).float()
    z = torch.randn(5, 3, 3)
    together = model.decode(z).log_prob(x)
    assert together.shape == (5, 3)
    one_by_one = torch.stack([model.decode(z[s]).log_prob(x) for s in range(5)])
    torch.testing.assert_close(together, one_by_one)
    assert model.log_weights(x, samples=4).shape == (4, 3)


def test_a_model_with_it_learns_and_loads_back_the_same(tmp_path):
    torch.manual_seed(0)
    model = vaezoo.create(config())
    x = (torch.rand(64, 1, 4, 4) > 0.5).float()
    x[:, :, :, 1::2] = x[:, :, :, ::2]  # every second pixel repeats its left neighbour
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        optimizer.zero_grad()
        loss = model(x).loss
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    # the copies cost nothing once the network sees the left neighbour: at most the 8 free pixels' 8 ln 2
    assert loss.item() < 8 * 0.6932 + 0.5 < first
    assert any(name.startswith("likelihood.layers.0.condition") for name in model.state_dict())
    model.save_pretrained(tmp_path / "ar")
    loaded = vaezoo.load(str(tmp_path / "ar"))
    z = torch.randn(2, 3)
    torch.testing.assert_close(loaded.decode(z).log_prob(x[:2]), model.eval().decode(z).log_prob(x[:2]))
    assert loaded.sample(2).shape == (2, 1, 4, 4)


def test_an_even_kernel_is_refused_with_the_field():
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        vaezoo.create(config(kernel_size=4))
