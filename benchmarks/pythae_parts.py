"""vaezoo's VampPrior and discriminators in and out of pythae 0.1.2's ``VAMP``, ``Adversarial_AE``,
``VAEGAN``, ``FactorVAE`` and ``VQVAE``, so that both libraries start from the same weights and vaezoo scores what pythae
trained (``peer_pythae.py``).

- The VampPrior: pythae makes its K pseudo-inputs as hardtanh(W e_k + b), a linear layer applied to
  the K unit vectors; vaezoo keeps them as hardtanh(u_k). u_k = W[:, k] + b both ways, exactly; the
  layer starts with b = 0, so pythae starts from vaezoo's pseudo-inputs (its training then moves a
  bias shared by all K, which vaezoo does not have: the docs table's note says so).
- The adversarial autoencoder's critic: pythae takes a custom discriminator whose output is the
  probability "drawn from the prior"; it gets vaezoo's own critic module behind a sigmoid.
- The VAE-GAN's discriminator: pythae takes a custom one that gives its hidden layers' activations by
  depth and the probability "from the data"; it gets vaezoo's own ``ImageCritic``.
- The VQ-VAE's EMA codebook: the codes, their EMA sums and counts, buffer for buffer.
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


def image_critic_for_pythae(critic: torch.nn.Module):
    """vaezoo's VAE-GAN discriminator as pythae's: the probability "from the data", and the activations
    of the hidden layers pythae asks for by depth (``output_layer_levels``, 1-based, as vaezoo's
    ``feature_layer``)."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDiscriminator

    class ImageCritic(BaseDiscriminator):
        def __init__(self):
            super().__init__()
            self.net = critic
            self.depth = len(critic.layers) + 1  # the hidden layers and the head

        def forward(self, x, output_layer_levels=None):
            output, h = ModelOutput(), x.reshape(x.shape[0], -1)
            for depth, layer in enumerate(self.net.layers, start=1):
                h = layer(h)
                if output_layer_levels and depth in output_layer_levels:
                    output[f"embedding_layer_{depth}"] = h
            output["embedding"] = torch.sigmoid(self.net.head(h)).unsqueeze(-1)
            return output

    return ImageCritic()


# the EMA codebook's buffers: vaezoo's vq-ema name, pythae's QuantizerEMA name
_CODEBOOK = (("embedding", "embeddings"), ("embed_sum", "ema_embed"), ("cluster_size", "cluster_size"))


@torch.no_grad()
def codebook_to_pythae(quantizer, peer) -> None:
    """pythae's EMA codebook (``use_ema``) set to vaezoo's: the codes, their EMA sums and counts."""
    for ours, theirs in _CODEBOOK:
        getattr(peer.quantizer, theirs).copy_(getattr(quantizer, ours))


@torch.no_grad()
def codebook_from_pythae(peer, quantizer) -> None:
    """vaezoo's EMA codebook set to pythae's trained one."""
    for ours, theirs in _CODEBOOK:
        getattr(quantizer, ours).copy_(getattr(peer.quantizer, theirs))
