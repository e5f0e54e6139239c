"""vaezoo's VampPrior and discriminators in and out of pythae 0.1.2's ``VAMP``, ``Adversarial_AE`` and
``FactorVAE``, so that both libraries start from the same weights and vaezoo scores what pythae
trained (``peer_pythae.py``).

- The VampPrior: pythae makes its K pseudo-inputs as hardtanh(W e_k + b), a linear layer applied to
  the K unit vectors; vaezoo keeps them as hardtanh(u_k). u_k = W[:, k] + b both ways, exactly; the
  layer starts with b = 0, so pythae starts from vaezoo's pseudo-inputs (its training then moves a
  bias shared by all K, which vaezoo does not have: the docs table's note says so).
- The adversarial autoencoder's critic: pythae takes a custom discriminator whose output is the
  probability "drawn from the prior"; it gets vaezoo's own critic module behind a sigmoid.
- FactorVAE's discriminator: pythae builds its own (five layers of 1000 units, leaky ReLU 0.2, two
  logits: joint, product) and takes no other; vaezoo's with ``hidden: [1000] * 5`` is the same
  network, layer for layer, and its weights are copied in.
"""

from __future__ import annotations

import torch

from vaezoo.parts.priors import VampPrior


@torch.no_grad()
def vamp_to_pythae(prior: VampPrior, peer) -> None:
    """pythae's pseudo-input layer set to give vaezoo's pseudo-inputs: W[:, k] = u_k, b = 0."""
    layer = peer.pseudo_inputs[0]
    layer.weight.copy_(prior.pseudo_inputs.flatten(1).T)
    layer.bias.zero_()


@torch.no_grad()
def vamp_from_pythae(peer, prior: VampPrior) -> None:
    """vaezoo's pseudo-inputs set to pythae's, before the hard tanh both apply: u_k = W[:, k] + b."""
    layer = peer.pseudo_inputs[0]
    prior.pseudo_inputs.copy_((layer.weight.T + layer.bias).reshape(prior.pseudo_inputs.shape))


def critic_for_pythae(critic: torch.nn.Module):
    """vaezoo's adversarial-autoencoder critic (a logit, "drawn from the prior") as pythae's
    discriminator, which outputs the probability."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDiscriminator

    class Critic(BaseDiscriminator):
        def __init__(self):
            super().__init__()
            self.net = critic

        def forward(self, z):
            return ModelOutput(embedding=torch.sigmoid(self.net(z)).unsqueeze(-1))

    return Critic()


@torch.no_grad()
def factor_discriminator_to_pythae(discriminator: torch.nn.Module, peer) -> None:
    """pythae's FactorVAE discriminator set to vaezoo's; the same layers in the same order, or an error."""
    theirs, ours = peer.discriminator.layers.state_dict(), discriminator.net.state_dict()
    shapes = {name: tuple(t.shape) for name, t in ours.items()}
    if shapes != {name: tuple(t.shape) for name, t in theirs.items()}:
        raise ValueError("pythae's FactorVAE discriminator has five hidden layers of 1000 units: give vaezoo's "
                         "factor-vae objective hidden: [1000, 1000, 1000, 1000, 1000]")
    peer.discriminator.layers.load_state_dict(ours)
