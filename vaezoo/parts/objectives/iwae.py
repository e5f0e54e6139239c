"""Importance-weighted training bounds: IWAE (``iwae``, with the standard or the doubly
reparameterized gradient), MIWAE (``miwae``), CIWAE (``ciwae``) and PIWAE (``piwae``)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import PositiveInt, confloat

from ...errors import UsageError
from ...ops.bounds import logmeanexp
from ...ops.gaussian import DiagonalGaussian
from ...passes import LatentPass, ModelOutput, StepContext
from ..kinds import register_objective
from .base import DEFAULT_CONTEXT, MAIN_UPDATE, Objective

__all__ = ["IWAEObjective", "MIWAEObjective", "CIWAEObjective", "PIWAEObjective", "scaled_log_weights",
           "dreg_log_weights"]

ENCODER = "encoder"  # PIWAE's update of the inference network


def scaled_log_weights(draw: LatentPass, kl_scale) -> torch.Tensor:
    """``log p(x|z) + kl_scale * (log p(z) - log q(z|x))`` per draw, (S, B): the log-weights with
    the KL warm-up scaling the prior ratio (at ``kl_scale`` 1, :meth:`LatentPass.log_weights`)."""
    return draw.log_px + kl_scale * (draw.log_weights() - draw.log_px)


def dreg_log_weights(draw: LatentPass, kl_scale) -> torch.Tensor:
    """The log-weights with log q evaluated at the encoder's parameters detached, z left attached,
    and a hook on z that multiplies its gradient by the draw's normalized weight (Tucker, Lawson,
    Gu & Maddison 2019, "Doubly reparameterized gradient estimators for Monte Carlo objectives",
    eq. 5). Minimizing ``-logmeanexp`` of these gives the decoder and the prior the IWAE gradient
    ``sum_k w_k grad log w_k``, and the encoder the DReG gradient ``sum_k w_k^2 d log w_k / dz_k
    dz_k / dphi``, ``w_k`` the normalized importance weights: unbiased, and its signal-to-noise
    ratio grows with k where the standard estimator's shrinks (Rainforth et al. 2018).

    One diagonal Gaussian latent level: in a hierarchy or under a flow, q's parameters depend on
    z themselves, and detaching them would drop part of the path derivative."""
    level = draw.levels[0] if len(draw.levels) == 1 else None
    if level is None or level.log_q_at_draw is not None or not isinstance(level.q, DiagonalGaussian):
        kind = type(draw.levels[0].q).__name__
        raise UsageError(f"the DReG estimator (iwae with estimator: dreg) needs one diagonal Gaussian latent level "
                         f"without a flow; this model has {len(draw.levels)} level(s) of {kind}: use "
                         f"estimator: standard")
    q = level.q
    log_q = DiagonalGaussian(q.mu.detach(), q.logvar.detach()).log_prob(level.z)
    log_w = draw.log_px + kl_scale * (level.log_p() - log_q)
    if level.z.requires_grad:
        weights = torch.softmax(log_w.detach(), dim=0)  # (S, B)
        level.z.register_hook(lambda grad: grad * weights.unsqueeze(-1).to(grad.dtype))
    return log_w


def _terms(model, draw: LatentPass, y) -> dict:
    """What the importance-weighted objectives report beside the loss: ``recon`` and the KL terms
    as means over the draws, ``elbo`` their per-example ELBO, z and the likelihood of the first draw."""
    kls = draw.kl_terms()
    first = model.squeeze_draw(draw.z)
    single_draw = draw.log_px.shape[0] == 1
    return dict(terms={"recon": -draw.log_px.mean(), **{n: kl.mean() for n, kl in kls.items()}},
                elbo=(draw.log_px - sum(kls.values())).mean(dim=0), z=first, posterior=model.posterior_of(draw),
                likelihood=draw.likelihood if single_draw else (lambda: model.decode(first, y)))


@register_objective("iwae")
class IWAEObjective(Objective):
    """The importance-weighted bound as the training loss (Burda, Grosse & Salakhutdinov 2016,
    "Importance weighted autoencoders"):

        loss = -mean_b logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],  z_k ~ q(z|x)

    with ``k`` reparameterized draws per example (of every level, p and q joint over the levels
    for a hierarchy). At k = 1 it is the single-sample Monte Carlo ELBO; it tightens towards
    log p(x) as k grows. KL warm-up (``kl_scale``) scales ``log p(z_k) - log q(z_k|x)`` inside
    the weights. ``estimator: dreg`` keeps the loss and changes the encoder's gradient to the
    doubly reparameterized one (:func:`dreg_log_weights`; one Gaussian level). For logging,
    ``recon`` and the KL terms are means over the k draws, and ``elbo`` is their k-sample ELBO per
    example (so the IWAE bound, ``-loss``, is at least as large); ``z`` and ``likelihood`` are those
    of the first draw.
    """

    def __init__(self, k: PositiveInt = 5, estimator: Literal["standard", "dreg"] = "standard"):
        super().__init__()
        self.k, self.estimator = k, estimator

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, self.k), y)
        weigh = dreg_log_weights if self.estimator == "dreg" else scaled_log_weights
        bound = logmeanexp(weigh(draw, context.kl_scale))
        return ModelOutput(loss=-bound.mean(), **_terms(model, draw, y))


def miwae_bound(model, x: torch.Tensor, y, m: int, k: int, kl_scale) -> tuple[torch.Tensor, LatentPass]:
    """MIWAE(m, k) per example, (B,): the mean over m groups of each group's IWAE bound of k draws."""
    draw = model.latent_pass(x, model.draw_noise(x, m * k), y)
    log_w = scaled_log_weights(draw, kl_scale).reshape(m, k, -1)  # draws (m, k) apart
    return logmeanexp(log_w, dim=1).mean(dim=0), draw


@register_objective("miwae")
class MIWAEObjective(Objective):
    """MIWAE(M, K) (Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh 2018, "Tighter variational
    bounds are not necessarily better"): the mean of ``m`` independent IWAE bounds of ``k`` draws
    each,

        loss = -mean_b mean_m logmeanexp_k log w_{m,k},   log w = log p(x|z) + log p(z) - log q(z|x)

    M * K draws per example. At M = 1 it is IWAE(K), at K = 1 the ELBO averaged over M draws: it
    trades the bound's tightness (K) for the encoder's gradient signal (M). The paper's MNIST
    comparison holds M * K = 64 (MIWAE(8, 8) among the best). The KL warm-up scales the prior
    ratio inside the weights."""

    def __init__(self, m: PositiveInt = 8, k: PositiveInt = 8):
        super().__init__()
        self.m, self.k = m, k

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        bound, draw = miwae_bound(model, x, y, self.m, self.k, context.kl_scale)
        return ModelOutput(loss=-bound.mean(), **_terms(model, draw, y))


@register_objective("ciwae")
class CIWAEObjective(Objective):
    """CIWAE(beta) (Rainforth et al. 2018): a convex combination of the ELBO and the IWAE bound
    over the same ``k`` draws,

        loss = -mean_b [beta * mean_k log w_k + (1 - beta) * logmeanexp_k log w_k]

    beta = 1 is the k-sample ELBO, beta = 0 IWAE(k); between them the encoder keeps part of the
    ELBO's gradient signal. The paper's MNIST runs: k = 64, beta = 0.5 among the best."""

    def __init__(self, k: PositiveInt = 64, beta: confloat(ge=0.0, le=1.0) = 0.5):
        super().__init__()
        self.k, self.beta = k, beta

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, self.k), y)
        log_w = scaled_log_weights(draw, context.kl_scale)
        bound = self.beta * log_w.mean(dim=0) + (1.0 - self.beta) * logmeanexp(log_w)
        return ModelOutput(loss=-bound.mean(), **_terms(model, draw, y))


@register_objective("piwae")
class PIWAEObjective(Objective):
    """PIWAE(M, K) (Rainforth et al. 2018): the generative model and the inference network trained
    on different bounds, each by its own optimizer in one training step. The ``model`` update
    (decoder, prior, likelihood) maximizes IWAE(M * K), the tighter bound, so the model it learns
    is the IWAE's; the ``encoder`` update (the family's inference network, e.g. the `vae`
    family's encoder and flow) maximizes MIWAE(M, K), whose gradient keeps its signal as K grows.
    The loss (and the validation loss) is the IWAE(M * K) bound; ``encoder/loss`` is the MIWAE one.
    The encoder's optimizer takes ``trainer.optimizer``'s settings unless
    ``trainer.optimizers.encoder`` sets its own. The paper's MNIST runs: M = K = 8. Families whose
    inference network is apart from the generative one (`vae`, `cvae`)."""

    def __init__(self, m: PositiveInt = 8, k: PositiveInt = 8):
        super().__init__()
        self.m, self.k = m, k

    def bind(self, model) -> None:
        if not model.inference_parameters():
            raise ValueError(f"piwae trains the inference network by its own update; the '{model.family}' family's "
                             f"encoder shares its layers with the generative model: use a family with one (vae, cvae)")

    def updates(self) -> tuple[str, ...]:
        return (MAIN_UPDATE, ENCODER)

    def model_groups(self, model) -> dict[str, list]:
        return {ENCODER: model.inference_parameters()}

    def forward(self, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        draw = model.latent_pass(x, model.draw_noise(x, self.m * self.k), y)
        bound = logmeanexp(scaled_log_weights(draw, context.kl_scale))
        return ModelOutput(loss=-bound.mean(), **_terms(model, draw, y))

    def update_loss(self, name: str, model, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                    context: StepContext = DEFAULT_CONTEXT) -> ModelOutput:
        if name != ENCODER:
            return super().update_loss(name, model, x, y, context)
        bound, _ = miwae_bound(model, x, y, self.m, self.k, context.kl_scale)
        return ModelOutput(loss=-bound.mean())
