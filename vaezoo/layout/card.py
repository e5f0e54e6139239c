"""The model card: ``README.md`` with Hub YAML front matter and a body a person reads.

Front matter: ``library_name: vaezoo``, tags, license, datasets, and the metrics as
``model-index`` (the Hub's format for evaluation results). Body: what the model is, how to
load it, the metrics with their protocol, the sample grid when there is one, the recipe.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

import yaml

from ..parts.metrics import find_metric

__all__ = ["render_card", "metric_records", "describe_protocol", "pointing_to", "HF_DATASET_IDS", "SAMPLES_NAME"]

SAMPLES_NAME = "samples.png"

# vaezoo dataset names -> Hub dataset ids, so the card links the dataset's Hub page
HF_DATASET_IDS = {"fashion-mnist": "zalando-datasets/fashion_mnist", "mnist": "ylecun/mnist"}

# what each part of a model config is, for the card's table
_PART_LABELS = {"prior": "prior p(z)", "likelihood": "likelihood p(x\\|z)"}

# protocol fields, in the order a reader wants them
_PROTOCOL_KEYS = ("split", "num_examples", "importance_samples", "likelihood", "binarization", "weights_dtype")


def metric_records(metrics: Any) -> list[dict[str, Any]]:
    """Metrics in any of the shapes vaezoo writes, as ``[{"name", "value", ...protocol}]``.

    Accepted: a list of records (the registry's form), ``{name: number}`` (what a training
    loop logs), or ``{name: {"value": ..., ...protocol}}``. Anything else is left out.
    """
    if not metrics:
        return []
    if isinstance(metrics, Mapping):
        records = []
        for name, value in metrics.items():
            if isinstance(value, Mapping) and "value" in value:
                records.append({"name": str(name), **value})
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                records.append({"name": str(name), "value": value})
        return records
    if isinstance(metrics, Iterable) and not isinstance(metrics, (str, bytes)):
        out = []
        for item in metrics:
            record = item.model_dump(mode="json") if hasattr(item, "model_dump") else item
            if isinstance(record, Mapping) and "name" in record and "value" in record:
                flat = {k: v for k, v in record.items() if k != "protocol"}
                flat.update(record.get("protocol") or {})
                out.append(flat)
        return out
    return []


def describe_protocol(record: Mapping[str, Any]) -> str:
    words = []
    if record.get("split"):
        n = record.get("num_examples")
        words.append(f"{record['split']} split" + (f", {n:,} images" if isinstance(n, int) else ""))
    unit = record.get("unit")
    if record.get("features"):
        return "; ".join(words + [_describe_samples(record)])
    if record.get("probe"):
        return "; ".join(words + [f"{record['probe']}, fitted on the training images' posterior means",
                                  f"inputs {record.get('binarization', 'as the model takes them')}"])
    metric = find_metric(str(record.get("name", "")))
    if metric is not None and metric.description:  # what the number is, as its registered metric says
        words.append(metric.description)
    elif record.get("importance_samples"):
        k = record["importance_samples"]
        s = record.get("mc_samples") or 1
        words.append((f"ELBO, S = {s}" if s > 1 else "ELBO") if k == 1 else f"k = {k:,} importance samples")
    if record.get("likelihood"):
        words.append(f"{record['likelihood']} likelihood")
    if record.get("binarization"):
        b = record["binarization"]
        if b == "none":
            words.append("grayscale targets (no binarization)")
        elif b.startswith("none ("):  # as the evaluation writes it: "none (grayscale in [0, 1])"
            words.append(f"no binarization {b[5:]}")
        else:
            words.append(b if b.startswith("binarized") else f"{b} binarization")
    if record.get("weights_dtype"):
        words.append(f"{record['weights_dtype']} weights")
    if record.get("decoder_arithmetic") == "bfloat16":
        words.append("decoder in bf16, densities in float32")
    if record.get("conditioned_on"):
        words.append(f"conditioned on the {record['conditioned_on']}: a bound on log p(x | y)")
    if record.get("code_prior") and unit in ("nats", "bits/dim", None):
        words.append(f"codes scored by the {record['code_prior']} prior (a deterministic posterior: the ELBO is "
                     f"the importance-weighted bound for every k)")
    return "; ".join(words) or "-"


def _describe_samples(record: Mapping[str, Any]) -> str:
    features = f"in {record['features']} features (not comparable with Inception FID)"
    if not record.get("samples"):
        return f"reconstructions (decoder means at the posterior means) vs the grey test images, {features}"
    source = "the fitted Gaussian mixture prior" if record.get("sampled_from") == "gmm" else "the training prior"
    return (f"{record['samples']:,} samples (decoder means, seed {record.get('seed') or 0}) from {source} vs the grey "
            f"test images, {features}")


def _load_line(load_ref: str) -> str:
    return f"model = vaezoo.load({load_ref!r})  # eval mode"


_LOAD_LINE = re.compile(r"^model = vaezoo\.load\((?:'[^'\n]*'|\"[^\"\n]*\")\)  # eval mode$", re.MULTILINE)


def pointing_to(card: str, load_ref: str) -> str:
    """``card`` with its "How to load" line naming ``load_ref``: a card written beside a local run
    says ``vaezoo.load('runs/x')``, and the copy pushed to the Hub must name the repo instead. A
    card whose line was edited away is left as it is."""
    return _LOAD_LINE.sub(lambda _: _load_line(load_ref), card, count=1)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if math.isfinite(value) and abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def _front_matter(name: str, *, license: str | None, tags: list[str], dataset: str | None,
                  records: list[dict[str, Any]]) -> dict[str, Any]:
    front: dict[str, Any] = {"library_name": "vaezoo"}
    if license:  # a user's model carries the license its owner gives, or none
        front["license"] = license
    front["tags"] = tags
    dataset_id = HF_DATASET_IDS.get(dataset or "", dataset)
    if dataset_id:
        front["datasets"] = [dataset_id]
    numeric = [r for r in records if isinstance(r.get("value"), (int, float)) and not isinstance(r["value"], bool)]
    if numeric:
        by_split: dict[str, list[dict[str, Any]]] = {}
        for r in numeric:
            by_split.setdefault(str(r.get("split") or "test"), []).append(r)
        results = []
        for split, rows in by_split.items():
            results.append({
                "task": {"type": "unconditional-image-generation", "name": "Density estimation"},
                "dataset": {"name": dataset or "unknown", "type": dataset_id or "unknown", "split": split},
                "metrics": [
                    {"type": r["name"], "value": float(r["value"]), "name": f"{r['name']} ({r.get('unit', 'nats')})"}
                    for r in rows
                ],
            })
        front["model-index"] = [{"name": name, "results": results}]
    return front


def render_card(
    *,
    name: str,
    config: Mapping[str, Any],
    num_parameters: int,
    load_ref: str,
    metrics: Any = None,
    license: str | None = None,
    tags: Iterable[str] = (),
    has_samples: bool = False,
    training: Mapping[str, Any] | None = None,
    latent: str = "?",
) -> str:
    """The README.md text. ``config`` is the checkpoint's config.json as a dict; ``latent`` the
    model config's ``latent_summary()``."""
    model = config["model"]
    data = config.get("data") or {}
    trainer = config.get("trainer")
    dataset = (data.get("dataset") or {}).get("name") if isinstance(data.get("dataset"), Mapping) else data.get("dataset")
    records = metric_records(metrics)
    family = model.get("family", "vae")
    all_tags = ["vaezoo", "vae", "variational-autoencoder", "pytorch", "safetensors", f"vaezoo-{family}"]
    all_tags += [t for t in tags if t not in all_tags]
    if dataset and dataset not in all_tags:
        all_tags.append(dataset)
    front = _front_matter(name, license=license, tags=all_tags, dataset=dataset, records=records)

    def part(spec: Any) -> str:
        if isinstance(spec, str):
            return f"`{spec}`"
        params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
        return f"`{spec['name']}`" + (f" ({params})" if params else "")

    parts = [(key, value) for key, value in model.items() if isinstance(value, Mapping) and "name" in value]
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
        f"# {name}", "",
        f"A variational auto-encoder of the `{family}` family from [vaezoo](https://github.com/vaezoo/vaezoo): "
        f"{num_parameters:,} parameters, latent {latent}, "
        f"input {' x '.join(str(s) for s in model['input_shape'])}"
        + (f", trained on {dataset}." if dataset else "."),
        "",
        "| part | choice |", "|---|---|",
        *[f"| {_PART_LABELS.get(key, key)} | {part(value)} |" for key, value in parts],
        "",
        "The weights are `model.safetensors`; `config.json` names the registered parts, so no code "
        "travels with the checkpoint.",
        "",
        "## How to load", "",
        "```python", "import vaezoo", "", _load_line(load_ref),
        "x_hat = model.reconstruct(x)          # x: (B, " + ", ".join(str(s) for s in model["input_shape"]) + ") in [0, 1]",
        "images = model.sample(16)", "```", "",
    ]
    lines += ["## Metrics", ""]
    if records:
        lines += ["Negative log-likelihood bounds in nats per image (lower is better).", "",
                  "| metric | value | protocol |", "|---|---|---|"]
        lines += [f"| {r['name']} | {_format_value(r['value'])} {r.get('unit', 'nats')} | {describe_protocol(r)} |"
                  for r in records]
        lines.append("")
    else:
        lines += ["No metrics were recorded with this checkpoint.", ""]
    if has_samples:
        lines += ["## Samples", "", f"![samples from the prior]({SAMPLES_NAME})", "",
                  "Means of p(x|z) for z drawn from the prior.", ""]
    if trainer or training:
        lines += ["## Training recipe", ""]
        if training:
            lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in training.items()]
            lines.append("")
        if data:
            lines += ["Data:", "", "```yaml", yaml.safe_dump({"data": dict(data)}, sort_keys=False).rstrip(), "```", ""]
        if trainer:
            lines += ["Trainer:", "", "```yaml", yaml.safe_dump({"trainer": dict(trainer)}, sort_keys=False).rstrip(),
                      "```", ""]
    lines += [f"Written by vaezoo {config.get('vaezoo_version', '?')}."]
    return "\n".join(lines) + "\n"
