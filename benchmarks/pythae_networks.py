"""A vaezoo one-level model's own encoder and decoder modules in pythae 0.1.2's wrappers, so that
pythae trains or scores the very networks vaezoo has (``peer_pythae.py``, ``iwae_nll.py --peer``).

The encoder's output is handed to pythae in the form pythae's model reads, computed so that pythae's
posterior is the one vaezoo builds from the same output: the loaded-back modules then define the
same model in both libraries, with nothing converted.
"""

from __future__ import annotations

import torch


def _gaussian(out, model):
    mu, logvar = out.chunk(2, dim=-1)
    return {"embedding": mu, "log_covariance": logvar}


def _von_mises_fisher(out, model):
    # pythae: kappa = softplus(log_concentration) + 1, vaezoo: min_concentration + softplus(.)
    if model.config.min_concentration != 1.0:
        raise ValueError("pythae's SVAE adds 1 to the concentration: compare at min_concentration 1")
    return {"embedding": out[..., :-1], "log_concentration": out[..., -1:]}


def _poincare(out, model):
    q = model.posterior_from(out)  # vaezoo's wrapped normal of this output: its location and scale
    return {"embedding": q.loc, "log_covariance": 2 * torch.log(q.scale)}


def _point(out, model):
    # a deterministic encoder's output is its code; pythae's Adversarial_AE reads a log-variance even
    # with deterministic_posterior (it multiplies its scale by 0), the other autoencoders ignore it
    return {"embedding": out, "log_covariance": torch.zeros_like(out)}


ENCODER_OUTPUTS = {"vae": _gaussian, "hamiltonian": _gaussian, "svae": _von_mises_fisher, "pvae": _poincare,
                   "ae": _point, "vqvae": _point}  # a VQ-VAE's encoder gives its grid of vectors


def pythae_networks(model, logits: bool = False):
    """(encoder, decoder) for pythae: the encoder's output in the form pythae's model of the same
    family reads it; the decoder's output as the mean of vaezoo's likelihood, which is what pythae's
    reconstruction losses take (a Bernoulli's probabilities for ``bce``, a Gaussian's mean for ``mse``),
    or with ``logits`` the Bernoulli's logits, which pythae's HVAE reads instead."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    if model.config.family not in ENCODER_OUTPUTS:
        raise ValueError(f"no pythae 0.1.2 counterpart for the '{model.config.family}' family here; "
                         f"these have one: {', '.join(ENCODER_OUTPUTS)}")
    read = ENCODER_OUTPUTS[model.config.family]
    if logits and model.config.likelihood.name != "bernoulli":
        raise ValueError(f"a decoder's logits are a Bernoulli's; this model's likelihood is '{model.config.likelihood.name}'")

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = model.encoder

        def forward(self, x):
            return ModelOutput(**read(self.net(x), model))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = model.decoder

        def forward(self, z):
            out = self.net(z)  # vaezoo's Bernoulli takes the decoder's output as its logits
            return ModelOutput(reconstruction=out if logits else model.likelihood(out).mean)

    return Encoder(), Decoder()
