"""Built-in backbones; importing this package registers them."""

from . import conv, mlp, seed_conv  # noqa: F401
