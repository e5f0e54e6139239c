"""VAE-GAN (``vae-gan``): a VAE whose reconstruction is measured in the features of a GAN's
discriminator, the decoder also trained to fool that discriminator (Larsen, Sønderby, Larochelle &
Winther 2016, "Autoencoding beyond pixels using a learned similarity metric"; pythae's VAEGAN)."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt, confloat
from torch import nn

from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, MAIN_UPDATE, Objective

__all__ = ["VAEGAN", "ImageCritic"]

ENCODER = "encoder"
DISCRIMINATOR = "discriminator"


class ImageCritic(nn.Module):
    """An MLP from an image (flattened) to one logit, "this image is from the data", that also
    returns the activations of its hidden layer ``feature_layer`` (1-based, after the ReLU): the
    learned similarity of the VAE-GAN's reconstruction term."""

    def __init__(self, input_size: int, hidden: list[int], feature_layer: int):
        super().__init__()
        self.layers = nn.ModuleList()
        width = input_size
        for size in hidden:
            self.layers.append(nn.Sequential(nn.Linear(width, size), nn.ReLU()))
            width = size
        self.head = nn.Linear(width, 1)
        self.feature_layer = feature_layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the features of layer ``feature_layer``, the logit), each per image."""
        h = x.reshape(x.shape[0], -1)
        features = h
        for depth, layer in enumerate(self.layers, start=1):
            h = layer(h)
            if depth == self.feature_layer:
                features = h
        return features, self.head(h).squeeze(-1)


@register_objective("vae-gan")
class VAEGAN(Objective):
    """Three updates a step, each of its own optimizer (the paper's Algorithm 1, pythae's coupled
    trainer), on one draw z ~ q(z|x) and one prior draw z_p ~ p(z) per image:

    - ``encoder`` (q(z|x)): ``KL(q(z|x) || p(z)) + L_feat + pixel_weight * L_pixel``, where
      ``L_feat = ||D_l(x) - D_l(mean of p(x|z))||^2 / 2``, the squared distance of the
      discriminator's layer-``feature_layer`` features of the image and its reconstruction (the
      paper's Gaussian "likelihood" in the discriminator's feature space, identity covariance);
    - ``model`` (the decoder and the rest): ``(1 - scale) * L_feat + scale * L_gen + pixel_weight *
      L_pixel``, with the
      generator's cross-entropy ``L_gen = -log D(mean of p(x|z)) - log D(mean of p(x|z_p))``
      (the non-saturating form of the paper's ``-L_GAN``: the same fixed point, a gradient where
      the discriminator wins); pythae's weighting, ``scale`` 0.5;
    - ``discriminator``: the paper's ``L_GAN`` as a cross-entropy, the data labelled real and both
      the reconstructions and the decoded prior draws labelled fake, averaged over the three.

    ``pixel_weight`` adds that many times the decoder's pixel likelihood, ``-log p(x|z)``, to both
    the encoder's and the decoder's losses (0, the paper's: the learned similarity alone). With a
    small discriminator the feature distance is a weak signal beside the KL: on Fashion-MNIST's MLP
    with 256 features, the paper's losses alone kept 2 nats in the posterior and saturated the
    decoder's pixels after 3 epochs; the pixel term keeps the code informative and the decoder's
    distribution scorable while the discriminator sharpens it.

    ``balance`` (pythae's ``equilibrium`` 0.68 and ``margin`` 0.4, from the paper's code): where
    the discriminator's cross-entropy on the data or on the prior's images drops below
    ``equilibrium - margin`` it is winning and its update is held; above ``equilibrium + margin``
    it is losing and the decoder's update is held; never both. A held update's loss carries no
    graph and its optimizer steps nothing (``terms['held']`` is 1 there).

    The decoder is not trained on its likelihood: ``recon`` and ``elbo`` report the configured
    likelihood's -log p(x|z) and ELBO all the same, so that the model is selected on validation
    and scored by the bounds of its decoder's distribution. The discriminator is a training part
    (in training checkpoints, out of the published weights). The KL warm-up (``kl_scale``) scales
    the KL."""

    def __init__(self, scale: confloat(ge=0.0, le=1.0) = 0.5, hidden: tuple[PositiveInt, ...] = (512, 256),
                 feature_layer: PositiveInt = 2, balance: bool = True, equilibrium: PositiveFloat = 0.68,
                 margin: NonNegativeFloat = 0.4, pixel_weight: NonNegativeFloat = 0.0):
        super().__init__()
        if feature_layer > len(hidden):
            raise ValueError(f"feature_layer ({feature_layer}) is deeper than the discriminator's {len(hidden)} "
                             f"hidden layer(s) {list(hidden)}: take one of 1..{len(hidden)}")
        self.scale, self.hidden, self.feature_layer = scale, list(hidden), feature_layer
        self.balance, self.equilibrium, self.margin = balance, equilibrium, margin
        self.pixel_weight = pixel_weight
        self.discriminator: Optional[ImageCritic] = None  # built by bind(), once the image size is known

    def bind(self, model) -> None:
        if not model.inference_parameters():
            raise ValueError(f"vae-gan trains the encoder by its own update; the '{model.family}' family's encoder "
                             f"shares its layers with the generative model: use a family with one (vae, cvae)")
        if self.discriminator is None:
            self.discriminator = ImageCritic(math.prod(model.input_shape), self.hidden, self.feature_layer)

    def training_parts(self) -> dict[str, nn.Module]:
        return {DISCRIMINATOR: self._bound()}

    def model_groups(self, model) -> dict[str, list[nn.Parameter]]:
        return {ENCODER: model.inference_parameters()}

    def updates(self) -> tuple[str, ...]:
        return (MAIN_UPDATE, ENCODER, DISCRIMINATOR)

    def _bound(self) -> ImageCritic:
        if self.discriminator is None:
            raise RuntimeError("the vae-gan objective is not bound to a model: build the model with vaezoo.create")
        return self.discriminator

    def _held(self, real_bce: torch.Tensor, fake_bce: torch.Tensor, update: str) -> bool:
        """Whether ``update`` (``model``: the decoder, or ``discriminator``) sits this step out."""
        if not self.balance:
            return False
        low, high = self.equilibrium - self.margin, self.equilibrium + self.margin
        winning = bool(real_bce < low) or bool(fake_bce < low)
        losing = bool(real_bce > high) or bool(fake_bce > high)
        if winning and losing:  # never both held
            return False
        return losing if update == MAIN_UPDATE else winning

    def _pass(self, model, x: torch.Tensor, y: Optional[torch.Tensor]):
        """The draw z ~ q(z|x), the feature term per image, the logits of the data and the reconstructions."""
        draw = model.latent_pass(x, model.draw_noise(x, 1), y)
        reconstruction = draw.likelihood.mean.reshape(x.shape[0], -1)
        real_features, real_logit = self._bound()(x)
        recon_features, recon_logit = self._bound()(reconstruction)
        feature = 0.5 * (real_features - recon_features).pow(2).sum(-1)
        return draw, feature, real_logit, recon_logit

    def _prior_images(self, model, n: int, y: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        z = model.sample_latents(n, y)
        return model.decode(z, y).mean.reshape(n, -1).to(like.dtype)

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw, feature, real_logit, recon_logit = self._pass(model, x, y)
        log_px, kl = draw.log_px[0], draw.kl()[0]
        _, prior_logit = self._bound()(self._prior_images(model, x.shape[0], y, x))
        generator = (F.softplus(-recon_logit) + F.softplus(-prior_logit)).mean()
        loss = (1 - self.scale) * feature.mean() + self.scale * generator - self.pixel_weight * log_px.mean()
        real_bce, fake_bce = F.softplus(-real_logit).mean(), F.softplus(prior_logit).mean()
        held = self._held(real_bce.detach(), fake_bce.detach(), MAIN_UPDATE)
        terms = {"recon": -log_px.mean(), "kl": kl.mean(), "feature": feature.mean(), "generator": generator,
                 "held": torch.tensor(float(held), device=x.device)}
        return ModelOutput(loss=loss.detach() if held else loss, terms=terms, elbo=log_px - kl,
                           z=model.squeeze_draw(draw.z), posterior=model.posterior_of(draw),
                           likelihood=draw.likelihood)

    def update_loss(self, name: str, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                    context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        if name == ENCODER:
            draw, feature, _, _ = self._pass(model, x, y)
            kl = draw.kl()[0]
            loss = context.kl_scale * kl.mean() + feature.mean() - self.pixel_weight * draw.log_px[0].mean()
            return ModelOutput(loss=loss, terms={"kl": kl.mean(), "feature": feature.mean()})
        if name != DISCRIMINATOR:
            return super().update_loss(name, model, x, y, context)
        with torch.no_grad():  # the discriminator's update leaves the encoder and decoder alone
            reconstruction = model.latent_pass(x, model.draw_noise(x, 1), y).likelihood.mean
            fakes = torch.cat([reconstruction.reshape(x.shape[0], -1).to(x.dtype),
                               self._prior_images(model, x.shape[0], y, x)])
        _, real_logit = self._bound()(x)
        _, fake_logit = self._bound()(fakes)
        real_bce = F.softplus(-real_logit)
        recon_bce, prior_bce = F.softplus(fake_logit).chunk(2)
        loss = (real_bce.mean() + recon_bce.mean() + prior_bce.mean()) / 3
        held = self._held(real_bce.mean().detach(), prior_bce.mean().detach(), DISCRIMINATOR)
        accuracy = torch.cat([(real_logit > 0), (fake_logit < 0)]).float().mean()
        return ModelOutput(loss=loss.detach() if held else loss,
                           terms={"accuracy": accuracy, "held": torch.tensor(float(held), device=x.device)})
