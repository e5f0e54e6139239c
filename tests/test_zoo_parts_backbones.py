"""ResNet and timm backbones across input sizes, their errors, and the issue's example YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vaezoo
from vaezoo.config import ConfigError
from vaezoo.schemas import ExperimentConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my-vamp.yaml"


def config(shape, encoder, decoder="mlp", latent=4, **model):
    return {"model": {"input_shape": list(shape), "latent_dim": latent, "encoder": encoder, "decoder": decoder,
                      **model}}


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (2, 20, 13)])
def test_resnet_encoder_and_decoder_fit_any_input_size(shape):
    torch.manual_seed(0)
    resnet = {"name": "resnet", "channels": [8, 16, 16], "blocks_per_stage": 2}
    model = vaezoo.create(config(shape, resnet, resnet, likelihood={"name": "gaussian", "variance": "predicted"}))
    x = torch.rand(2, *shape)
    assert model.encoder(x).shape == (2, 8)
    decoded = model.decoder(torch.randn(2, 4))
    assert decoded.shape == (2, 2 * shape[0], *shape[1:])  # predicted variance: two maps per channel
    out = model(x)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.x_hat.shape == (2, *shape)
    # two stride-2 blocks per stage counted right: the first block of each stage downsamples
    assert sum(b.resample == "down" for b in model.encoder.blocks if hasattr(b, "resample")) == 3


def test_resnet_rejects_an_input_too_small_for_its_stages():
    resnet = {"name": "resnet", "channels": [8, 8, 8, 8]}
    with pytest.raises(ConfigError) as info:
        vaezoo.create(config((1, 5, 5), resnet))
    message = str(info.value)
    assert "model.encoder" in message and "too small for 4 stride-2 stages" in message
    assert "5x5 -> 3x3 -> 2x2 -> 1x1" in message and "at most 3 entries" in message
    with pytest.raises(ConfigError, match="model.decoder.*too small"):
        vaezoo.create(config((1, 5, 5), "mlp", resnet))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_timm_encoder_reads_channels_from_feature_info(shape):
    torch.manual_seed(0)
    model = vaezoo.create(config(shape, {"name": "timm", "model": "resnet18", "out_index": -1}))
    encoder = model.encoder
    assert encoder.channels == 512 and encoder.head.in_features == 512
    assert encoder.features.conv1.in_channels == shape[0]  # in_chans follows the image
    x = torch.rand(3, *shape)
    assert encoder(x).shape == (3, 8)
    out = model(x)
    out.loss.backward()
    assert encoder.features.conv1.weight.grad is not None
    # an earlier level, flattened: layer2 of resnet18 has 128 channels at stride 8
    flat = vaezoo.create(config(shape, {"name": "timm", "model": "resnet18", "out_index": 2, "pool": "flatten"}))
    side = -(-shape[1] // 8)
    assert flat.encoder.channels == 128 and flat.encoder.head.in_features == 128 * side * side
    assert not hasattr(flat.encoder.features, "layer3")  # stops at the chosen level: no unused weights
    assert flat.encoder(x).shape == (3, 8)


def test_timm_encoder_freezes_stages_after_the_chosen_level():
    # timm's EfficientNetFeatures keeps every block whatever out_indices says; the blocks after
    # level 1 never get a gradient, which DDP (find_unused_parameters=False) would reject
    model = vaezoo.create(config((1, 28, 28), {"name": "timm", "model": "efficientnet_b0", "out_index": 1}))
    encoder = model.encoder
    assert encoder.unused_parameters and all(n.startswith("blocks.") for n in encoder.unused_parameters)
    model(torch.rand(2, 1, 28, 28)).loss.backward()
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)


def test_timm_encoder_bad_out_index_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        vaezoo.create(config((1, 28, 28), {"name": "timm", "model": "resnet18", "out_index": 7}))
    message = str(info.value)
    assert "model.encoder" in message and "out_index 7 is out of range" in message
    assert "5 levels" in message and "4 (or -1): 512 channels, stride 32" in message


def test_timm_encoder_unknown_model_suggests_close_names():
    with pytest.raises(ConfigError) as info:
        vaezoo.create(config((1, 28, 28), {"name": "timm", "model": "resnet181"}))
    message = str(info.value)
    assert "unknown timm model 'resnet181'" in message and "resnet18" in message.split("Close names:")[1]


def test_timm_encoder_input_too_small_is_a_config_error():
    # convnext's last downsampling is a 2x2 stride-2 conv: a 28x28 image is 1x1 by then
    with pytest.raises(ConfigError) as info:
        vaezoo.create(config((1, 28, 28), {"name": "timm", "model": "convnext_atto"}))
    message = str(info.value)
    assert "cannot take a 1x28x28 input" in message and "stride 32" in message
    assert "earlier out_index" in message
    # the same model at an earlier level takes it
    model = vaezoo.create(config((1, 28, 28), {"name": "timm", "model": "convnext_atto", "out_index": -2}))
    assert model.encoder(torch.rand(2, 1, 28, 28)).shape == (2, 8)


def test_the_issue_example_yaml_validates_builds_and_trains():
    experiment = ExperimentConfig.model_validate(__import__("yaml").safe_load(EXAMPLE.read_text()))
    assert experiment.model.prior.params["pseudo_inputs"] == 500
    model = vaezoo.create(str(EXAMPLE))  # as written: 500 pseudo-inputs of shape 1x28x28
    assert model.prior.pseudo_inputs.shape == (500, 1, 28, 28)
    assert model.likelihood.decoder_shape() == (15, 28, 28)  # 3 parameters x 5 mixtures
    # A training step runs the encoder on every pseudo-input; 500 of them through resnet18 take
    # tens of seconds on two shared cores, so the step runs with 8, otherwise the same model.
    torch.manual_seed(0)
    small = vaezoo.create(str(EXAMPLE), **{"prior.pseudo_inputs": 8})
    x = torch.randint(0, 256, (2, 1, 28, 28)) / 255
    out = small(x)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.loss > 0
    assert small.prior.pseudo_inputs.grad.abs().sum() > 0
    assert small.encoder.features.conv1.weight.grad.abs().sum() > 0
    assert small.sample(2).shape == (2, 1, 28, 28)
