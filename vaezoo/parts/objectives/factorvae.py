"""FactorVAE (``factor-vae``): the ELBO plus a total-correlation penalty that a discriminator
estimates, the discriminator trained by its own optimizer in the same training step."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt
from torch import nn

from ...errors import UsageError
from ...ops.gaussian import DiagonalGaussian
from ...passes import ModelOutput, StepContext
from ..kinds import register_objective
from ..posteriors import FlowPosterior
from .base import DEFAULT_CONTEXT, Objective

__all__ = ["FactorVAEObjective", "permute_dims", "JOINT", "PRODUCT"]

DISCRIMINATOR = "discriminator"
JOINT, PRODUCT = 0, 1  # the discriminator's classes: z ~ q(z), and z ~ prod_j q(z_j)


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Each latent dimension of a batch (B, D) shuffled across the batch by its own permutation:
    samples of the product of the marginals prod_j q(z_j) (Kim & Mnih 2018, Algorithm 1)."""
    order = torch.rand(z.shape, device=z.device).argsort(dim=0)
    return z.gather(0, order)


class Discriminator(nn.Module):
    """An MLP from a latent vector to two logits (joint, product), leaky-ReLU between layers."""

    def __init__(self, latent_dim: int, hidden: list[int], negative_slope: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(negative_slope)]
            width = size
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@register_objective("factor-vae")
class FactorVAEObjective(Objective):
    """FactorVAE (Kim & Mnih 2018, "Disentangling by factorising"). The model's update minimizes

        loss = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) + gamma * TC,   TC ~ E_q(z) [logit_joint(z) - logit_product(z)]

    where the total correlation KL(q(z) || prod_j q(z_j)) is estimated by the density-ratio trick:
    a discriminator D tells samples of the aggregate posterior q(z) from samples of the product
    of its marginals (each dimension permuted across a batch), and log D/(1-D) is the difference
    of its two logits. The discriminator's update, after the model's in every training step,
    minimizes its cross-entropy on the batch split in two halves: z of the first half labelled
    joint, the second half's z with every dimension permuted labelled product (z drawn from q(z|x)
    without gradient to the encoder). The KL warm-up (``kl_scale``) scales KL and TC together.
    ``terms``: ``recon``, ``kl`` (the true KL, so ``elbo`` is the ELBO), ``tc`` (the estimate);
    the discriminator's update reports its ``loss`` and ``accuracy``.

    The paper's discriminator: 6 layers of 1000 units, leaky ReLU 0.2, Adam at 1e-4 with betas
    (0.5, 0.9) (``default_optimizers``); gamma 6.4 to 40 by dataset. The discriminator is a
    training part: it is in training checkpoints and out of the published weights.
    """

    default_optimizers = {DISCRIMINATOR: {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.9]}}

    def __init__(self, gamma: NonNegativeFloat = 6.4,
                 hidden: tuple[PositiveInt, ...] = (1000,) * 6,
                 negative_slope: PositiveFloat = 0.2):
        super().__init__()
        self.gamma = gamma
        self.hidden = list(hidden)
        self.negative_slope = negative_slope
        self.discriminator: Optional[Discriminator] = None  # built by bind(), once the latent size is known

    def bind(self, model) -> None:
        if len(model.latent_levels) != 1:
            raise ValueError(f"factor-vae needs one latent level; the '{model.family}' family has "
                             f"{len(model.latent_levels)}")
        if self.discriminator is None:
            self.discriminator = Discriminator(model.latent_levels[0][1], self.hidden, self.negative_slope)

    def training_parts(self) -> dict[str, nn.Module]:
        return {DISCRIMINATOR: self._bound()}

    def _bound(self) -> Discriminator:
        if self.discriminator is None:
            raise RuntimeError("the factor-vae objective is not bound to a model: build the model with vaezoo.create")
        return self.discriminator

    def tc_estimate(self, z: torch.Tensor) -> torch.Tensor:
        """Per-example log D(z) / (1 - D(z)), (B,): the density-ratio estimate of log q(z) / prod_j q(z_j)."""
        logits = self._bound()(z)
        return logits[:, JOINT] - logits[:, PRODUCT]

    def noise(self, model, x: torch.Tensor) -> torch.Tensor:
        """The reparameterization noise of the model update's one draw (a subclass may fix it)."""
        return model.draw_noise(x, 1)

    def posterior_draw(self, model, x: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        """One z ~ q(z|x) per image for the discriminator's update (a subclass may fix it)."""
        q = model.encode(x, y)
        if not isinstance(q, (DiagonalGaussian, FlowPosterior)):
            raise UsageError(f"factor-vae permutes each dimension of continuous latents; the '{model.family}' "
                             f"family's posterior is {type(q).__name__}: use a Gaussian or flow posterior")
        return q.rsample()

    def discriminator_batch(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(joint, product) samples for the discriminator from one draw of q(z|x) per image: the
        first half of the batch as it is, the second half with every dimension permuted."""
        half = z.shape[0] // 2
        return z[:half], permute_dims(z[half:2 * half])

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, self.noise(model, x), y)
        log_px, kl, z = draw.log_px[0], draw.kl()[0], draw.levels[0].z[0]
        recon, tc = -log_px.mean(), self.tc_estimate(z).mean()
        loss = recon + context.kl_scale * (kl.mean() + self.gamma * tc)
        return ModelOutput(loss=loss, terms={"recon": recon, "kl": kl.mean(), "tc": tc}, elbo=log_px - kl, z=z,
                           posterior=draw.levels[0].q, likelihood=draw.likelihood)

    def update_loss(self, name: str, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                    context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        if name != DISCRIMINATOR:
            return super().update_loss(name, model, x, y, context)
        if x.shape[0] < 2:
            raise ValueError("the factor-vae discriminator needs batches (and micro-batches) of at least 2 images")
        with torch.no_grad():  # the discriminator's update leaves the encoder alone
            z = self.posterior_draw(model, x, y)
        joint, product = self.discriminator_batch(z)
        logits = self._bound()(torch.cat([joint, product]))
        labels = torch.cat([torch.full((joint.shape[0],), JOINT), torch.full((product.shape[0],), PRODUCT)])
        labels = labels.to(logits.device)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return ModelOutput(loss=loss, terms={"accuracy": accuracy})
