"""Built-in backbones; importing this package registers them."""

from . import conv, gated, linear, mlp, resnet, seed_conv, timm_encoder  # noqa: F401
