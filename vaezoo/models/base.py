"""The contract every model family keeps, and what it gives them all.

A family implements a handful of methods over its latent levels (bottom first):

- ``latent_levels``: ``[(name, dim), ...]``, the latent vector sizes;
- ``latent_pass(x, eps, y=None, posterior=None)``: S reparameterized draws of every level from
  standard-normal ``eps`` of shape (S, B, sum of dims), as a :class:`~vaezoo.passes.LatentPass`;
- ``encode(x, y=None)``: q(z|x), a ``DiagonalGaussian`` for one level, else a
  :class:`~vaezoo.passes.HierarchicalPosterior`; ``decode(z, y=None)``: p(x|z);
- ``sample_latents(n, y=None)``: z from the prior; ``posterior_means(x, y=None)``: ``{level: mean}``
  along the mean path; ``decode_latents(z, y=None)`` decodes such a ``{level: value}`` map.

From these the base gives every family the same API: ``forward`` (the configured objective),
``sample``, ``reconstruct``, ``elbo``, ``iwae``, ``log_weights``, ``refine`` (one-level families),
``save_pretrained`` and ``push_to_hub`` (from :class:`~vaezoo.layout.HubMixin`).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, ClassVar, Iterator, Optional, Union

import torch
from torch import nn
from torch.distributions import Distribution

from ..errors import UsageError
from ..fastpath import plan_scoring
from ..layout.mixin import HubMixin
from ..ops.gaussian import DiagonalGaussian
from ..parts.objectives.base import MAIN_UPDATE
from ..passes import HierarchicalPosterior, LatentPass, ModelOutput, StepContext
from ..schemas import ModelConfig
from ..ops.noise import IWAE_STREAM, NoiseSource
from .bounds import elbo_terms, iwae_bound, planned_iwae_bound
from .inputs import check_count, check_finite, check_images, check_labels, check_layout
from .refine import refine

__all__ = ["BaseVAE", "CodeLatents", "PointLatents", "PartBuildError", "Latent"]

Latent = Union[torch.Tensor, dict[str, torch.Tensor]]
_TRAINING_CONTEXT = StepContext()


class PartBuildError(ValueError):
    """A part rejected the shapes it was given; ``field`` names it (``encoder``, ...)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class CodeLatents:
    """The capability of a family whose latent is a grid of discrete codes (the vqvae family): a
    deterministic encoder, no density over latents of its own; evaluated by its codes
    (``evaluate_codes``) and sampled through a fitted code prior. Consumers ask
    ``isinstance(model, CodeLatents)``, never a string tag."""


class PointLatents:
    """The capability of a family whose encoder is deterministic (a point posterior: AE, WAE, RAE):
    it has no density q(z|x), so no ELBO and no importance-weighted bound; it samples through its
    prior (or a fitted one) and is scored by its samples, codes and reconstructions."""


class BaseVAE(HubMixin, nn.Module):
    """Base class of the model families (see the module docstring for the contract)."""

    family: ClassVar[str] = ""
    conditional: ClassVar[bool] = False  # True: encode, decode and sample take labels y
    # True: latent_pass takes a given posterior (one level, q not depending on any draw), so a
    # bound over many chunks of samples encodes each image once
    takes_posterior: ClassVar[bool] = False
    # the attributes holding q(z|x)'s own modules, apart from the generative model (see inference_parameters)
    inference_modules: ClassVar[tuple[str, ...]] = ()
    latent_levels: list[tuple[str, int]]

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.input_shape)
        self.likelihood = self._build("likelihood", self.input_shape)
        self.objective = self._build("objective")
        works_on = getattr(self.objective, "latents", "gaussian")
        mine = "codes" if isinstance(self, CodeLatents) else "points" if isinstance(self, PointLatents) else "gaussian"
        if works_on != mine:
            fitting = {"codes": "vq", "points": "ae or wae-mmd", "gaussian": "elbo, iwae, beta-tcvae or factor-vae"}
            raise PartBuildError("objective", f"objective '{config.objective.name}' works on {works_on} latents but "
                                              f"the '{self.family}' family's are {mine}; use {fitting[mine]}")

    # -- building ---------------------------------------------------------------------

    def _build(self, field: str, *fixed) -> nn.Module:
        spec = getattr(self.config, field)
        try:
            return spec.build(*fixed)
        except ValueError as exc:
            raise PartBuildError(field, f"{spec.registry.kind} '{spec.name}': {exc}") from exc

    def posterior_flows(self) -> Optional[nn.ModuleDict]:
        """One flow per latent level from ``model.posterior`` (a flow over each level's Gaussian q),
        None without one. The VampPrior is refused with it: it mixes q(z|u_k) at any z, and a flow's
        density is known at its own draws only."""
        if getattr(self.config, "posterior", None) is None:
            return None
        if self.config.prior.name == "vamp":
            raise PartBuildError("prior", "prior 'vamp' mixes the posteriors q(z|u_k) at any z, and a flow "
                                          "posterior's density is known at its own draws only: use another prior, "
                                          "or no model.posterior")
        return nn.ModuleDict({name: self._build("posterior", dim) for name, dim in self.latent_levels})

    def bind_prior(self) -> None:
        """Give the prior the assembled model (the VampPrior needs the encoder and the input
        shape); call it again after replacing ``model.prior``."""
        bind = getattr(self.prior, "bind", None)
        if bind is not None:
            try:
                bind(self)
            except ValueError as exc:
                raise PartBuildError("prior", f"prior '{self.config.prior.name}': {exc}") from exc

    # -- the family's part of the contract ----------------------------------------------

    def latent_pass(self, x: torch.Tensor, eps: torch.Tensor, y: Optional[torch.Tensor] = None,
                    posterior: Any = None) -> LatentPass:
        raise NotImplementedError

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None):
        raise NotImplementedError

    def decode(self, z: Latent, y: Optional[torch.Tensor] = None) -> Distribution:
        raise NotImplementedError

    def sample_latents(self, n: int, y: Optional[torch.Tensor] = None) -> Latent:
        raise NotImplementedError

    def posterior_means(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def decode_latents(self, z: dict[str, torch.Tensor], y: Optional[torch.Tensor] = None) -> Distribution:
        """p(x|z) for ``{level: value}``; a one-level family decodes its only level."""
        return self.decode(z[self.latent_levels[0][0]] if len(self.latent_levels) == 1 else z, y)

    # -- shared machinery -------------------------------------------------------------

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Standard-normal numbers one draw of every level takes per example."""
        return (sum(dim for _, dim in self.latent_levels),)

    def level_dims(self) -> dict[str, int]:
        return dict(self.latent_levels)

    def split_noise(self, eps: torch.Tensor) -> dict[str, torch.Tensor]:
        """``eps`` (S, B, sum of dims) as ``{level: (S, B, dim)}``, levels in ``latent_levels`` order."""
        names, dims = zip(*self.latent_levels)
        return dict(zip(names, eps.split(list(dims), dim=-1)))

    def draw_noise(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        return torch.randn(samples, x.shape[0], *self.noise_shape, device=x.device, dtype=x.dtype)

    def decoder_maps(self, h: torch.Tensor) -> torch.Tensor:
        """The decoder backbone's output for ``h``. A likelihood that needs its parameters in
        float32 (``float32_params``: the discretized logistic, whose means must resolve 1/255
        levels that bf16 rounds away) gets the decoder run in float32, autocast off. Inside
        :meth:`decoding_with`, the decoder given there runs instead."""
        scoring = self.__dict__.get("_scoring_decoder")
        if scoring is not None:
            return scoring(h)
        if getattr(self.likelihood, "float32_params", False) and torch.is_autocast_enabled(h.device.type):
            with torch.autocast(h.device.type, enabled=False):
                return self.decoder(h.float())
        return self.decoder(h)

    @contextmanager
    def decoding_with(self, decoder: Optional[Callable[[torch.Tensor], torch.Tensor]]) -> Iterator[None]:
        """Within the block, ``decoder`` replaces the decoder backbone (a
        :class:`~vaezoo.fastpath.FastDecoder` of a scoring plan); None keeps the model's own."""
        previous = self.__dict__.get("_scoring_decoder")
        self.__dict__["_scoring_decoder"] = decoder
        try:
            yield
        finally:
            self.__dict__["_scoring_decoder"] = previous

    def likelihood_at(self, h: torch.Tensor) -> Distribution:
        """p(x | h) for decoder inputs of any batch shape (..., features): the decoder runs on the
        flattened batch and the distribution's batch shape follows h's."""
        out = self.decoder_maps(h.reshape(-1, h.shape[-1]))
        return self.likelihood(out.reshape(*h.shape[:-1], *out.shape[1:]))

    def _score(self, decode, z: Latent, x: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        """p(x|z) and log p(x|z), (S, B), of an (S, B, ...) draw; a single draw decodes as a
        (B,) batch, so that ``out.likelihood`` and ``out.x_hat`` have the batch's shape."""
        first = _first_draw(z)
        if _draws(z) == 1:
            likelihood = decode(first)
            return likelihood, likelihood.log_prob(x).unsqueeze(0)
        likelihood = decode(z)
        return likelihood, likelihood.log_prob(x)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                context: Optional[StepContext] = None, update: str = MAIN_UPDATE) -> ModelOutput:
        """The configured objective on a batch: ``.loss`` and named ``.terms`` (nats per image).
        Called without ``context`` (by a user) it checks ``x`` first; the training loop, which
        passes one, feeds images it has checked at load, and pays nothing. ``update``: the loss
        of that update of the training step (see :meth:`training_updates`); the training loop
        asks for each through ``forward``, so that DDP sees every one."""
        if context is None:
            x = self.check_input(x)
            y = self.check_labels(y, x.shape[0])
        objective = self.objective if update == MAIN_UPDATE else partial(self.objective.update_loss, update)
        if torch.compiler.is_compiling():  # a compiled step checks nothing (see check_input); no flag to trace
            return objective(self, x, y, context or _TRAINING_CONTEXT)
        trusted, self._inputs_checked = getattr(self, "_inputs_checked", False), True
        try:  # x is checked (here, or by the loader at load): the encode calls inside need not read it again
            return objective(self, x, y, context or _TRAINING_CONTEXT)
        finally:
            self._inputs_checked = trusted

    # -- the training contract ----------------------------------------------------------
    # What the shared training loop asks of a family (docs/families.md): the updates of one
    # training step, in order, each of one named optimizer over its parameter group. By default
    # the objective decides (one update, ``model``, over every parameter); a family may override.

    def training_parts(self) -> dict[str, nn.Module]:
        """Networks trained beside the model but not part of it (a FactorVAE's discriminator):
        in training checkpoints, never in the published weights."""
        return self.objective.training_parts()

    def training_updates(self) -> tuple[str, ...]:
        """The optimizers one training step updates, in order."""
        return self.objective.updates()

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{optimizer name: its parameters}``, one group per training update: each training
        part's own, and every other trainable parameter under ``model`` (an objective may freeze
        some: the code prior's stage trains the prior alone)."""
        parts = {name: list(part.parameters()) for name, part in self.training_parts().items()}
        parts.update(self.objective.model_groups(self))
        held = {id(p) for params in parts.values() for p in params}
        return {MAIN_UPDATE: [p for p in self.parameters() if id(p) not in held and p.requires_grad], **parts}

    def inference_parameters(self) -> list[nn.Parameter]:
        """The parameters of q(z|x) alone (:attr:`inference_modules`): what an objective that trains the
        inference network by its own update hands to that update; empty where the family's encoder
        and decoder share layers."""
        modules = [getattr(self, name, None) for name in self.inference_modules]
        return [p for module in modules if module is not None for p in module.parameters()]

    def training_only_keys(self) -> set[str]:
        """The state-dict names of the training parts: left out of ``published_state_dict``."""
        parts = {id(part) for part in self.training_parts().values()}
        prefixes = tuple(f"{name}." for name, module in self.named_modules() if id(module) in parts)
        return {key for key in self.state_dict() if prefixes and key.startswith(prefixes)}

    def published_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a user loads: the state dict without the training parts."""
        held = self.training_only_keys()
        return {key: value for key, value in self.state_dict().items() if key not in held}

    def check_input(self, x, values: Optional[bool] = True, what: str = "x") -> torch.Tensor:
        """``x`` as this model takes it (see :mod:`vaezoo.models.inputs`): a float batch of
        ``input_shape`` images, uint8 0..255 divided by 255; with ``values``, also finite and in
        the range the likelihood scores. A UsageError names what was expected otherwise.

        ``values=None`` (``encode``, which scores nothing, so no range binds it): finite pixels too,
        unless the call comes from inside ``forward`` (a training or evaluation step, whose images
        are checked already: it reads no value back) or from a compiled graph."""
        dtype = next(self.parameters()).dtype
        if values is None:
            x = check_layout(x, self.input_shape, dtype, what)
            if not getattr(self, "_inputs_checked", False) and not torch.compiler.is_compiling():
                check_finite(x, what)
            return x
        if not values:
            return check_layout(x, self.input_shape, dtype, what)
        return check_images(x, self.input_shape, dtype, self.likelihood.value_range, self.config.likelihood.name,
                            what)

    def squeeze_draw(self, z: Latent) -> Latent:
        return _first_draw(z)

    def posterior_of(self, draw: LatentPass):
        """The posterior object of a pass: the level's q, or every level's for a hierarchy."""
        if len(draw.levels) == 1:
            return draw.levels[0].q
        return HierarchicalPosterior({level.name: level.q for level in draw.levels})

    # -- what users do with a trained model -------------------------------------------

    @property
    def can_sample(self) -> bool:
        """Whether ``sample`` has a prior to draw from (a VQ-VAE needs its fitted code prior)."""
        return True

    def _labels(self, n: int, y, device: torch.device) -> Optional[torch.Tensor]:
        """Labels for ``n`` samples of a conditional model: as given (an int means all of that class),
        else drawn uniformly; unconditional families take none."""
        if self.conditional and y is None:
            return torch.randint(self.config.num_classes, (n,), device=device)
        return self.check_labels(y, n)

    def check_labels(self, y, n: int) -> Optional[torch.Tensor]:
        """``y`` as this model takes it (see :func:`~vaezoo.models.inputs.check_labels`): whole
        class numbers in range for a conditional family, nothing for the others."""
        classes = self.config.num_classes if self.conditional else None
        return check_labels(y, n, classes, self.family, next(self.parameters()).device)

    @torch.no_grad()
    def sample(self, n: int, mean: bool = True, y=None) -> torch.Tensor:
        """``n`` images: z ~ p(z) (given labels ``y`` for a conditional model), then the mean of
        p(x|z) (or a draw from it, ``mean=False``)."""
        n = check_count(n, "n (the number of samples)")
        device = next(self.parameters()).device
        labels = self._labels(n, y, device)
        likelihood = self.decode(self.sample_latents(n, labels), labels)
        return likelihood.mean if mean else likelihood.sample()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The mean of p(x|z) at the posterior mean of every level."""
        x = self.check_input(x)
        y = self.check_labels(y, x.shape[0])
        return self.decode_latents(self.posterior_means(x, y), y).mean

    def log_weights(self, x: torch.Tensor, samples: int, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Importance log-weights ``log p(x|z_s) + log p(z_s) - log q(z_s|x)``, shape (samples, B)."""
        x, samples = self.check_input(x), check_count(samples, "samples")
        y = self.check_labels(y, x.shape[0])
        return self.latent_pass(x, self.draw_noise(x, samples), y).log_weights()

    def elbo(self, x: torch.Tensor, samples: int = 1, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-example ELBO in nats, shape (B,), averaged over ``samples`` draws of z.

        Each level's KL is closed-form where its prior allows (Gaussian given the levels above,
        or N(0, I)), else Monte Carlo on the same draws.
        """
        x, samples = self.check_input(x), check_count(samples, "samples")
        y = self.check_labels(y, x.shape[0])
        log_px, kls = elbo_terms(self, x, self.draw_noise(x, samples), y)
        return log_px - sum(kls.values())

    def iwae(self, x: torch.Tensor, k: int, chunk_size: Optional[int] = None, y: Optional[torch.Tensor] = None,
             seed: Optional[int] = None, grad: bool = False, precision: str = "auto") -> torch.Tensor:
        """Per-example importance-weighted bound (Burda et al. 2016) with ``k`` samples, shape (B,).

        ``log p(x) >= logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)]``; it is the ELBO at
        k = 1 and tends to log p(x) as k grows. Samples are decoded in chunks without autograd, so
        memory stays bounded for any k, along the scoring plan of :mod:`vaezoo.fastpath`:
        ``precision="auto"`` runs a convolutional decoder in bf16 on a CPU with native bf16 (within
        0.02 nats of float32, docs/performance.md), a long job (k x images >= 200,000) first times
        pass sizes on this machine (once, cached) and compiles the decoder; ``chunk_size`` (samples
        per image per pass) skips the timing, ``precision="float32"`` the reduced precision. In
        training mode, and with ``grad=True`` (which keeps every chunk's graph: memory grows with k;
        the ``iwae`` objective is the way to train on the bound), the model's own float32 decoder
        scores. ``seed`` makes the noise repeatable.
        """
        x, k = self.check_input(x), check_count(k, "k (the number of importance samples)")
        y = self.check_labels(y, x.shape[0])
        if chunk_size is not None:
            chunk_size = check_count(chunk_size, "chunk_size")
        generator_seed = int(torch.randint(2**62, ()).item()) if seed is None else seed
        noise = NoiseSource(generator_seed, IWAE_STREAM, range(x.shape[0]), self.noise_shape, x.device, x.dtype)
        if grad and torch.is_grad_enabled():
            if precision == "bfloat16":
                raise UsageError("iwae(grad=True) differentiates the model's own float32 decoder: use precision "
                                 "'auto' or 'float32'")
            return iwae_bound(self, x, noise, k, chunk_size or max(1, 2048 // x.shape[0]), y).to(x.dtype)
        with torch.no_grad():
            plan = plan_scoring(self, x, y, precision="float32" if self.training else precision,
                                decodes=k * x.shape[0], decodes_per_pass=chunk_size and chunk_size * x.shape[0])
            with self.decoding_with(plan.decoder(self)):
                return planned_iwae_bound(self, x, noise, k, plan, y).to(x.dtype)

    def refine(self, x: torch.Tensor, steps: int = 100, lr: float = 0.05, y: Optional[torch.Tensor] = None,
               **kwargs) -> DiagonalGaussian:
        """Per-example posteriors refined by ``steps`` Adam steps on each example's ELBO, decoder
        frozen (the seed's non-amortized inference); see :func:`vaezoo.models.refine.refine`."""
        x, steps = self.check_input(x), check_count(steps, "steps", minimum=0)
        return refine(self, x, steps, lr, y=self.check_labels(y, x.shape[0]), **kwargs)

    # -- bookkeeping --------------------------------------------------------------------

    @torch.no_grad()
    def materialize(self) -> None:
        """Give lazy modules (``nn.LazyLinear`` in a user's backbone) their shapes with one pass
        over a blank batch, so that parameter counts, optimizers and checkpoints see every weight."""
        if not any(isinstance(p, nn.parameter.UninitializedParameter) for p in self.parameters()):
            return
        x = torch.zeros(2, *self.input_shape)
        y = torch.zeros(2, dtype=torch.long) if self.conditional else None
        self.latent_pass(x, torch.zeros(1, 2, *self.noise_shape), y)

    def has_convolutions(self) -> bool:
        return any(isinstance(m, nn.modules.conv._ConvNd) for m in self.modules())

    def prefers_channels_last(self, device: torch.device) -> bool:
        """Whether channels-last memory format speeds this model up on ``device`` (training and
        evaluation both ask): convolutions run about 2x faster channels-last (oneDNN on CPUs,
        tensor cores on GPUs), but GroupNorm's CPU kernels are slower on it: the fashion-resnet32
        training step ran at 234 img/s channels-last against 369 img/s contiguous (2 cores)."""
        if not self.has_convolutions():
            return False
        return not (device.type == "cpu" and any(isinstance(m, nn.GroupNorm) for m in self.modules()))

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Parameters of the published model (training parts such as a discriminator left out)."""
        held = {id(p) for part in self.training_parts().values() for p in part.parameters()}
        return sum(p.numel() for p in self.parameters()
                   if id(p) not in held and (p.requires_grad or not trainable_only))

    def prior_label(self) -> Optional[str]:
        """p(z) in words for reports: the config's prior part, or the family's own prior."""
        spec = getattr(self.config, "prior", None)
        return None if spec is None else spec.label

    def extra_repr(self) -> str:
        levels = ", ".join(f"{name}={dim}" for name, dim in self.latent_levels)
        return f"family={self.family}, input_shape={list(self.input_shape)}, latents=({levels})"


def _first_draw(z: Latent) -> Latent:
    if isinstance(z, dict):
        return {name: value[0] for name, value in z.items()}
    return z[0]


def _draws(z: Latent) -> int:
    return next(iter(z.values())).shape[0] if isinstance(z, dict) else z.shape[0]
