"""Generate ``docs/models.md`` from ``registry/``: the tables are never typed by hand.

    python -m vaezoo.maintenance.models_doc [--out docs/models.md] [--check]

``--check`` exits 1 when the file on disk differs from what the registry produces (for CI).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..data.factors import FACTOR_DATASETS
from ..evaluation.images import SUITE_FLAGS
from ..evaluation.quality import LEARNED_PRIORS
from ..features import read_fashion_record
from ..layout.card import describe_protocol, metric_records
from ..parts.metrics import METRICS, Metric
from ..schemas import ModelConfig, PartSpec
from ..zoo import get_config
from ..hub.index import PretrainedEntry, PublishedMetric, list_entries
from ..hub.packs import PACKS
from .coverage import coverage_table, read_coverage
from .peer_table import peer_table, read_peer_comparison

__all__ = ["render_models_md", "main", "DEFAULT_OUT", "samples_picture", "reconstructions_picture", "priors_picture"]

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "models.md"
# made with `vaezoo sample NAME -o docs/images/NAME-samples.png` from the shipped weights
IMAGES = DEFAULT_OUT.parent / "images"


def samples_picture(name: str) -> Path:
    return IMAGES / f"{name}-samples.png"


def reconstructions_picture(name: str) -> Path:
    """Made with `vaezoo reconstruct NAME -n 32 -o docs/images/NAME-reconstructions.png`."""
    return IMAGES / f"{name}-reconstructions.png"


def _find(entry: PretrainedEntry, name: str) -> Optional[PublishedMetric]:
    return next((m for m in entry.metrics if m.name == name), None)


def _metric(entry: PretrainedEntry, name: str) -> str:
    m = _find(entry, name)
    if m is None:
        return "-"
    # the test-set size is part of the number: two columns on different subsets differ
    return f"{m.value:.2f} ({m.protocol.split}, {m.protocol.num_examples:,})"


def _bits_per_dim(entry: PretrainedEntry) -> str:
    """The tightest bound's bits/dim: the IWAE NLL's where measured, else the -ELBO's."""
    for name, bound in (("nll_bpd", "NLL"), ("neg_elbo_bpd", "-ELBO")):
        m = _find(entry, name)
        if m is not None:
            return f"{m.value:.3f} ({bound})"
    return "-"


def _parts(model: ModelConfig) -> str:
    return ", ".join(f"{field.replace('_', ' ')} `{spec.name}`" for field, spec in model
                     if isinstance(spec, PartSpec))


def _active_units(entry: PretrainedEntry) -> str:
    m = _find(entry, "active_units")
    return f"{m.value:.0f} / {entry.model.latent_size()}" if m is not None else "-"


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.0f} min"


def _training_time(entry: PretrainedEntry) -> str:
    """The run's time, and the time of the weights it started from (trainer.init_from) beside it."""
    source = entry.training.started_from
    return _duration(entry.training.time_s) + (f" + {_duration(source.time_s)}" if source is not None else "")


def _epochs(entry: PretrainedEntry) -> str:
    source = entry.training.started_from
    if source is None:
        return f"{entry.training.epochs}"
    return f"{entry.training.epochs} + {source.epochs if source.epochs is not None else '?'} (`{source.source}`)"


def _started_from(entry: PretrainedEntry) -> str:
    source = entry.training.started_from
    if source is None:
        return ""
    pinned = f" (weights sha256 `{source.sha256[:12]}…`)" if source.sha256 else ""
    cost = f", itself trained {source.epochs} epochs" if source.epochs is not None else ""
    return f"; started from `{source.source}`{pinned}{cost} (trainer.init_from)"


def _eval_commands(entry: PretrainedEntry) -> list[str]:
    """The ``vaezoo eval`` calls that measure the entry's metrics, read off their protocols."""
    elbo, iwae = _find(entry, "neg_elbo"), _find(entry, "iwae_nll")
    if entry.model.family == "vqvae":  # one deterministic pass gives every metric
        n = elbo.protocol.num_examples if elbo is not None else 10000
        return [f"vaezoo eval {entry.name}" + (f" --limit {n}" if n < 10000 else "")]
    commands = []
    if elbo is not None:
        limit = f" --limit {elbo.protocol.num_examples}" if elbo.protocol.num_examples < 10000 else ""
        commands.append(f"vaezoo eval {entry.name} --iw-samples 0 --elbo-samples {elbo.protocol.mc_samples or 1}"
                        f"{limit}")
    if iwae is not None:
        limit = f" --limit {iwae.protocol.num_examples}" if iwae.protocol.num_examples < 10000 else ""
        # the recorded arithmetic, not this machine's default: a float32 figure is reproduced in float32
        commands.append(f"vaezoo eval {entry.name} --iw-samples {iwae.protocol.importance_samples}{limit} "
                        f"--batch-size 8 --precision {iwae.protocol.decoder_arithmetic or 'float32'}")
    if any(m.protocol.disentanglement for m in entry.metrics):
        commands.append(f"vaezoo eval {entry.name} --disentanglement")
    return commands


def _overrides(entry: PretrainedEntry) -> str:
    """``--set trainer.epochs=N`` when the published run stopped short of its config's recipe, and
    ``--set trainer.seed=S`` when it ran with another seed than its config's."""
    planned = get_config(entry.config).trainer
    epochs = f" --set trainer.epochs={entry.training.epochs}" if entry.training.epochs != planned.epochs else ""
    seed = f" --set trainer.seed={entry.recipe.trainer.seed}" if entry.recipe.trainer.seed != planned.seed else ""
    return epochs + seed


def _second_stage(entry: PretrainedEntry) -> str:
    """The ``vaezoo fit-prior`` call of a VQ-VAE's code prior, read off the entry."""
    stage, prior = entry.training.second_stage, getattr(entry.model, "code_prior", None)
    if not stage or prior is None:
        return ""
    params = "".join(f" --set {k}={v}" for k, v in prior.params.items())
    return f", then `vaezoo fit-prior runs/{entry.name} --prior {prior.name}{params} --epochs {stage['epochs']}`"


def _reference_table(entries: Sequence[PretrainedEntry]) -> list[str]:
    """Each model that answers a published row, beside it: ours, theirs, the difference."""
    answering = [e for e in entries if e.reference is not None]
    if not answering:
        return []
    lines = ["## Against published results", "",
             "Each model beside the published row it answers, under that row's protocol (for binarized "
             "Fashion-MNIST: 50,000 training and 10,000 validation images, dynamic binarization, the test set "
             "binarized once, IWAE with k = 5,000 on all 10,000 test images). Negative differences beat the row. "
             "A published ± is the spread over the paper's runs; ours is the standard error over test images "
             "(the same images for every model, so differences between models are far more certain than it "
             "suggests). Re-scored: the same weights and images scored again with another noise seed "
             "(`python benchmarks/rescore.py NAME --seed 1 --record`), the check that the number is the "
             "model's and not the estimator's luck. A model trained from another's weights (`trainer.init_from`) shows "
             "its own epochs and time first, then those of the weights it started from.", "",
             "| model | answers | published | ours | re-scored | difference | epochs | training time | hardware |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for e in answering:
        r = e.reference
        ours = _find(e, r.metric)
        theirs = f"{r.value:.2f}" + (f" ± {r.stderr:.2f}" if r.stderr is not None else "")
        if ours is None:
            mine, difference = "-", "-"
        else:
            mine = f"{ours.value:.2f}" + (f" ± {ours.stderr:.2f}" if ours.stderr is not None else "")
            bf16 = ", bf16 decoder" if ours.protocol.decoder_arithmetic == "bfloat16" else ""
            mine += f" ({ours.protocol.num_examples:,} test images{bf16})"
            difference = f"{ours.value - r.value:+.2f}"
        again = ", ".join(f"{c.value:.2f} (seed {c.seed})" for c in e.rescorings if c.metric == r.metric) or "-"
        lines.append(f"| `{e.name}` | {r.row} ({r.source}) | {theirs} | {mine} | {again} | {difference} | "
                     f"{_epochs(e)} | {_training_time(e)} | {e.training.hardware or '-'} |")
    return lines + [""]


def _columns(table: str) -> list[Metric]:
    """The registered metrics a summary table shows, left to right."""
    return sorted((METRICS.get(name) for name in METRICS.names() if table in METRICS.get(name).tables),
                  key=lambda m: m.position)


def _cell(entry: PretrainedEntry, name: str, metric: Metric) -> str:
    m = _find(entry, name)
    return "-" if m is None else metric.format_cell(m.value)


def _codes_table(entries: Sequence[PretrainedEntry]) -> list[str]:
    coded = [e for e in entries if e.model.family == "vqvae"]
    if not coded:
        return []
    columns = _columns("codes")
    lines = ["## Discrete codes", "",
             "Models whose latent is a grid of codes: how much of the codebook the test images use, the "
             "reconstruction quality, and bits/dim through the learned code prior (the posterior is deterministic, "
             "so the ELBO is the importance-weighted bound for every k).", "",
             "| model | codes | " + " | ".join(m.column for m in columns) + " | code prior |",
             "|---|---|" + "---:|" * len(columns) + "---|"]
    for e in coded:
        cells = [_cell(e, m.name, m) for m in columns]
        prior = e.model.code_prior.name if e.model.code_prior is not None else "uniform"
        lines.append(f"| `{e.name}` | {e.model.latent_summary()} | " + " | ".join(cells) + f" | {prior} |")
    return lines + [""]


def _disentanglement_table(entries: Sequence[PretrainedEntry]) -> list[str]:
    columns = _columns("disentanglement")
    scored = [e for e in entries if e.dataset in FACTOR_DATASETS and any(_find(e, m.name) for m in columns)]
    if not scored:
        return []
    recipes = sorted({m.protocol.disentanglement for e in scored for m in e.metrics if m.protocol.disentanglement})
    lines = ["## Disentanglement", "",
             "Models trained on a dataset with known factors ([disentanglement](disentanglement.md)), scored on its "
             "whole factor grid with disentanglement_lib's definitions and defaults (" + "; ".join(recipes) + "), "
             "from the posterior means: `vaezoo eval NAME --disentanglement`. The scores in [0, 1] are better "
             "higher; the last two are the codes' dependence on each other, in nats, better lower. -ELBO, its "
             "reconstruction term and its KL are in nats per test image (`vaezoo eval NAME --iw-samples 0`).", "",
             "| model | dataset | -ELBO | recon | KL | " + " | ".join(m.column for m in columns) + " |",
             "|---|---|---:|---:|---:|" + "---:|" * len(columns)]
    for e in scored:
        lines.append(f"| `{e.name}` | {e.dataset} | "
                     + " | ".join("-" if v is None else f"{v:.2f}" for v in _bound_terms(e)) + " | "
                     + " | ".join(_cell(e, m.name, m) for m in columns) + " |")
    return lines + [""] + _seeds_table(scored, columns)


def _dependence_table(entries: Sequence[PretrainedEntry]) -> list[str]:
    """The scores that need no factors, for the models of datasets without them."""
    columns = [m for m in _columns("disentanglement") if "factors" not in m.needs]
    scored = [e for e in entries if e.dataset not in FACTOR_DATASETS and any(_find(e, m.name) for m in columns)]
    if not scored:
        return []
    lines = ["## Dependence between codes", "",
             "How far each model's codes are from independent, measured without factors on the posterior means of "
             "the first 10,000 test images (`vaezoo eval NAME --disentanglement`; every level of a hierarchy "
             "concatenated, 20 bins for the mutual information). Lower is more independent; both are in nats. Not "
             "measured: VQ codes (discrete) and categorical latents (their probabilities sum to one, a singular "
             "covariance).", "",
             "| model | family | latent | " + " | ".join(m.column for m in columns) + " |",
             "|---|---|---:|" + "---:|" * len(columns)]
    for e in scored:
        lines.append(f"| `{e.name}` | {e.model.family} | {e.model.latent_summary()} | "
                     + " | ".join(_cell(e, m.name, m) for m in columns) + " |")
    return lines + [""]


def _bound_terms(entry: PretrainedEntry) -> list[Optional[float]]:
    """-ELBO, its reconstruction term and its KL (their difference: the KL of every level)."""
    neg_elbo, recon = _find(entry, "neg_elbo"), _find(entry, "recon")
    kl = neg_elbo.value - recon.value if neg_elbo is not None and recon is not None else None
    return [None if neg_elbo is None else neg_elbo.value, None if recon is None else recon.value, kl]


def _seeds_table(scored: Sequence[PretrainedEntry], columns: Sequence[Metric]) -> list[str]:
    """One row per config trained with several seeds: each score's mean over the seeds, and its range."""
    by_config: dict[str, list[PretrainedEntry]] = {}
    for e in scored:
        by_config.setdefault(e.config, []).append(e)
    repeated = {config: members for config, members in by_config.items() if len(members) > 1}
    if not repeated:
        return []
    lines = ["The same configs over their seeds (`--set trainer.seed=S`): the mean, and the range below it.", "",
             "| config | seeds | -ELBO | recon | KL | " + " | ".join(m.column for m in columns) + " |",
             "|---|---|" + "---:|" * (3 + len(columns))]
    for config, members in repeated.items():
        per_entry = [_bound_terms(e) + [None if (m := _find(e, c.name)) is None else m.value for c in columns]
                     for e in members]
        cells = []
        for i, values in enumerate(zip(*per_entry)):
            if any(v is None for v in values):
                cells.append("-")
                continue
            digits = 2 if i < 3 else 3
            cells.append(f"{sum(values) / len(values):.{digits}f}<br>{min(values):.{digits}f}–{max(values):.{digits}f}")
        seeds = ", ".join(str(e.recipe.trainer.seed) for e in members)
        lines.append(f"| `{config}` | {seeds} | " + " | ".join(cells) + " |")
    return lines + [""]


def priors_picture(name: str) -> Path:
    """Made with `vaezoo sample NAME --prior both -n 32 --nrow 8 -o docs/images/NAME-priors.png`."""
    return IMAGES / f"{name}-priors.png"


def _feature_net_facts() -> str:
    record = read_fashion_record()
    return (f"test accuracy {record['test_accuracy']:.2%}, trained on {record['data']['train_images']:,} training "
            f"images by "
            f"`{record['command']}` (seed {record['recipe']['seed']}), float16 weights pinned by sha256 in "
            f"`registry/features/{record['name']}.json`")


def _quality_table(entries: Sequence[PretrainedEntry]) -> list[str]:
    tags = sorted({m.protocol.features for e in entries for m in e.metrics if m.protocol.features})
    columns = _columns("quality")
    plain = [m for m in columns if not m.features]  # measured once per model, whatever the feature network
    if not tags and not any(_find(e, m.name) for e in entries for m in plain):
        return []
    lines = [
        "## Sample quality and representations", "",
        "How good the samples are, and how much of the class the posterior means hold. Each cell of the first "
        "seven columns: samples from the training prior / from a 10-component Gaussian mixture fitted on the "
        "posterior means of the training images (`--prior gmm`; not for conditional models or discrete codes). "
        "Each set is 10,000 decoder means (seed 0) set against the 10,000 grey test images in the features of "
        "a network named in the metric: `fashion-v1` is the zoo's own Fashion-MNIST classifier (its 128-d "
        f"penultimate layer; {_feature_net_facts()}). "
        "**These numbers are not comparable with Inception-FID tables**: other features, another scale.", "",
        "FD: Fréchet distance; KID: kernel distance (unbiased MMD², 100 subsets of 1,000); precision and recall "
        "(Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020), all with k = 5 neighbours; "
        "class coverage: exp(entropy) / 10 of the classes the feature network predicts for the samples (1 for "
        "the balanced test set, 0.1 for one class); FD of reconstructions: the test images' reconstructions, "
        "a ceiling for samples through the same decoder; linear probe: test accuracy of a logistic regression "
        "on the posterior means of the training split (`vaezoo.evaluation.probe`, a fixed recipe). Reproduce "
        "with `vaezoo eval NAME --fid`, `vaezoo eval NAME --fid --prior gmm` and `vaezoo eval NAME --probe`; "
        "the NLL column repeats the table above (grayscale and binarized likelihoods do not compare).", "",
    ]
    for tag in tags or [None]:
        shown = [m for m in columns if tag or not m.features]
        if tag and len(tags) > 1:
            lines += [f"### {tag} features", ""]
        lines += ["| model | NLL (IWAE) | " + " | ".join(m.column for m in shown) + " |",
                  "|---|" + "---:|" * (len(shown) + 1)]
        for e in entries:
            cells = []
            for m in shown:
                if not m.features:
                    cells.append(_cell(e, m.name, m))
                elif m.per_prior:
                    cells.append(" / ".join(_cell(e, m.published_name(tag, prior), m) for prior in ("model", "gmm")))
                else:
                    cells.append(_cell(e, m.published_name(tag), m))
            if all(c in ("-", "- / -") for c in cells):
                continue
            nll = _find(e, "iwae_nll")
            lines.append(f"| `{e.name}` | {'-' if nll is None else f'{nll.value:.2f}'} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _learned_priors_table(entries: Sequence[PretrainedEntry]) -> list[str]:
    """FD, precision and recall of samples through every prior a model was measured with, where one
    of them was learned after training (two-stage, maf, iaf)."""
    priors = ("model", "gmm", *LEARNED_PRIORS)
    rows = []
    for e in entries:
        tags = sorted({m.protocol.features for m in e.metrics
                       if m.protocol.features and m.protocol.sampled_from in LEARNED_PRIORS})
        for tag in tags:
            cells = [" / ".join(_cell(e, f"{base}-{tag}" + ("" if prior == "model" else f"@{prior}"), METRICS.get(base))
                                for prior in priors) for base in ("fd", "precision", "recall")]
            rows.append(f"| `{e.name}` | {tag} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "### Samples through priors learned after training", "",
        "The same sample-quality protocol with z drawn from, in each cell: the training prior / the fitted "
        "Gaussian mixture / a second-stage VAE trained on the codes (Dai & Wipf 2019) / a masked and an inverse "
        "autoregressive flow fitted on the posterior means (each with its defaults, [math.md](math.md#mixture-"
        "priors); `-`: not measured). Reproduce with `vaezoo eval NAME --fid --prior two-stage` (or `maf`, `iaf`).",
        "",
        "| model | features | FD " + " / ".join(priors) + " | precision | recall |",
        "|---|---|---:|---:|---:|",
        *rows, "",
    ]


def _metrics_table() -> list[str]:
    """Every registered metric: what it is, its unit, what it needs and the command that measures it."""
    lines = ["## Metrics", "",
             "The registered metrics (`vaezoo.parts.metrics`; a new one is one module with `@register_metric`), "
             "with the unit a published number has, what the metric needs from a model and its data, and the "
             "command that measures it. Per-image metrics join `vaezoo eval` for every model that meets their "
             "needs.", "",
             "| metric | unit | better | needs | measured by | what |", "|---|---|---|---|---|---|"]
    for name in METRICS.names():
        m = METRICS.get(name)
        published = m.published_name("<features>")
        better = {True: "higher", False: "lower", None: "-"}[m.higher_is_better]
        what = " ".join((type(m).__doc__ or m.label).split()).replace("``", "`").replace("|", "\\|")
        lines.append(f"| `{published}` | {m.unit} | {better} | {', '.join(m.needs) or '-'} | "
                     f"`{SUITE_FLAGS[m.suite]}` | {what} |")
    return lines + [""]


def _protocol(entry: PretrainedEntry) -> str:
    if entry.dataset in FACTOR_DATASETS:  # generated images, binary or coloured by construction
        return f"{entry.model.likelihood.name}, {entry.dataset}"
    binarization = entry.recipe.data.binarize
    pixels = "grayscale" if binarization == "none" else f"{binarization}ally binarized"
    conditional = any(m.protocol.conditioned_on for m in entry.metrics)
    return f"{entry.model.likelihood.name}, {pixels}" + (", log p(x\\|y) given the class" if conditional else "")


def _revision(entry: PretrainedEntry) -> str:
    w = entry.weights
    pinned = f"`{w.revision[:10]}`" if w.revision else "not pushed yet"
    return f"[{w.repo_id}](https://huggingface.co/{w.repo_id}) @ {pinned}"


# What the numbers of one protocol mean, for the heading of its table (others get a generic one)
_PROTOCOL_NOTES = {
    "bernoulli, dynamically binarized": (
        "Binarized Fashion-MNIST",
        "Bernoulli likelihood on binarized images: a fresh binarization per training batch, the test set binarized "
        "once with a recorded seed (the VampPrior / Exemplar VAE protocol). An NLL here is a true negative "
        "log-likelihood of binary images, comparable with the papers' tables."),
    "bernoulli, dynamically binarized, log p(x\\|y) given the class": (
        "Binarized Fashion-MNIST, given the class",
        "The same binarized protocol, but the bounds are on log p(x | y), the true class y given: -log p(x | y) "
        "can be lower than -log p(x) by up to log 10 = 2.3 nats, so these compare with each other only."),
    "bernoulli, grayscale": (
        "Grayscale Fashion-MNIST, Bernoulli cross-entropy",
        "Grayscale pixels in [0, 1] scored by a Bernoulli likelihood, as the seed notebook and most VAE code do. "
        "That is not a normalized density of grayscale images: the numbers compare within this table only, "
        "never with a binarized NLL."),
    "discretized-logistic, grayscale": (
        "8-bit grayscale Fashion-MNIST, discretized logistic",
        "A discrete likelihood over the 256 levels of each pixel: a true NLL of the 8-bit images, compared with "
        "other models in bits/dim."),
    "logcosh, grayscale": (
        "Grayscale Fashion-MNIST, log-cosh density",
        "Grayscale pixels scored as real numbers by the normalized log-cosh density (the LogCosh VAE's cost with "
        "its constant): a differential log-density, which can be negative; it compares only with models of a "
        "continuous likelihood on the same pixels, never with a Bernoulli or 8-bit NLL."),
    "bernoulli, shapes2d": (
        "shapes2d (binary images with known factors)",
        "vaezoo's generated dSprites-like images (binary, 64 x 64; 2,458 test images), for the disentanglement "
        "study: a Bernoulli likelihood is a true density of these binary images. Their disentanglement scores "
        "are in the table below, and how they were trained in [disentanglement](disentanglement.md)."),
}
_NO_DENSITY = ("Without a density", "Deterministic encoders: no ELBO and no NLL; reconstructions, samples through "
                                    "a prior, and the metrics of the sample-quality table below.")


def _headline_groups(entries: Sequence[PretrainedEntry]) -> list[tuple[str, str, list[PretrainedEntry]]]:
    """The models by protocol, each group with its heading and what its numbers mean: a bound
    compares only with bounds of the same likelihood, pixels and conditioning."""
    groups: dict[str, list[PretrainedEntry]] = {}
    for e in entries:
        groups.setdefault(_protocol(e) if _find(e, "neg_elbo") else "", []).append(e)
    known = list(_PROTOCOL_NOTES)
    order = sorted(groups, key=lambda key: (not key, known.index(key) if key in known else len(known), key))
    return [(*(_NO_DENSITY if not key else _PROTOCOL_NOTES.get(key, (key, "Comparable within this table only."))),
             groups[key]) for key in order]


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2g}" if value < 10 else f"{value:,.0f}"


def _costs(entry: PretrainedEntry) -> tuple[str, str]:
    """``sample / encode / -ELBO`` ms per image, and the published protocol's NLL over the test set."""
    c = entry.costs
    if c is None:
        return "-", "-"
    per_image = f"{_ms(c.sample_ms)} / {_ms(c.encode_ms)} / {_ms(c.elbo_ms)}"
    if c.iwae_ms is None:
        return per_image, "-"
    seconds = c.iwae_ms * 10_000 / 1000
    total = f"{seconds / 3600:.1f} h" if seconds >= 7200 else _duration(seconds)
    return per_image, f"{total} ({_ms(c.iwae_ms)} ms/image)"


def _cost_note(entries: Sequence[PretrainedEntry]) -> str:
    timed = [e.costs for e in entries if e.costs is not None]
    if not timed:
        return ""
    hardware = sorted({c.hardware for c in timed})
    return (f"Costs: milliseconds per image on {' / '.join(hardware)} (`python benchmarks/model_costs.py NAME`), "
            f"to sample (batches of 64), to encode and to score one -ELBO draw (batches of 256); and what the "
            f"published NLL protocol (IWAE, k = {timed[0].iwae_k or 5000}, 10,000 test images) takes there. A GPU "
            f"or more threads divide them.")


def _shipped(e: PretrainedEntry) -> str:
    if e.shipped:
        return f", shipped in {PACKS[e.pack].distribution}" if e.pack else ", shipped"
    return f", retired for `{e.retired.superseded_by}`" if e.retired else ""


def render_models_md(entries: Sequence[PretrainedEntry]) -> str:
    lines = [
        "# Pretrained models",
        "",
        "<!-- Generated by `python -m vaezoo.maintenance.models_doc` from registry/*.json; do not edit by hand. -->",
        "",
        "`vaezoo.load(NAME)` builds the architecture recorded in the entry, finds the weights (shipped with "
        "vaezoo, in the Hugging Face cache, or downloaded from the pinned Hub commit) and refuses any file whose "
        "sha256 differs from the entry's. Numbers are nats per image (lower is better). The models are grouped by "
        "protocol: a number compares only with the numbers of its own table.",
        "",
        "\"Not pushed yet\" in the Hub column means that the weights have not been uploaded to the Hugging Face "
        "Hub so far; they ship inside the vaezoo package (\"shipped\" in the weights column), so `vaezoo.load(NAME)` "
        "works offline, sha256-checked, without the Hub. \"Shipped in vaezoo-weights-KEY\" names a weight pack: a "
        "data-only companion distribution for models the vaezoo package has no room for (`pip install "
        "vaezoo-weights-KEY`; a source checkout finds `weightpacks/KEY/` without it); the entry and its sha256 pin "
        "stay in vaezoo. A retired model (superseded by a better one of the same "
        "architecture, to keep the package within its weight budget) stays here as history: its numbers and "
        "sha256 pin are kept, and its section says how to recover the file.",
        "",
    ]
    if not entries:
        lines += ["No pretrained weights are published yet.", ""]
        return "\n".join(lines)
    for title, text, members in _headline_groups(entries):
        lines += [
            f"### {title}", "", text, "",
            "| model | family | params | latent | -ELBO | NLL (IWAE) | use it for | ms/image: sample / encode / -ELBO "
            "| NLL of the test set |",
            "|---|---|---:|---:|---:|---:|---|---:|---:|",
        ]
        for e in members:
            per_image, nll_cost = _costs(e)
            lines.append(
                f"| `{e.name}`{' (retired)' if e.retired else ''} | {e.model.family} | {e.num_params:,} | {e.model.latent_summary()} | "
                f"{_metric(e, 'neg_elbo')} | {_metric(e, 'iwae_nll')} | {e.use_for or '-'} | {per_image} "
                f"| {nll_cost} |")
        lines.append("")
    note = _cost_note(entries)
    lines += [note, ""] if note else []
    lines += coverage_table(read_coverage(), entries)
    lines += peer_table(read_peer_comparison())
    lines += [
        "## Reproducibility",
        "",
        "What each model costs to train and what it scores on the test set. Every row is reproduced by "
        "`vaezoo train configs/NAME.yaml --out runs/NAME`; the evaluation commands are in each model's "
        "section. Models with different likelihoods or binarization are not comparable with each other.",
        "",
        "| model | params | likelihood, pixels | -ELBO | NLL (IWAE, k=5000) | bits/dim | active units | epochs "
        "| training time | hardware | weights | Hub | license |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for e in entries:
        lines.append(
            f"| `{e.name}` | {e.num_params:,} | {_protocol(e)} | {_metric(e, 'neg_elbo')} | {_metric(e, 'iwae_nll')} "
            f"| {_bits_per_dim(e)} | {_active_units(e)} | {e.training.epochs} | {_training_time(e)} "
            f"| {e.training.hardware or '-'} | {e.storage_dtype}"
            + _shipped(e)
            + f" | {_revision(e)} | {e.license} |"
        )
    lines.append("")
    lines += _reference_table(entries)
    lines += _codes_table(entries)
    lines += _disentanglement_table(entries)
    lines += _dependence_table(entries)
    lines += _quality_table(entries)
    lines += _learned_priors_table(entries)
    lines += _metrics_table()
    for e in entries:
        t = e.recipe.trainer
        evals = _eval_commands(e)
        lines += [f"## {e.name}", ""]
        if e.description:
            lines += [e.description, ""]
        lines += [
            f"- config: `configs/{e.config}.yaml`; family `{e.model.family}`, latent {e.model.latent_summary()}; "
            f"{_parts(e.model)}",
            f"- trained: {e.training.epochs} epochs"
            + (f" in {e.training.time_s / 60:.1f} min" if e.training.time_s else "")
            + (f" on {e.training.hardware}" if e.training.hardware else "")
            + _started_from(e)
            + f"; recipe {t.epochs} epochs, batch {t.batch_size}, {t.optimizer_summary()}, "
            f"binarization {e.recipe.data.binarize}",
            f"- weights: `{e.weights.file}` sha256 `{e.weights.sha256}`; published {e.date.isoformat()}",
            *([f"- retired: superseded by `{e.retired.superseded_by}` ({e.retired.why}); the weights no longer "
               f"ship, and `{e.retired.recover_command(e.name)}` recovers them from vaezoo's repository"]
              if e.retired else []),
            f"- reproduce: `vaezoo train configs/{e.config}.yaml --out runs/{e.name}{_overrides(e)}`"
            + _second_stage(e)
            + "".join(f", then `{c}`" for c in evals[:1])
            + "".join(f" and `{c}`" for c in evals[1:]),
            *(f"- arithmetic: `{c.metric}` was scored with the decoder in bf16; in float32 on the first "
              f"{c.num_examples:,} test images with the same noise it is {c.float32:.4f} against {c.fast:.4f} "
              f"({c.difference:+.4f} ± {c.stderr:.4f} nats): `{c.command}`" for c in e.arithmetic_checks),
            "",
        ]
        if samples_picture(e.name).is_file():
            drawn = "codes drawn from the learned code prior" if e.model.family == "vqvae" else "z drawn from the prior"
            lines += [f"![64 samples of {e.name}](images/{e.name}-samples.png)", "",
                      f"`vaezoo sample {e.name} -n 64` (decoder means of {drawn}, seed 0)", ""]
        if priors_picture(e.name).is_file():
            lines += [f"![samples of {e.name} from its training prior and from a fitted mixture]"
                      f"(images/{e.name}-priors.png)", "",
                      f"`vaezoo sample {e.name} --prior both -n 32 --nrow 8` (decoder means, seed 0: the training "
                      f"prior beside a 10-component Gaussian mixture fitted on the training images' posterior "
                      f"means)", ""]
        if reconstructions_picture(e.name).is_file():
            lines += [f"![test images and reconstructions by {e.name}](images/{e.name}-reconstructions.png)", "",
                      f"`vaezoo reconstruct {e.name} -n 32` (the first 32 test images, each beside its "
                      f"reconstruction)", ""]
        if e.metrics:
            lines += ["| metric | value | protocol |", "|---|---:|---|"]
            for r in metric_records(e.metrics):
                stderr = f" ± {r['stderr']:.2f}" if r.get("stderr") is not None else ""
                value = f"{r['value']:.0f}" if r.get("unit") == "units" else f"{r['value']:.4g}" if r.get(
                    "unit") in ("fraction", "per pixel", "score", "ratio") else f"{r['value']:.3f}"
                lines.append(f"| {r['name']} | {value}{stderr} {r.get('unit', 'nats')} | "
                             f"{describe_protocol(r)} |")
            lines.append("")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaezoo.maintenance.models_doc", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--registry", type=Path, default=None, help="registry folder (default: vaezoo's)")
    parser.add_argument("--check", action="store_true", help="fail if --out is not up to date")
    args = parser.parse_args(argv)
    text = render_models_md(list_entries(args.registry))
    if args.check:
        current = args.out.read_text() if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m vaezoo.maintenance.models_doc", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
