"""The pretrained index: one ``registry/<name>.json`` entry per published name.

An entry pins everything a user relies on: the architecture (inline, so that loading needs
neither the network nor an unchanged ``configs/`` file), the Hub repository, the commit, the
weights file and its sha256, the metrics with the protocol that measured them, and how the
weights were trained. Weights the project ships live in ``registry/weights/``, or in a weight
pack (:mod:`vaezoo.hub.packs`) when the entry names one.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import (
    ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, SerializeAsAny, ValidationError, field_validator,
    model_validator,
)

from .. import resources
from .._registry import natural_key, suggest
from ..config import describe_errors
from ..errors import ConfigError, HubError
from ..layout.checkpoint import atomic_write_bytes
from ..parts.metrics import UNITS, find_metric
from ..schemas import DataConfig, ModelConfig, Strict, TrainerConfig
from .packs import PACKS

__all__ = [
    "Protocol", "PublishedMetric", "HubWeights", "Recipe", "StartedFrom", "TrainingRun", "PublishedReference",
    "Rescoring", "ModelCosts", "Retirement", "PretrainedEntry",
    "NAME", "checked_name", "entry_path", "read_entry", "get_entry", "list_entries", "write_entry", "sha256_file",
    "shipped_candidates", "shipped_root", "shipped_path", "verified_shipped_file",
]

SHA256 = re.compile(r"^[0-9a-f]{64}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class Protocol(Strict):
    """How a number was measured; two numbers compare only under the same protocol."""

    likelihood: str = Field(description="the likelihood p(x|z) scored, e.g. 'bernoulli'")
    binarization: str = Field(
        description="'none': grayscale targets in [0, 1] (the 'BCE' protocol); else how pixels were binarized"
    )
    importance_samples: Optional[PositiveInt] = Field(
        None, description="1 for the ELBO, k for the importance-weighted bound; null for a metric that is no bound")
    mc_samples: Optional[PositiveInt] = Field(None, description="draws of z averaged per example for the ELBO")
    split: str = Field(description="'test', 'val' or 'train'")
    num_examples: PositiveInt
    weights_dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="storage dtype of the weights that were evaluated (the shipped file's)"
    )
    seed: Optional[int] = None
    conditioned_on: Optional[Literal["class label"]] = Field(
        None, description="null: a bound on log p(x); 'class label': on log p(x | y), a conditional model's")
    code_prior: Optional[str] = Field(
        None, description="a model with discrete codes: the prior its -log p(codes) is scored with ('uniform', "
                          "'pixelcnn', ...)")
    features: Optional[str] = Field(
        None, description="a sample-quality metric: the feature network it is measured in ('fashion-v1', "
                          "'inception-tv'); numbers compare only under one network")
    samples: Optional[PositiveInt] = Field(None, description="a sample-quality metric: the samples drawn")
    sampled_from: Optional[Literal["model", "gmm", "two-stage", "maf", "iaf"]] = Field(
        None, description="a sample-quality metric: the training prior ('model'), the Gaussian mixture fitted on "
                          "the training images' posterior means ('gmm'), the second-stage VAE trained on their "
                          "codes ('two-stage') or an autoregressive flow fitted on them ('maf', 'iaf')")
    probe: Optional[str] = Field(None, description="a linear-probe accuracy: the classifier's recipe")
    disentanglement: Optional[str] = Field(
        None, description="a disentanglement score: its recipe (bins, points, votes, seed) on a factor dataset")
    decoder_arithmetic: Optional[Literal["float32", "bfloat16"]] = Field(
        None, description="an importance-weighted bound: the dtype of the decoder backbone's arithmetic (the densities "
                          "and the log-sum-exp are float32 either way; vaezoo.fastpath); null: float32, recorded "
                          "before the field existed")


class PublishedMetric(Strict):
    name: str = Field(description="'neg_elbo', 'iwae_nll', 'active_units', ...: a registered metric's name")
    value: float
    unit: str = Field("nats", description=f"one of {', '.join(UNITS)}; a registered metric's own unit")
    stderr: Optional[NonNegativeFloat] = Field(None, description="standard error of the mean over examples")
    protocol: Protocol

    @model_validator(mode="after")
    def _unit(self) -> "PublishedMetric":
        if not math.isfinite(self.value) or (self.stderr is not None and not math.isfinite(self.stderr)):
            raise ValueError(f"metric '{self.name}': {self.value} ± {self.stderr} is not a finite number; a NaN or "
                             f"infinite measurement is not published (and would break strict JSON)")
        if self.unit not in UNITS:
            raise ValueError(f"metric '{self.name}': unit {self.unit!r} is not one of {list(UNITS)}")
        metric = find_metric(self.name, self.protocol.features)
        if metric is not None and metric.unit != self.unit:
            raise ValueError(f"metric '{self.name}' is measured in {metric.unit}, not {self.unit}")
        return self


class HubWeights(Strict):
    repo_id: str = Field(description="'org/name' on the Hub")
    revision: Optional[str] = Field(
        None, description="the 40-hex commit the entry is pinned to; null until the weights are pushed"
    )
    file: str = "model.safetensors"
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not SHA256.match(value):
            raise ValueError("expected 64 lowercase hex digits")
        return value

    @field_validator("revision")
    @classmethod
    def _pinned(cls, value: Optional[str]) -> Optional[str]:
        # a branch or a tag can move; only a commit sha pins what a name resolves to
        if value is not None and not COMMIT.match(value):
            raise ValueError(f"expected a full 40-hex commit sha (a branch or tag can move), got {value!r}")
        return value

    @field_validator("repo_id")
    @classmethod
    def _repo(cls, value: str) -> str:
        if value.count("/") != 1 or not all(value.split("/")):
            raise ValueError(f"expected 'org/name', got {value!r}")
        return value


class Recipe(Strict):
    data: DataConfig
    trainer: TrainerConfig


class StartedFrom(Strict):
    """A warm start's source, pinned: a later republish of the source does not change the record."""

    source: str = Field(description="trainer.init_from as the recipe gives it")
    sha256: Optional[str] = Field(None, description="the source's weights (a published name's, from its entry)")
    epochs: Optional[PositiveInt] = Field(None, description="the source's training epochs, its own sources' included")
    time_s: Optional[NonNegativeFloat] = Field(None, description="the same for its training time")


class TrainingRun(Strict):
    epochs: PositiveInt = Field(description="epochs actually run (may be fewer than the recipe's)")
    time_s: Optional[NonNegativeFloat] = None
    hardware: Optional[str] = None
    selection: Optional[dict[str, Any]] = Field(
        None, description="how the published checkpoint was chosen, on validation data only: the rule, the epoch "
                          "and its validation -ELBO (nats, the training loop's one-draw estimate) on how many images")
    second_stage: Optional[dict[str, Any]] = Field(
        None, description="a prior fitted after training (a VQ-VAE's code prior): which, its epochs, the epoch "
                          "selected on validation and its validation NLL, its time")
    started_from: Optional[StartedFrom] = Field(
        None, description="the weights the run started from (trainer.init_from), with what they cost: the "
                          "entry's epochs and time count only the run itself")


class PublishedReference(Strict):
    """The published result an entry answers: a row of a paper's table, under the same protocol."""

    source: str = Field(description="the paper and table, e.g. 'Exemplar VAE (Norouzi et al. 2020), Table 1'")
    row: str = Field(description="the row, e.g. 'HVAE, Gaussian prior'")
    metric: str = Field("iwae_nll", description="the entry's metric that compares with it")
    value: float = Field(description="the published number, in the metric's unit")
    stderr: Optional[NonNegativeFloat] = None


class Rescoring(Strict):
    """A second, independent measurement of a published metric: the same weights and test images,
    another noise seed (``python benchmarks/rescore.py NAME --seed 1 --record``)."""

    metric: str = Field(description="the entry's metric it re-measures, e.g. 'iwae_nll'")
    seed: int = Field(description="the noise seed; the published measurement's is another")
    value: float
    stderr: Optional[NonNegativeFloat] = None
    num_examples: PositiveInt
    sha256: str = Field(description="the weights it scored: an entry's rescorings hold for its weights only")
    command: str = Field(description="the command that measured it")


class ArithmeticCheck(Strict):
    """A metric scored with a reduced-precision decoder (``decoder_arithmetic: bfloat16``), checked
    against float32 on the same test images with the same noise (``python
    benchmarks/iwae_precision.py NAME --record``): the fast path's number is the float32 one."""

    metric: str = Field(description="the entry's metric whose arithmetic it checks, e.g. 'iwae_nll'")
    num_examples: PositiveInt = Field(description="the first N test images, scored both ways")
    float32: float = Field(description="the metric on those images with the decoder in float32")
    fast: float = Field(description="the same with the decoder's reduced precision, the same noise")
    stderr: NonNegativeFloat = Field(description="standard error of the mean per-image difference")
    sha256: str = Field(description="the weights it scored")
    command: str = Field(description="the command that measured it")

    @property
    def difference(self) -> float:
        return self.fast - self.float32


class ModelCosts(Strict):
    """What using the model costs, measured on one CPU thread (``python benchmarks/model_costs.py NAME
    --record``): milliseconds per image to sample, to encode, to score one ELBO draw, and to score
    the published protocol's importance-weighted bound."""

    sample_ms: PositiveFloat = Field(description="one image from the prior, decoded (batches of 64)")
    encode_ms: PositiveFloat = Field(description="q(z|x) of one test image (batches of 256)")
    elbo_ms: Optional[PositiveFloat] = Field(None, description="one -ELBO draw of one test image (batches of 256)")
    iwae_ms: Optional[PositiveFloat] = Field(None, description="the IWAE bound of one test image at iwae_k samples")
    iwae_k: Optional[PositiveInt] = None
    hardware: str = Field(description="the CPU, as benchmarks/machine.py names it")
    threads: PositiveInt
    command: str = Field(description="the command that measured it")
    sha256: str = Field(description="the weights it timed")


class Retirement(Strict):
    """Why an entry's weights stopped shipping (registry/README.md, "The weight budget") and where the
    file still is: the entry stays as history, its metrics and sha256 pin unchanged."""

    superseded_by: str = Field(description="the shipped entry of the same architecture and row that replaces it")
    why: str = Field(description="what the replacement does better, in a line")
    commit: str = Field(description="the last vaezoo commit whose registry/ holds the weights file")
    path: str = Field(description="the weights file's path in that commit")

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str) -> str:
        if not COMMIT.match(value):
            raise ValueError(f"expected a full 40-hex commit sha, got {value!r}")
        return value

    def recover_command(self, name: str) -> str:
        return f"git show {self.commit}:{self.path} > {name}.safetensors"


class PretrainedEntry(Strict):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: Literal[1] = 1
    name: str
    description: str = ""
    use_for: str = Field("", description="when to pick this model, in a line (docs/models.md shows it)")
    config: str = Field(description="the configs/ file the weights were trained from, e.g. 'fashion-conv64'")
    model: SerializeAsAny[ModelConfig] = Field(description="the architecture, inline: what load() builds")
    weights: HubWeights
    shipped: Optional[str] = Field(
        None, description="path of the shipped weights, relative to registry/ (or to the pack's package folder)")
    pack: Optional[str] = Field(
        None, description="the weight pack whose distribution carries the shipped file (vaezoo.hub.packs); "
                          "null: vaezoo's own archives")
    retired: Optional[Retirement] = Field(
        None, description="set when the weights stopped shipping: what supersedes them and where the file is")
    storage_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    num_params: PositiveInt
    metrics: list[PublishedMetric] = Field(default_factory=list)
    dataset: str
    license: str
    recipe: Recipe
    training: TrainingRun
    reference: Optional[PublishedReference] = Field(
        None, description="the published number this model answers (docs/models.md sets them side by side)")
    rescorings: list[Rescoring] = Field(default_factory=list, description="independent re-measurements of metrics")
    arithmetic_checks: list[ArithmeticCheck] = Field(
        default_factory=list, description="metrics scored with a bf16 decoder, scored in float32 too on a subset")
    costs: Optional[ModelCosts] = Field(None, description="milliseconds per image to sample, encode and score")
    date: _dt.date

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("expected lowercase letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _rescored_these_weights(self) -> "PretrainedEntry":
        for i, check in enumerate(self.rescorings):
            if check.sha256 != self.weights.sha256:
                raise ValueError(f"rescorings.{i} scored other weights (sha256 {check.sha256[:12]}..., the entry's "
                                 f"are {self.weights.sha256[:12]}...): drop it, or run `{check.command}` again")
        for i, check in enumerate(self.arithmetic_checks):
            if check.sha256 != self.weights.sha256:
                raise ValueError(f"arithmetic_checks.{i} scored other weights: drop it, or run `{check.command}` again")
        if self.costs is not None and self.costs.sha256 != self.weights.sha256:
            raise ValueError(f"costs timed other weights: drop them, or run `{self.costs.command}` again")
        if self.retired is not None and self.shipped is not None:
            raise ValueError("a retired entry ships no weights: set shipped to null, or drop retired")
        if self.pack is not None and self.shipped is None:
            raise ValueError("pack names where the shipped file travels: set shipped too, or drop pack")
        return self

    @field_validator("pack")
    @classmethod
    def _known_pack(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value not in PACKS:
            raise ValueError(f"expected one of the weight packs {sorted(PACKS)} (vaezoo/hub/packs.py), or null")
        return value

    @field_validator("shipped")
    @classmethod
    def _relative(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and (value.startswith("/") or ".." in Path(value).parts):
            raise ValueError("expected a path inside registry/, like 'weights/<name>.safetensors'")
        return value


def _registry(registry: str | Path | None) -> Path:
    return Path(registry) if registry is not None else resources.registry_dir()


def checked_name(name: str) -> str:
    """A published name, which becomes the file names of its entry and its weights: refused before
    anything is written unless it is a plain name (no '/', no leading '.'), so that no path escapes
    the registry folder."""
    if not isinstance(name, str) or not NAME.match(name):
        raise HubError(f"published name {name!r}: expected lowercase letters, digits, '.', '_' or '-', starting "
                       f"with a letter or a digit (it names files in the registry folder)")
    return name


def entry_path(name: str, registry: str | Path | None = None) -> Path:
    return _registry(registry) / f"{checked_name(name)}.json"


def read_entry(path: str | Path) -> PretrainedEntry:
    """One entry, validated; errors name the file and the key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(str(path), [("", f"cannot read the registry entry: {exc}")]) from None
    try:
        entry = PretrainedEntry.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), describe_errors(exc, PretrainedEntry, data)) from None
    if entry.name != path.stem:
        raise ConfigError(str(path), [("name", f"'{entry.name}' must match the file name '{path.stem}'")])
    return entry


def list_entries(registry: str | Path | None = None) -> list[PretrainedEntry]:
    paths = sorted(_registry(registry).glob("*.json"), key=lambda p: natural_key(p.stem))
    return [read_entry(p) for p in paths]


def get_entry(name: str, registry: str | Path | None = None) -> PretrainedEntry:
    path = entry_path(name, registry)
    if not path.is_file():
        known = sorted(p.stem for p in _registry(registry).glob("*.json"))
        listing = ", ".join(known) if known else "(none yet)"
        raise HubError(f"no pretrained weights named '{name}'.{suggest(name, known)} Pretrained names: {listing}")
    return read_entry(path)


def write_entry(entry: PretrainedEntry, registry: str | Path | None = None) -> Path:
    path = entry_path(entry.name, registry)
    return atomic_write_bytes(path, (json.dumps(entry.model_dump(mode="json"), indent=2) + "\n").encode())


def shipped_candidates(entry: PretrainedEntry, registry: str | Path | None = None) -> list[Path]:
    """Where the entry's shipped file may be, in the order to try: registry/ for vaezoo's own archives;
    for a pack, an installed copy of it, then the source checkout's ``weightpacks/`` folder."""
    if not entry.shipped:
        return []
    installed = PACKS[entry.pack].installed_folders() if entry.pack is not None else []
    return [folder / entry.shipped for folder in (*installed, shipped_root(entry.pack, registry))]


def shipped_root(pack: Optional[str], registry: str | Path | None = None) -> Path:
    """The folder of the repository (or the installed vaezoo) that ``shipped`` paths are relative to:
    registry/ for vaezoo's own archives, else the weight pack's folder beside it."""
    return PACKS[pack].source_folder(_registry(registry)) if pack is not None else _registry(registry)


def shipped_path(entry: PretrainedEntry, registry: str | Path | None = None) -> Optional[Path]:
    """Where vaezoo's repository keeps the shipped file (the copy ``vaezoo publish`` writes and
    ``retire`` removes); None for an entry that ships nothing. Loading tries every candidate."""
    candidates = shipped_candidates(entry, registry)
    return candidates[-1] if candidates else None


def verified_shipped_file(entry: PretrainedEntry, registry: str | Path | None = None) -> tuple[Optional[Path], list[Path]]:
    """The first shipped copy whose sha256 is the entry's (or None), and the copies that were altered."""
    altered = []
    for path in shipped_candidates(entry, registry):
        if path.is_file():
            if sha256_file(path) == entry.weights.sha256:
                return path, altered
            altered.append(path)
    return None, altered


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
