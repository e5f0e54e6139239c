"""Register your own encoder and use it from a config, like a built-in part.

    python examples/custom_backbone.py
"""

import torch
from torch import nn

import vaezoo


@vaezoo.register_backbone("residual-mlp")
class ResidualMLPEncoder(nn.Module):
    """An encoder: maps (B, *in_shape) images to (B, out_features) posterior parameters."""

    def __init__(self, in_shape, out_features, width: int = 256, blocks: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(torch.Size(in_shape).numel(), width))
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU())
                                    for _ in range(blocks))
        self.head = nn.Linear(width, out_features)

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


config = {
    "model": {
        "input_shape": [1, 28, 28],
        "latent_dim": 16,
        "encoder": {"name": "residual-mlp", "width": 128, "blocks": 3},
        "decoder": {"name": "mlp", "hidden": [256, 512]},
    }
}

model = vaezoo.create(config)
print(model)
print(f"{model.num_parameters():,} parameters")
out = model(torch.rand(8, 1, 28, 28))
print(f"loss {out.loss.item():.1f} nats = recon {out.recon.item():.1f} + KL {out.kl.item():.2f}")

try:
    vaezoo.create({**config, "model": {**config["model"], "encoder": {"name": "residual-mlp", "widht": 64}}})
except vaezoo.ConfigError as error:
    print(error)  # names the part, the field and the allowed fields
