"""Pydantic schemas of an experiment file: the model, the data and the trainer.

Every schema forbids unknown keys. A part (``encoder: {name: conv, channels: [32, 64]}``)
is validated twice over: its ``name`` against the part registry, then its remaining keys
against the part's own parameter schema, so errors carry paths like
``model.encoder.channels``. A part may also be written as its bare name (``prior: normal``).

The ``model`` section is validated the same way one level up: its ``family`` (``vae`` when
not given) picks a registered model family, whose own config schema checks the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import (
    BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, SerializeAsAny,
    ValidationError, field_validator, model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ._registry import Registry
from .parts.kinds import (
    CODE_PRIORS, DATASETS, DECODERS, ENCODERS, LIKELIHOODS, OBJECTIVES, POSTERIORS, PRIORS, QUANTIZERS,
)

__all__ = [
    "PartSpec", "EncoderSpec", "DecoderSpec", "PriorSpec", "PosteriorSpec", "LikelihoodSpec", "ObjectiveSpec",
    "DatasetSpec", "QuantizerSpec", "CodePriorSpec",
    "FAMILIES", "ModelConfig", "DataConfig", "OptimizerConfig", "SchedulerConfig", "TrainerConfig",
    "ExperimentConfig", "validate_model_config",
]

# name -> the model family's class (entry.obj) and its config schema (entry.params); filled by
# vaezoo.models.register_family, read here to validate a `model:` section by its family.
FAMILIES: Registry[Any] = Registry("model family", plural="model families")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PartSpec(BaseModel):
    """``name`` picks a registered part; every other key is one of that part's parameters."""

    model_config = ConfigDict(extra="allow")
    registry: ClassVar[Registry]

    name: str

    @model_validator(mode="wrap")
    @classmethod
    def _validate_part(cls, data: Any, handler):
        if isinstance(data, PartSpec):
            data = data.model_dump()
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return handler(data)  # pydantic reports the missing or mistyped name
        name = data["name"]
        if name not in cls.registry:
            raise _unknown(cls.__name__, "unknown_part", cls.registry, name, "name")
        params = {k: v for k, v in data.items() if k != "name"}
        schema = cls.registry.entry(name).params
        if schema is not None:
            params = schema.model_validate(params).model_dump()
        return handler({"name": name, **params})

    @property
    def params(self) -> dict[str, Any]:
        """The part's validated parameters, defaults filled in."""
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        """``name(key=value, ...)``, the part as reports and listings print it."""
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({params})" if params else self.name

    def build(self, *fixed: Any) -> Any:
        return self.registry.get(self.name)(*fixed, **self.params)


def _unknown(title: str, kind: str, registry: Registry, name: Any, field: str) -> ValidationError:
    return ValidationError.from_exception_data(title, [InitErrorDetails(
        type=PydanticCustomError(kind, "{message}", {"message": registry.unknown_message(name)}),
        loc=(field,), input=name,
    )])


class EncoderSpec(PartSpec):
    registry = ENCODERS


class DecoderSpec(PartSpec):
    registry = DECODERS


class PriorSpec(PartSpec):
    registry = PRIORS


class PosteriorSpec(PartSpec):
    registry = POSTERIORS


class LikelihoodSpec(PartSpec):
    registry = LIKELIHOODS


class ObjectiveSpec(PartSpec):
    registry = OBJECTIVES


class DatasetSpec(PartSpec):
    registry = DATASETS


class QuantizerSpec(PartSpec):
    registry = QUANTIZERS


class CodePriorSpec(PartSpec):
    registry = CODE_PRIORS


class ModelConfig(Strict):
    """The architecture: what is needed to build the model, nothing about training.

    The base of every family's config schema. Validating a mapping against ``ModelConfig``
    itself dispatches on its ``family`` (default ``vae``) and returns that family's config.
    """

    family: str = Field("vae", description="the model family: vae, cvae, hvae, ladder, ... (vaezoo list --families)")
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(
        description="[channels, height, width] of one input image"
    )
    likelihood: LikelihoodSpec = Field(default_factory=lambda: LikelihoodSpec(name="bernoulli"))
    objective: ObjectiveSpec = Field(default_factory=lambda: ObjectiveSpec(name="elbo"))

    def latent_size(self) -> int:
        """Latent numbers per image (summed over the levels of a hierarchy); families override it."""
        dims = getattr(self, "latent_dims", None)
        return sum(dims) if dims is not None else int(getattr(self, "latent_dim"))

    def latent_summary(self) -> str:
        """The latent in a few words for tables and cards: ``16``, ``40 / 40 (bottom to top)``, ..."""
        dims = getattr(self, "latent_dims", None)
        return " / ".join(str(d) for d in dims) + " (bottom to top)" if dims is not None else str(self.latent_size())

    def as_trained(self) -> "ModelConfig":
        """The architecture the training loop builds from the config file, without what is fitted
        afterwards (a VQ-VAE's code prior): what a published run must match in ``configs/``."""
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _dispatch_family(cls, data: Any, handler):
        if cls is not ModelConfig:
            return handler(data)
        if isinstance(data, ModelConfig):
            return data if type(data) is not ModelConfig else handler(data)
        if not isinstance(data, dict):
            return handler(data)  # pydantic reports the wrong type
        family = data.get("family", "vae")
        if not isinstance(family, str) or family not in FAMILIES:
            raise _unknown(cls.__name__, "unknown_family", FAMILIES, family, "family")
        return FAMILIES.entry(family).params.model_validate(data)


def validate_model_config(data: Any) -> ModelConfig:
    """A ``model`` section (a mapping or a config) as its family's validated config."""
    return ModelConfig.model_validate(data)


class DataConfig(Strict):
    dataset: DatasetSpec = Field(default_factory=lambda: DatasetSpec(name="fashion-mnist"))
    root: Optional[str] = Field(None, description="folder holding the dataset's files; else VAEZOO_DATA, ...")
    binarize: Literal["none", "static", "dynamic"] = Field(
        "none", description="static: one fixed-seed Bernoulli draw at load; dynamic: a fresh draw per batch"
    )
    val_size: NonNegativeInt = Field(5000, description="training images held out for validation")


class OptimizerConfig(Strict):
    name: Literal["adam", "adamw"] = "adam"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    betas: tuple[NonNegativeFloat, NonNegativeFloat] = (0.9, 0.999)


class SchedulerConfig(Strict):
    name: Literal["constant", "cosine"] = "constant"
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: NonNegativeFloat = Field(0.0, le=1.0)


class TrainerConfig(Strict):
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 128
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig,
                                       description="the optimizer of the model's own parameters (named `model`)")
    optimizers: dict[str, OptimizerConfig] = Field(
        default_factory=dict, description="the model's other optimizers by name (a FactorVAE's `discriminator`); "
                                          "unset fields take the objective's recipe, then the defaults")
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig,
                                       description="the learning-rate schedule, one per optimizer")
    grad_clip: Optional[PositiveFloat] = None
    kl_warmup_epochs: NonNegativeFloat = Field(0.0, description="epochs over which the KL weight ramps from 0")
    ema_decay: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="validate, select and export an exponential moving average of the weights "
                                          "with this decay per step (e.g. 0.999); unset: the raw weights")
    init_from: Optional[str] = Field(
        None, description="start a fresh run from this model's weights (a zoo name with published weights, "
                          "hf-hub:org/repo@rev, a run folder or a .safetensors file), matched by tensor name: fine-tuning, or a new "
                          "part over trained ones; what it did not cover keeps its fresh initialization")
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = Field(
        "off", description="torch.compile mode (true means default); reduce-overhead adds CUDA graphs on GPUs, "
                           "for small models whose step is bound by kernel launches")
    seed: int = 0
    device: str = "auto"
    checkpoint_every: PositiveInt = Field(200, description="steps between crash-safe checkpoints")
    checkpoint_minutes: Optional[PositiveFloat] = Field(
        None, description="also at least this many minutes between checkpoints, mid-epoch and at epoch ends (the "
                          "last one and a SIGTERM always write one): a fast GPU does not spend its run checkpointing")
    deterministic: bool = Field(False, description="deterministic algorithms only (torch.use_deterministic_algorithms, "
                                                   "cuDNN deterministic, no cuDNN benchmark): repeatable GPU runs, slower")
    max_steps: Optional[PositiveInt] = Field(None, description="stop after this many optimizer steps in all")
    log_every: PositiveInt = Field(50, description="steps between progress lines (and finiteness checks)")
    eval_batch_size: Union[PositiveInt, Literal["auto"]] = Field(
        "auto", description="batch size of the validation and test passes; 'auto': the fastest of 32 to 1024 for "
                            "this model on this machine, timed at the run's first evaluation when the split is "
                            "larger than 1024 images (cached), and kept for the whole run")
    val_limit: Optional[PositiveInt] = Field(
        None, description="validate on the first N held-out images each epoch (default: all of them)")
    select: Literal["last", "best_val"] = Field(
        "last", description="which weights the run exports: the last epoch's, or the epoch's with the lowest "
                            "validation -ELBO (model selection on validation, never on test)")
    select_from: PositiveInt = Field(
        1, description="the first epoch that best_val may select and patience counts from: the epochs before it "
                       "are a warm-up whose objective is still changing (a capacity or KL schedule)")
    patience: Optional[PositiveInt] = Field(
        None, description="early stopping: end the run after this many epochs without a lower validation -ELBO")
    test: Literal["every_epoch", "end", "never"] = Field(
        "every_epoch", description="when the test split is scored: after each epoch, after the last one, or never "
                                   "(select models on validation; a trial run needs neither)")
    loader: Literal["auto", "device", "dataloader"] = Field(
        "auto", description="device: the uint8 dataset lives on the device; dataloader: workers + pinned memory"
    )
    num_workers: NonNegativeInt = Field(2, description="DataLoader workers (the dataloader path only)")
    micro_batch_size: Optional[PositiveInt] = Field(
        None, description="accumulate each batch's gradient over chunks of this many images (same gradient for "
                          "objectives that average over images; faster on CPUs, where a chunk stays in cache)"
    )
    channels_last: Literal["auto", "on", "off"] = Field(
        "auto", description="channels-last memory format; auto: on for models with convolutions"
    )

    def optimizer_summary(self) -> str:
        """``adam lr 0.0005`` for the model's optimizer, then each other optimizer by name."""
        def one(settings: OptimizerConfig) -> str:
            betas = "" if tuple(settings.betas) == (0.9, 0.999) else f" betas {settings.betas[0]:g}/{settings.betas[1]:g}"
            decay = f" weight decay {settings.weight_decay:g}" if settings.weight_decay else ""
            return f"{settings.name} lr {settings.lr:g}{betas}{decay}"
        return "; ".join([one(self.optimizer), *(f"{name}: {one(o)}" for name, o in self.optimizers.items())])

    @model_validator(mode="before")
    @classmethod
    def _model_optimizer(cls, data: Any) -> Any:
        # `optimizers: {model: ...}` is another spelling of `optimizer: ...`: one place for it
        if isinstance(data, dict) and isinstance(data.get("optimizers"), dict) and "model" in data["optimizers"]:
            if "optimizer" in data:
                raise ValueError("trainer.optimizer and trainer.optimizers.model both set the model's optimizer: "
                                 "keep one")
            data = dict(data)
            others = dict(data["optimizers"])
            data["optimizer"] = others.pop("model")
            data["optimizers"] = others
        return data

    @model_validator(mode="after")
    def _selectable(self) -> "TrainerConfig":
        if self.select_from > self.epochs:
            raise ValueError(f"trainer.select_from ({self.select_from}) is past trainer.epochs ({self.epochs}): no "
                             f"epoch could be selected; lower it or train longer")
        return self

    @field_validator("optimizers")
    @classmethod
    def _optimizer_names(cls, value: dict[str, OptimizerConfig]) -> dict[str, OptimizerConfig]:
        bad = [name for name in value if not name.isidentifier()]
        if bad:
            raise ValueError(f"optimizer names are identifiers (letters, digits, _), got {bad}")
        return value

    @field_validator("compile", "channels_last", mode="before")
    @classmethod
    def _switch_words(cls, value: Any, info) -> Any:
        # YAML 1.1 reads on/off/yes/no/true/false as booleans: `--set trainer.channels_last=on`
        # and `compile: true` mean the words, not a type error.
        if isinstance(value, bool):
            words = {"compile": ("default", "off"), "channels_last": ("on", "off")}[info.field_name]
            return words[0] if value else words[1]
        return value


class ExperimentConfig(Strict):
    """A zoo variant: one YAML file in ``configs/``."""

    name: Optional[str] = None
    description: str = ""
    model: SerializeAsAny[ModelConfig]
    data: DataConfig = Field(default_factory=DataConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="after")
    def _selection_needs_validation(self) -> "ExperimentConfig":
        """Settings that read the validation split are errors without one, not silently ignored."""
        if self.data.val_size == 0:
            for setting, used in (("trainer.select: best_val", self.trainer.select == "best_val"),
                                  (f"trainer.patience: {self.trainer.patience}", self.trainer.patience is not None)):
                if used:
                    raise ValueError(f"{setting} reads the validation split, and data.val_size is 0: hold out "
                                     f"validation images (data.val_size: 5000) or drop the setting")
        return self

    @model_validator(mode="after")
    def _objective_optimizers(self) -> "ExperimentConfig":
        """Fill the optimizers of the objective's training parts from its recipe, field by field
        under what the config sets, so that the recorded recipe names every setting it trained with."""
        defaults = getattr(OBJECTIVES.get(self.model.objective.name), "default_optimizers", {})
        if not defaults:
            return self
        merged = dict(self.trainer.optimizers)
        for name, recipe in defaults.items():
            given = merged.get(name)
            merged[name] = OptimizerConfig(**{**recipe, **(given.model_dump(exclude_unset=True) if given else {})})
        # model_copy, not assignment: assignment would validate (and so run this check) again
        object.__setattr__(self, "trainer", self.trainer.model_copy(update={"optimizers": merged}))
        return self
