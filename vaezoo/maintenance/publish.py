"""Publish a trained run as a pretrained name: shipped weights + a ``registry/<name>.json`` entry.

    vaezoo publish RUN_DIR NAME REPO_ID [--metrics eval.json] [--push --tag v1]

Steps: load and validate the run folder; write its weights in the storage dtype (fp16 by
default) to ``registry/weights/<name>.safetensors`` (or, with ``--pack KEY``, to the weight pack's
``weightpacks/KEY/<package>/weights/``: see :mod:`vaezoo.hub.packs`); optionally push a Hub-layout folder
holding those same bytes and pin the new commit; write the entry with the file's sha256.
Safetensors files are deterministic, so publishing again (e.g. once the metrics of the
shipped weights are measured) reproduces the same file and sha256.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from pydantic import ValidationError

from .. import resources
from ..errors import HubError
from ..evaluation.data import SPLITS
from ..layout import CONFIG_NAME, SAMPLES_NAME, push_folder, read_config
from ..layout.card import metric_records
from ..layout.checkpoint import atomic_write_bytes
from ..layout.lock import reading_run_folder
from ..parts.metrics import find_metric
from ..schemas import ExperimentConfig
from ..zoo import MODELS, get_config
from ..safe_text import load_json
from ..hub.index import (
    ArithmeticCheck, HubWeights, ModelCosts, PretrainedEntry, Protocol, PublishedMetric, PublishedReference, Recipe,
    Rescoring,
    StartedFrom,
    TrainingRun,
    NAME, checked_name, entry_path, read_entry, sha256_file, shipped_path, shipped_root, write_entry,
)
from ..hub.local import load_local
from ..hub.packs import get_pack

__all__ = ["publish_run", "normalize_metrics", "add_metrics", "add_rescoring", "add_costs", "add_arithmetic_check"]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
HELD_IN_SPLITS = [split for split in SPLITS if split != "test"]  # what vaezoo eval --split scores besides test


def _is_eval_report(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "protocol" in obj and isinstance(obj.get("metrics"), Mapping)


def normalize_metrics(
    metrics: Any, *, likelihood: str, binarization: str, weights_dtype: str, name: str
) -> list[PublishedMetric]:
    """Registry metric records from an EvalReport dict (``vaezoo eval`` JSON) or from records.

    Protocol fields not given are filled from the run (likelihood, binarization); the
    split, the number of examples and the number of importance samples must be given.
    """
    if not metrics:
        return []
    if _is_eval_report(metrics):
        return _from_eval_report(metrics, likelihood=likelihood, binarization=binarization,
                                 weights_dtype=weights_dtype, name=name)
    out = []
    for record in metric_records(metrics):
        known = set(PublishedMetric.model_fields) | set(Protocol.model_fields)
        unknown = sorted(set(record) - known)
        if unknown:
            raise HubError(f"metric '{record['name']}': unknown fields {unknown}; a metric has "
                           f"{sorted(PublishedMetric.model_fields)} and protocol fields {sorted(Protocol.model_fields)}")
        protocol = {k: record[k] for k in Protocol.model_fields if k in record}
        protocol.setdefault("likelihood", likelihood)
        protocol.setdefault("binarization", binarization)
        # a record that does not say otherwise was measured on the run's own (float32) weights
        protocol.setdefault("weights_dtype", "float32")
        metric = find_metric(record["name"], protocol.get("features"))
        if metric is not None:
            required = ["split", "num_examples", *metric.protocol]
        else:  # a name no registered metric publishes (a training loop's test_neg_elbo) is taken as a bound
            required = ["split", "num_examples"] + ([] if protocol.get("features") or protocol.get("probe")
                                                     else ["importance_samples"])
        missing = [k for k in required if k not in protocol]
        if missing:
            raise HubError(f"metric '{record['name']}' has no protocol: give {', '.join(missing)} "
                           f"(a number is comparable only with the protocol that measured it)")
        fields = {k: record[k] for k in PublishedMetric.model_fields if k in record and k != "protocol"}
        out.append(_published(protocol=protocol, **fields))
    return out


def _published(*, protocol: Mapping[str, Any], **fields: Any) -> PublishedMetric:
    """A metric record, or one line saying which metric and what is wrong with it (a NaN value, a unit)."""
    try:
        return PublishedMetric(protocol=Protocol(**protocol), **fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        message, where = problem["msg"].removeprefix("Value error, "), ".".join(str(p) for p in problem["loc"])
        if not message.startswith("metric "):  # the record's own checks name the metric already
            message = f"metric '{fields.get('name')}'{f' ({where})' if where else ''}: {message}"
        raise HubError(message) from None


def _from_eval_report(report: Mapping[str, Any], *, likelihood: str, binarization: str, weights_dtype: str,
                      name: str) -> list[PublishedMetric]:
    """The records of every metric of a ``vaezoo eval`` report that a registered metric publishes,
    each with the protocol fields the report holds and the metric takes from it."""
    p = report["protocol"]
    # a metric is known by its name: a figure of the images training learned or selected on would
    # replace the test set's (a factor grid's or given images' report names its own split)
    if p.get("split") in HELD_IN_SPLITS:
        raise HubError(f"the report scored the {p['split']} split (vaezoo eval --split {p['split']}); a published "
                       f"metric is measured on the test split: score it without --split")
    evaluated = p.get("model")
    if evaluated != name and weights_dtype != "float32":
        warnings.warn(f"the metrics were measured on '{evaluated}', not on the shipped '{name}' weights "
                      f"({weights_dtype}); the registry records them as measured on float32 weights",
                      stacklevel=3)
        weights_dtype = "float32"
    # the bound of a model with discrete codes goes through its code prior; its samples' and probe's
    # reports (the family named, no codebook) are not about a prior's likelihood
    codes = "codebook_size" in p
    common = dict(
        likelihood=str(p.get("likelihood") or likelihood),
        binarization=str(p.get("binarization") or binarization),
        split=str(p.get("split", "test")),
        num_examples=int(p["examples"]),
        weights_dtype=weights_dtype,
        seed=p.get("seed"),
        conditioned_on="class label" if p.get("conditioned_on") else None,
        code_prior=str(p["prior"]).split(" over ")[0] if codes else None,
    )
    out = []
    for metric_name, m in report["metrics"].items():
        metric = find_metric(metric_name, p.get("features"))
        if metric is None or not metric.publish:
            continue
        out.append(_published(name=metric_name, value=float(m["value"]), unit=metric.unit, stderr=m.get("stderr"),
                              protocol={**common, **metric.protocol_from(p)}))
    return out


def _read_metrics(metrics: Union[str, Path, Mapping, list]) -> Any:
    if isinstance(metrics, (Mapping, list)):
        return metrics
    path = Path(metrics)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HubError(f"{path}: cannot read metrics JSON ({exc})") from None


def _metric_sources(metrics: Any) -> list[Any]:
    """One source (a path, an eval report or a records list/dict) or several: the -ELBO over the
    whole test set and the costly IWAE bound on a subset usually come from two ``vaezoo eval`` runs."""
    if not metrics:
        return []
    if isinstance(metrics, (list, tuple)) and all(
            isinstance(m, (str, Path)) or _is_eval_report(m) for m in metrics):
        return [_read_metrics(m) for m in metrics]
    return [_read_metrics(metrics)]


def _precision(metric: PublishedMetric) -> tuple[int, int, int, int]:
    p = metric.protocol
    return p.num_examples, p.importance_samples or 1, p.mc_samples or 1, p.samples or 0


def _combine_metrics(metrics: Any, **normalize_kwargs: Any) -> list[PublishedMetric]:
    """All sources' metrics; a name measured by several keeps the most precise measurement: on the
    most examples, then with the most samples (an IWAE run on a subset also reports a one-sample
    -ELBO, which the full test set's run with S = 10 measures better)."""
    records: dict[str, PublishedMetric] = {}
    for source in _metric_sources(metrics):
        for record in normalize_metrics(source, **normalize_kwargs):
            kept = records.get(record.name)
            if kept is None or _precision(record) > _precision(kept):
                records[record.name] = record
            # equal to seven digits is the same measurement: float32 per-image values pooled in another
            # order (a sharded run, another batch size) differ in their last bits
            elif _precision(record) == _precision(kept) and not math.isclose(record.value, kept.value, rel_tol=1e-7):
                raise HubError(f"metric '{record.name}' is given twice under the same protocol with different "
                               f"values ({kept.value:g} and {record.value:g}); keep it in one of the metrics files")
    return list(records.values())


def published_reference(key: str, registry: Union[str, Path, None] = None) -> PublishedReference:
    """A row of ``registry/references/published.json`` by its key, e.g. ``exemplar-vae/hvae``."""
    path = (Path(registry) if registry is not None else resources.registry_dir()) / "references" / "published.json"
    rows = load_json(path.read_text())["rows"]
    if key not in rows:
        raise HubError(f"no published result '{key}' in {path}; known: {', '.join(sorted(rows))}")
    return PublishedReference(**rows[key])


def _selection(metrics: Any, trained: Mapping[str, Any], ema_decay: Optional[float] = None,
               select_from: int = 1) -> Optional[dict[str, Any]]:
    """How the exported checkpoint was chosen and its validation -ELBO (the validation loss of a
    model without a bound), from the run's config.json."""
    metrics = metrics if isinstance(metrics, Mapping) else {}
    key, label = ("val_neg_elbo", "-ELBO") if "val_neg_elbo" in metrics else ("val_loss", "loss")
    val = metrics.get(key)
    if not isinstance(val, Mapping) or val.get("value") is None:
        return None
    best = trained.get("selected_epoch")
    rule = f"the lowest validation {label} (trainer.select: best_val)" if best else "the last epoch"
    if best and select_from > 1:
        rule += f" from epoch {select_from} on (trainer.select_from: the epochs before are a warm-up)"
    if ema_decay is not None:
        rule += f", the moving average of the weights (trainer.ema_decay: {ema_decay})"
    return {"rule": rule, "epoch": best or trained.get("epochs"), key: val["value"],
            "val_examples": val.get("num_examples")}


def started_from(source: Optional[str], registry: Path) -> Optional[StartedFrom]:
    """The record of a warm start: a published source is pinned by its weights' sha256 and
    brings its training cost (its own warm start's included); any other source is named only."""
    if source is None:
        return None
    if not NAME.match(source) or not entry_path(source, registry).is_file():  # a path, or an unpublished name
        return StartedFrom(source=source)
    parent = read_entry(entry_path(source, registry))
    epochs, time_s = parent.training.epochs, parent.training.time_s
    before = parent.training.started_from
    if before is not None:  # unknown if any part of the chain is
        epochs = epochs + before.epochs if before.epochs is not None else None
        time_s = time_s + before.time_s if time_s is not None and before.time_s is not None else None
    return StartedFrom(source=source, sha256=parent.weights.sha256, epochs=epochs, time_s=time_s)


def publish_run(
    run_dir: Union[str, Path],
    name: str,
    repo_id: str,
    *,
    metrics: Union[str, Path, Mapping, list, Sequence[Union[str, Path]], None] = None,
    config: Optional[str] = None,
    description: Optional[str] = None,
    license: str = "mit",
    dtype: str = "float16",
    epochs: Optional[int] = None,
    time_s: Optional[float] = None,
    hardware: Optional[str] = None,
    push: bool = False,
    tag: Optional[str] = None,
    token: Optional[str] = None,
    registry: Union[str, Path, None] = None,
    date: Optional[_dt.date] = None,
    answers: Optional[str] = None,
    pack: Optional[str] = None,
) -> Path:
    """Write ``registry/weights/<name>.safetensors`` and ``registry/<name>.json``; the entry's path.

    ``pack``: the weight pack (:mod:`vaezoo.hub.packs`) whose distribution carries the file, for a
    model the vaezoo archives have no room for; default: the pack the entry had, else none.

    ``metrics``: a JSON path or object, either ``vaezoo eval``'s report or registry records, or a
    list of such paths or reports (merged; a metric in several keeps the most precise one);
    default: the run's own ``config.json`` metrics when they carry a protocol. ``push=True``
    uploads the shipped bytes (plus config, card and samples) and pins the new commit.
    ``answers``: the key of the published result the model answers (``registry/references/published.json``);
    an entry published again keeps the one it had.
    """
    run_dir = Path(run_dir)
    registry = Path(registry) if registry is not None else resources.registry_dir()
    checked_name(name)  # it names files: refused before anything is written
    if pack is not None:
        get_pack(pack)
    if dtype not in _DTYPES:
        raise HubError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    with reading_run_folder(run_dir, "vaezoo publish"):  # not a run that a training is rewriting
        run_config = read_config(run_dir / CONFIG_NAME)
        model = load_local(run_dir)
        samples = (run_dir / SAMPLES_NAME).read_bytes() if (run_dir / SAMPLES_NAME).is_file() else None

    config_name = config or run_config.name or name
    if config_name not in MODELS:
        raise HubError(f"'{config_name}' is not a zoo config (configs/*.yaml or a registered model); "
                       f"pass config= with the name the run was trained from")
    experiment = get_config(config_name)
    if experiment.model != run_config.model.as_trained():
        raise HubError(f"the run's architecture differs from configs/{config_name}.yaml; publish it under a config "
                       f"that describes it (config=...)")
    recipe = Recipe(data=run_config.data or experiment.data, trainer=run_config.trainer or experiment.trainer)
    trained = dict(run_config.training or {})
    # the training loop records {"epochs", "wall_time_s", "device", "processes", ...} in config.json
    device = trained.get("device")
    if device and (trained.get("processes") or 1) > 1:
        device = f"{trained['processes']} x {device}"
    run = TrainingRun(
        epochs=epochs or trained.get("epochs") or recipe.trainer.epochs,
        time_s=time_s if time_s is not None else trained.get("time_s", trained.get("wall_time_s")),
        hardware=hardware or trained.get("hardware") or device,
        selection=_selection(run_config.metrics, trained, recipe.trainer.ema_decay, recipe.trainer.select_from),
        second_stage=trained.get("code_prior"),
        started_from=started_from(recipe.trainer.init_from, registry),
    )

    records = _combine_metrics(metrics if metrics is not None else run_config.metrics,
                               likelihood=run_config.model.likelihood.name, binarization=recipe.data.binarize,
                               weights_dtype=dtype, name=name)

    previous = entry_path(name, registry)
    old = read_entry(previous) if previous.is_file() else None
    if pack is None and old is not None:
        pack = old.pack
    # the shipped file: exactly the bytes users load; metrics are to be measured on it
    shipped_rel = f"weights/{name}.safetensors"
    with tempfile.TemporaryDirectory(prefix="vaezoo-publish-") as tmp:
        folder = Path(tmp) / name
        exp = ExperimentConfig(name=name, description=description or experiment.description, model=run_config.model,
                               data=recipe.data, trainer=recipe.trainer)
        if samples is not None:
            folder.mkdir(parents=True)
            (folder / SAMPLES_NAME).write_bytes(samples)
        model.save_pretrained(folder, experiment=exp, metrics=[m.model_dump(mode="json") for m in records] or None,
                        training=run.model_dump(mode="json", exclude_none=True), dtype=_DTYPES[dtype],
                        repo_id=repo_id, license=license,
                        samples=None if (folder / SAMPLES_NAME).is_file() else 64)
        weights = folder / "model.safetensors"
        sha = sha256_file(weights)
        atomic_write_bytes(shipped_root(pack, registry) / shipped_rel, weights.read_bytes())  # a crash keeps the old file whole
        revision = None
        if push:
            revision = push_folder(folder, repo_id, tag=tag, token=token, commit_message=f"vaezoo: publish {name}").commit
    if revision is None and old is not None and old.weights.sha256 == sha and old.weights.repo_id == repo_id:
        revision = old.weights.revision  # keep a revision pinned by an earlier push when the bytes did not change
    reference = published_reference(answers, registry) if answers else (old.reference if old is not None else None)

    entry = PretrainedEntry(
        name=name,
        description=description or experiment.description,
        config=config_name,
        model=run_config.model,
        weights=HubWeights(repo_id=repo_id, revision=revision, file="model.safetensors", sha256=sha),
        shipped=shipped_rel,
        pack=pack,
        storage_dtype=dtype,
        num_params=model.num_parameters(),
        metrics=records,
        dataset=recipe.data.dataset.name,
        license=license,
        recipe=recipe,
        training=run,
        reference=reference,
        # a re-measurement holds for the bytes it scored: new weights start without one
        rescorings=old.rescorings if old is not None and old.weights.sha256 == sha else [],
        arithmetic_checks=old.arithmetic_checks if old is not None and old.weights.sha256 == sha else [],
        costs=old.costs if old is not None and old.weights.sha256 == sha else None,
        use_for=old.use_for if old is not None else "",
        date=date or _dt.date.today(),
    )
    written = write_entry(entry, registry)
    moved_from = shipped_path(old, registry) if old is not None and old.shipped and old.pack != pack else None
    if moved_from is not None and moved_from.is_file():
        moved_from.unlink()  # the entry now points at the pack (or back at registry/): one copy, where it says
    return written


def add_metrics(name: str, metrics: Union[str, Path, Mapping, list, Sequence[Union[str, Path]]], *,
                registry: Union[str, Path, None] = None) -> tuple[Path, list[str]]:
    """Join new measurements of a published model to its entry (``vaezoo publish-metrics``).

    ``metrics`` as for :func:`publish_run`, measured on the published name (its shipped weights).
    A metric the entry has already is replaced by a measurement at least as precise (more
    examples, samples); a less precise one is left out. The weights, recipe and training facts
    are untouched. Returns the entry's path and the names left out.
    """
    registry = Path(registry) if registry is not None else resources.registry_dir()
    entry = _entry(name, registry)
    for report in _metric_sources(metrics):  # the published weights are the ones a new figure must measure
        if _is_eval_report(report) and report["protocol"].get("model") != name:
            raise HubError(f"the report measured {report['protocol'].get('model')!r}, not the published {name!r}: "
                           f"score the published weights (vaezoo eval {name} ...)")
    merged = {m.name: m for m in entry.metrics}
    left_out = []
    for record in _combine_metrics(metrics, likelihood=entry.model.likelihood.name,
                                   binarization=entry.recipe.data.binarize, weights_dtype=entry.storage_dtype,
                                   name=name):
        kept = merged.get(record.name)
        if kept is not None and _precision(record) < _precision(kept):
            left_out.append(record.name)
        else:
            merged[record.name] = record
    return write_entry(entry.model_copy(update={"metrics": list(merged.values())}), registry), left_out


def _entry(name: str, registry: Path) -> PretrainedEntry:
    path = entry_path(name, registry)
    if not path.is_file():
        raise HubError(f"no registry entry '{name}' in {registry}: publish its run first (vaezoo publish RUN {name} "
                       f"ORG/{name})")
    return read_entry(path)


def add_rescoring(name: str, report: Mapping[str, Any], command: str, metric: str = "iwae_nll", *,
                  registry: Union[str, Path, None] = None) -> Path:
    """Record an independent re-measurement of ``metric`` (a ``vaezoo eval`` report of the published
    name's shipped weights, as ``benchmarks/rescore.py`` merges it) beside the published value.

    Independent means another noise seed on the same test images, so that the difference measures
    the estimator's noise and nothing else; the same seed, other images, or a metric the entry
    does not publish are refused. A re-measurement with the same metric and seed replaces the old one.
    """
    registry = Path(registry) if registry is not None else resources.registry_dir()
    entry = _entry(name, registry)
    protocol, measured = report.get("protocol", {}), report.get("metrics", {}).get(metric)
    published = next((m for m in entry.metrics if m.name == metric), None)
    if protocol.get("model") != name:
        raise HubError(f"the report measured {protocol.get('model')!r}, not the published name {name!r}")
    if measured is None or published is None:
        raise HubError(f"{metric!r} must be both in the report and among {name}'s published metrics to re-measure it")
    if protocol.get("seed") == published.protocol.seed:
        raise HubError(f"the report used seed {published.protocol.seed}, the published measurement's: an independent "
                       f"re-measurement needs another (--seed 1)")
    if metric == "iwae_nll" and protocol.get("iw_samples") != published.protocol.importance_samples:
        raise HubError(f"the report used k={protocol.get('iw_samples')} importance samples; {name}'s {metric} was "
                       f"measured with k={published.protocol.importance_samples}: a re-measurement uses the same k")
    if protocol.get("examples") != published.protocol.num_examples or protocol.get("split") != published.protocol.split:
        raise HubError(f"the report scored {protocol.get('examples')} {protocol.get('split')} images; {name}'s "
                       f"{metric} was measured on {published.protocol.num_examples} {published.protocol.split} images")
    check = Rescoring(metric=metric, seed=protocol["seed"], value=measured["value"], stderr=measured.get("stderr"),
                      num_examples=protocol["examples"], sha256=entry.weights.sha256, command=command)
    kept = [c for c in entry.rescorings if (c.metric, c.seed) != (metric, check.seed)]
    return write_entry(entry.model_copy(update={"rescorings": [*kept, check]}), registry)


def add_costs(name: str, costs: Mapping[str, Any], *, registry: Union[str, Path, None] = None) -> Path:
    """Record what using the published model costs (``benchmarks/model_costs.py --record``): the
    timings hold for the entry's weights, so they are pinned to its sha256."""
    registry = Path(registry) if registry is not None else resources.registry_dir()
    entry = _entry(name, registry)
    measured = ModelCosts(**costs, sha256=entry.weights.sha256)
    return write_entry(entry.model_copy(update={"costs": measured}), registry)


def add_arithmetic_check(name: str, metric: str, num_examples: int, float32: float, fast: float, stderr: float,
                         command: str, *, registry: Union[str, Path, None] = None) -> Path:
    """Record that ``metric`` of the published name, scored with a reduced-precision decoder, was
    scored in float32 too on its first ``num_examples`` test images with the same noise. Replaces
    an earlier check of the same metric."""
    registry = Path(registry) if registry is not None else resources.registry_dir()
    entry = _entry(name, registry)
    if not any(m.name == metric for m in entry.metrics):
        raise HubError(f"{metric!r} is not among {name}'s published metrics")
    check = ArithmeticCheck(metric=metric, num_examples=num_examples, float32=float32, fast=fast, stderr=stderr,
                            sha256=entry.weights.sha256, command=command)
    kept = [c for c in entry.arithmetic_checks if c.metric != metric]
    return write_entry(entry.model_copy(update={"arithmetic_checks": [*kept, check]}), registry)
