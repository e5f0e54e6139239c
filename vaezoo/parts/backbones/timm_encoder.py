"""Any timm model as an encoder: ``encoder: {name: timm, model: resnet18, out_index: -1}``.

The model is built with ``timm.create_model(model, features_only=True, out_indices=(i,),
pretrained=False, in_chans=C)``: it takes the image's channel count, downloads nothing, and
most models stop at feature level ``i`` (the weights of stages that a model still builds
after it are frozen, since DDP rejects parameters that get no gradient).
``out_index`` is checked against the model's ``feature_info`` and the channels are read from
it; a dummy forward of a ``(1, C, H, W)`` zero image at build time turns "this model cannot
take that size" into a configuration error instead of a failure in the first training step.
The feature map is average-pooled (``pool: avg``) or flattened (``pool: flatten``) and
projected linearly to the posterior's parameters. timm is imported only when one is built.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from ..kinds import PartParams, register_backbone
from ._layers import spatial

__all__ = ["TimmParams", "TimmEncoder"]


class TimmParams(PartParams):
    model: str = Field(description="a timm model name, e.g. resnet18 (timm.list_models() lists them)")
    out_index: int = Field(-1, description="which feature level of feature_info to use; negative counts from the end")
    pool: Literal["avg", "flatten"] = "avg"
    pretrained: bool = Field(False, description="download timm's pretrained weights (needs the internet)")
    model_kwargs: dict[str, Any] = Field(default_factory=dict, description="more timm.create_model arguments")

    @field_validator("model_kwargs")
    @classmethod
    def _nothing_that_fetches(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        # A config (a checkpoint's config.json included) must not make timm read a file or the
        # network, nor override what this part sets itself.
        for key in kwargs:
            if key in _FETCHING:
                raise ValueError(f"{key!r} is not allowed in model_kwargs: it makes timm read files or download "
                                 f"weights; weights come from vaezoo checkpoints (model.safetensors)")
            if key in _OWN:
                raise ValueError(f"{key!r} is not allowed in model_kwargs: the timm encoder sets it itself "
                                 f"({_OWN[key]})")
        return kwargs


_FETCHING = {"pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir",
             "pretrained_strict"}
_OWN = {"features_only": "always true", "in_chans": "from the image's channels", "out_indices": "from out_index"}


def _unknown_model_message(name: str, timm) -> str:
    names = timm.list_models()
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    close += [n for n in timm.list_models(f"*{name}*") if n not in close][: max(0, 5 - len(close))]
    hint = f" Close names: {', '.join(close)}." if close else ""
    return f"unknown timm model '{name}'.{hint} timm.list_models() lists all {len(names)}."


@register_backbone("timm", role="encoder", params=TimmParams)
class TimmEncoder(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], out_features: int, **params):
        super().__init__()
        import timm  # lazily: importing timm costs about a second

        config = TimmParams(**params)
        channels, height, width = spatial(in_shape, "timm")
        if not timm.is_model(config.model):
            raise ValueError(_unknown_model_message(config.model, timm))

        def create(**extra):
            return timm.create_model(config.model, features_only=True, in_chans=channels,
                                     **{"pretrained": config.pretrained, **config.model_kwargs, **extra})

        try:
            self.features = create(out_indices=(config.out_index,))
        except (IndexError, AssertionError) as exc:  # how timm reports an out-of-range out_indices
            raise ValueError(self._out_index_message(config, create(pretrained=False), exc)) from None
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:  # e.g. no features_only
            raise ValueError(f"timm could not build '{config.model}' with features_only=True: {exc}") from None
        if len(self.features.feature_info.channels()) != 1:
            raise ValueError(f"timm model '{config.model}' returned {len(self.features.feature_info.channels())} feature "
                             f"levels for out_indices=({config.out_index},); expected one")
        self.out_index = config.out_index
        self.channels = self.features.feature_info.channels()[-1]
        self.reduction = self.features.feature_info.reduction()[-1]

        feature = self._probe_forward(config.model, channels, height, width)
        self.channels_last = feature.shape[1] != self.channels and feature.shape[-1] == self.channels
        if self.channels_last:
            feature = feature.permute(0, 3, 1, 2)
        if feature.shape[1] != self.channels:
            raise ValueError(
                f"timm model '{config.model}' returned features of shape {list(feature.shape)}, "
                f"not the {self.channels} channels its feature_info promises"
            )
        self.feature_shape = tuple(feature.shape[1:])
        if config.pool == "avg":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(self.channels, out_features)
        else:
            self.pool = nn.Flatten()
            self.head = nn.Linear(feature[0].numel(), out_features)

    @staticmethod
    def _out_index_message(config: TimmParams, probe: nn.Module, exc: BaseException) -> str:
        """Name the valid indices, read from the feature_info of the model's default levels."""
        levels = probe.feature_info.info  # every level, not only the default out_indices
        count = len(levels)
        listing = "; ".join(f"{i} (or {i - count}): {level['num_chs']} channels, stride {level['reduction']}"
                            for i, level in enumerate(levels))
        detail = f" (timm: {exc})" if str(exc) and "list index" not in str(exc) else ""
        return (f"out_index {config.out_index} is out of range for timm model '{config.model}'{detail}; "
                f"its feature_info has {count} levels: {listing}")

    def _probe_forward(self, name: str, channels: int, height: int, width: int) -> torch.Tensor:
        """One forward of a zero image; a model that cannot take the size fails here, clearly."""
        was_training = self.features.training
        self.features.eval()  # batch norm refuses a batch of one 1x1 map in training mode
        try:
            with torch.enable_grad():
                out = self.features(torch.zeros(1, channels, height, width))
        except (RuntimeError, ValueError, AssertionError, IndexError) as exc:
            default = getattr(self.features, "pretrained_cfg", {}).get("input_size")
            fixed = getattr(self.features, "pretrained_cfg", {}).get("fixed_input_size")
            advice = (
                f"It is built for a fixed input size {list(default[1:])}: pass its size argument through "
                f"model_kwargs (for ViTs, model_kwargs: {{img_size: [{height}, {width}]}}) or resize the data"
                if fixed and default else
                f"Feature level {self.out_index} has stride {self.reduction}; use a larger input or an "
                f"earlier out_index"
            )
            raise ValueError(
                f"timm model '{name}' cannot take a {channels}x{height}x{width} input: {str(exc).rstrip('.')}. "
                f"{advice}"
            ) from None
        finally:
            self.features.train(was_training)
        feature = out[-1] if isinstance(out, (list, tuple)) else out
        if feature.dim() != 4:
            raise ValueError(f"timm model '{name}' returned a {feature.dim()}-d feature, expected (B, C, H, W)")
        self._freeze_unused(feature)
        return feature.detach()

    def _freeze_unused(self, feature: torch.Tensor) -> None:
        """Some timm feature wrappers (EfficientNetFeatures, ...) keep and run the stages after
        the chosen level. Their weights never get a gradient, which DDP rejects; freezing them
        (requires_grad False) lets DDP and the optimizers skip them. Their names are kept in
        ``unused_parameters``."""
        named = [(n, p) for n, p in self.features.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(feature.sum(), [p for _, p in named], allow_unused=True)
        self.unused_parameters = [n for (n, p), g in zip(named, grads) if g is None]
        for (_, p), g in zip(named, grads):
            if g is None:
                p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.features(x)[-1]
        if self.channels_last:
            feature = feature.permute(0, 3, 1, 2)
        return self.head(self.pool(feature))
