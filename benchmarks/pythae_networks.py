"""A vaezoo one-level model's own encoder and decoder modules in pythae 0.1.2's wrappers, so that
pythae trains or scores the very networks vaezoo has (``peer_pythae.py``, ``iwae_nll.py --peer``)."""

from __future__ import annotations

import torch


def pythae_networks(model):
    """(encoder, decoder) for pythae: the encoder's output split into (mu, log-variance), the
    decoder's logits through a sigmoid (pythae's ``bce`` takes probabilities)."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = model.encoder

        def forward(self, x):
            mu, logvar = self.net(x).chunk(2, dim=-1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = model.decoder

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    return Encoder(), Decoder()
