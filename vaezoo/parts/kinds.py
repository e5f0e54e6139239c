"""One registry per kind of part, and the decorators that fill them.

Every part is a builder (a function or a class) called with a few fixed arguments that
the model supplies (shapes, latent size) followed by the part's own parameters from the
YAML file. Those parameters are validated by a pydantic schema: either given explicitly
(``params=MyParams``) or derived from the builder's signature, so that

    @register_backbone("my-encoder")
    def my_encoder(in_shape, out_features, width: int = 64): ...

rejects ``width: abc`` and ``widht: 64`` with the field path and the allowed fields.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, create_model

from .._registry import Registry

__all__ = [
    "ENCODERS", "DECODERS", "PRIORS", "LIKELIHOODS", "OBJECTIVES", "DATASETS", "QUANTIZERS", "CODE_PRIORS",
    "POSTERIORS", "register_backbone", "register_prior", "register_likelihood", "register_objective",
    "register_dataset", "register_quantizer", "register_code_prior", "register_posterior", "params_schema",
]

ENCODERS: Registry[Callable] = Registry("encoder")
DECODERS: Registry[Callable] = Registry("decoder")
PRIORS: Registry[Callable] = Registry("prior")
LIKELIHOODS: Registry[Callable] = Registry("likelihood")
OBJECTIVES: Registry[Callable] = Registry("objective")
DATASETS: Registry[Callable] = Registry("dataset")
QUANTIZERS: Registry[Callable] = Registry("quantizer")
CODE_PRIORS: Registry[Callable] = Registry("code prior")
POSTERIORS: Registry[Callable] = Registry("posterior")

# Keyword arguments a builder may declare that vaezoo fills at run time (never from a config):
# a dataset's `expected_shape` is the model's input_shape, so image-folder can decode to its channels.
RUNTIME_ARGS = {"dataset": ("expected_shape",)}

# How many leading builder arguments the model supplies, per registry; the rest are params.
_FIXED_ARGS = {
    "encoder": ("in_shape", "out_features"),
    "decoder": ("in_features", "out_shape"),
    "prior": ("latent_dim",),
    "likelihood": ("in_shape",),
    "objective": (),
    "dataset": ("root",),
    "quantizer": ("dim",),
    "code prior": ("codebook_size", "grid"),
    "posterior": ("latent_dim",),
}


class PartParams(BaseModel):
    """Base for explicit part parameter schemas: unknown arguments are errors."""

    model_config = ConfigDict(extra="forbid")


def params_schema(builder: Callable, kind: str, name: str) -> type[BaseModel]:
    """A pydantic model of the builder's keyword parameters after the fixed ones."""
    target = builder.__init__ if inspect.isclass(builder) else builder
    signature = inspect.signature(target, eval_str=True)
    parameters = list(signature.parameters.values())
    if inspect.isclass(builder):
        parameters = parameters[1:]  # self
    fixed = _FIXED_ARGS[kind]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < len(fixed):
        raise TypeError(
            f"{kind} builder '{name}' must accept ({', '.join(fixed)}, **params) as its first arguments"
        )
    fields: dict[str, Any] = {}
    allow_extra = False
    for p in parameters[len(fixed):]:
        if p.name in RUNTIME_ARGS.get(kind, ()):
            continue
        if p.kind is p.VAR_KEYWORD:
            allow_extra = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        annotation = Any if p.annotation is p.empty else p.annotation
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (annotation, default)
    config = ConfigDict(extra="allow" if allow_extra else "forbid", arbitrary_types_allowed=True)
    return create_model(f"{kind}:{name}", __config__=config, **fields)


def _registrar(registry: Registry, kind: str, name: str, params: type[BaseModel] | None):
    def decorator(builder):
        schema = params or params_schema(builder, kind, name)
        registry.add(name, builder, params=schema)
        return builder

    return decorator


def register_backbone(
    name: str, *, role: Literal["encoder", "decoder"] = "encoder", params: type[BaseModel] | None = None
):
    """Register an encoder (``role="encoder"``) or decoder backbone builder.

    Encoders are called ``builder(in_shape, out_features, **params)`` and map a batch of
    shape ``(B, *in_shape)`` to ``(B, out_features)``: the posterior's parameters.
    Decoders are called ``builder(in_features, out_shape, **params)`` and map ``(B,
    in_features)`` latents to ``(B, *out_shape)``: the likelihood's parameters.
    """
    if role not in ("encoder", "decoder"):
        raise ValueError(f"role must be 'encoder' or 'decoder', got {role!r}")
    return _registrar(ENCODERS if role == "encoder" else DECODERS, role, name, params)


def register_prior(name: str, *, params: type[BaseModel] | None = None):
    """Register a prior p(z): ``builder(latent_dim, **params) -> Prior``."""
    return _registrar(PRIORS, "prior", name, params)


def register_likelihood(name: str, *, params: type[BaseModel] | None = None):
    """Register a likelihood p(x|z): ``builder(in_shape, **params) -> Likelihood``."""
    return _registrar(LIKELIHOODS, "likelihood", name, params)


def register_objective(name: str, *, params: type[BaseModel] | None = None):
    """Register a training objective: ``builder(**params) -> Objective``."""
    return _registrar(OBJECTIVES, "objective", name, params)


def register_dataset(name: str, *, params: type[BaseModel] | None = None):
    """Register a dataset: ``builder(root, **params) -> ImageData`` (root: a folder or None)."""
    return _registrar(DATASETS, "dataset", name, params)


def register_quantizer(name: str, *, params: type[BaseModel] | None = None):
    """Register a quantizer of latent vectors: ``builder(dim, **params) -> Quantizer`` (``dim``:
    the channels of the encoder's latent grid)."""
    return _registrar(QUANTIZERS, "quantizer", name, params)


def register_code_prior(name: str, *, params: type[BaseModel] | None = None):
    """Register a prior over a grid of discrete codes (a VQ-VAE's second stage):
    ``builder(codebook_size, grid, **params) -> CodePrior`` (``grid``: the (h, w) of the codes)."""
    return _registrar(CODE_PRIORS, "code prior", name, params)


def register_posterior(name: str, *, params: type[BaseModel] | None = None):
    """Register a posterior family beyond the diagonal Gaussian: ``builder(latent_dim, **params) ->
    Flow``, a normalizing flow applied to the encoder's Gaussian draw (see
    :mod:`vaezoo.parts.posteriors`)."""
    return _registrar(POSTERIORS, "posterior", name, params)
