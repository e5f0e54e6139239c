"""registry/: every published entry is checked; the schema, publish tool and docs on a synthetic one."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vaezoo
from vaezoo import resources
from vaezoo._registry import natural_key
from vaezoo.data.factors import FACTOR_DATASETS
from vaezoo.errors import ConfigError, HubError
from vaezoo.maintenance.models_doc import DEFAULT_OUT, priors_picture, render_models_md, samples_picture
from vaezoo.evaluation.quality import supports_gmm_prior
from vaezoo.models import PointLatents
from vaezoo.parts.metrics import METRICS
from vaezoo.maintenance.retire import retire, starts_from
from vaezoo.maintenance.publish import add_costs, add_metrics, add_rescoring, normalize_metrics, publish_run
from vaezoo.hub.packs import PACKS
from vaezoo.hub.index import (
    PretrainedEntry, PublishedReference, list_entries, read_entry, sha256_file, shipped_path, write_entry,
)

REGISTRY = resources.registry_dir()
ENTRY_FILES = sorted(REGISTRY.glob("*.json"))
SHIPPED_FILES = [p for p in ENTRY_FILES if read_entry(p).retired is None]  # retired entries keep no weights here
# -ELBO re-measured on the test set must land within this many nats of the recorded value:
# ELBO noise with S=10 draws over 10,000 images is ~0.05 nats; fp16 rounding moves it far less
NEG_ELBO_TOLERANCE = 0.5


# ------------------------------------------------------------------------ the real registry

QUALITY_METRICS = ("fd", "kid", "precision", "recall", "density", "coverage", "class-coverage")


def test_registry_index_is_consistent_and_documented():
    entries = list_entries()
    # the index lists names in natural order, as vaezoo.list_models does
    assert [e.name for e in entries] == sorted((p.stem for p in ENTRY_FILES), key=natural_key)
    assert set(vaezoo.list_models(pretrained=True)) == {e.name for e in entries if e.retired is None}
    # docs/models.md is generated from the registry, never typed: it must be what the generator writes
    assert DEFAULT_OUT.read_text() == render_models_md(entries), "run: python -m vaezoo.maintenance.models_doc"


MODEL_CAP_BYTES = 16_000_000  # registry/README.md, "The weight budget" (the archives' cap: tests/test_packaging.py)


def test_the_shipped_weights_keep_to_the_model_cap():
    # vaezoo's own archives (pack None) and each weight pack hold exactly the files their entries name
    folders = {None: REGISTRY / "weights", **{key: pack.source_folder(REGISTRY) / "weights" for key, pack in PACKS.items()}}
    for key, folder in folders.items():
        sizes = {p.name: p.stat().st_size for p in folder.glob("*.safetensors")}
        assert not {n: s for n, s in sizes.items() if s > MODEL_CAP_BYTES}
        shipped = {Path(e.shipped).name for e in map(read_entry, ENTRY_FILES) if e.shipped and e.pack == key}
        assert set(sizes) == shipped, f"every file in {folder} belongs to an entry of that pack, and no more"


@pytest.mark.parametrize("path", ENTRY_FILES, ids=[p.stem for p in ENTRY_FILES])
def test_published_entry(path: Path):
    entry = read_entry(path)  # schema, with errors naming the file and key
    assert entry.config in vaezoo.list_models(), f"configs/{entry.config}.yaml is gone"
    assert (entry.name in vaezoo.list_models(pretrained=True, family=entry.model.family)) == (entry.retired is None)
    if entry.name != entry.config:  # a run of a config under a name of its own (another seed): found by that name
        import argparse

        from vaezoo.cli.evaluate import data_config

        assert data_config(argparse.Namespace(ref=entry.name)) == entry.recipe.data
    # the config is what training builds; a fitted code prior joins the entry's architecture afterwards
    assert vaezoo.get_config(entry.config).model == entry.model.as_trained(), "the entry's architecture left its config"
    model = vaezoo.create(entry.model)
    assert model.num_parameters() == entry.num_params
    if entry.retired is None:
        assert entry.shipped, "entries in this repository ship their weights (vaezoo.load works with no network)"
        shipped = shipped_path(entry)  # registry/weights/, or the checkout's weight pack folder
        assert sha256_file(shipped) == entry.weights.sha256
        assert {str(t.dtype).removeprefix("torch.") for t in load_file(str(shipped)).values()
                if t.is_floating_point()} == {entry.storage_dtype}
    else:  # history: superseded by a shipped model of the same size and row that scores better,
        # or a seed replicate whose twin (the same config, another trainer.seed) ships
        newer = read_entry(REGISTRY / f"{entry.retired.superseded_by}.json")
        assert newer.shipped and newer.retired is None and newer.num_params == entry.num_params
        if _is_seed_replicate(entry, newer):
            assert entry.recipe.trainer.seed != newer.recipe.trainer.seed
        else:
            assert (newer.reference and newer.reference.row) == (entry.reference and entry.reference.row)
            nll = {e.name: next(m.value for m in e.metrics if m.name == "iwae_nll") for e in (entry, newer)}
            assert nll[newer.name] < nll[entry.name]
        with pytest.raises(HubError, match=f"kept as history.*Load '{newer.name}'.*git show {entry.retired.commit}"):
            vaezoo.load(entry.name, local_files_only=True)
    if entry.model.family == "vqvae":  # discrete codes: the bound through the code prior, and a live codebook
        assert {m.name for m in entry.metrics} >= {"neg_elbo", "neg_elbo_bpd", "mse", "psnr", "codebook_usage",
                                                   "perplexity"}
        assert entry.model.code_prior is not None and entry.training.second_stage["selected_epoch"] >= 1
        # no dead codes: the codebook's entries, which a hierarchical quantizer has per level (its paths are
        # combinations of them, and a tree that clusters its data leaves many combinations unused)
        hierarchical = hasattr(model.quantizer, "digits")
        usage = next(m for m in entry.metrics if m.name == ("level_usage" if hierarchical else "codebook_usage"))
        assert usage.value >= 0.9 and usage.protocol.split == "test" and usage.protocol.num_examples == 10000
        assert all(m.protocol.code_prior == entry.model.code_prior.name for m in entry.metrics
                   if m.name in ("neg_elbo", "neg_elbo_bpd"))
    elif isinstance(model, PointLatents):  # a deterministic encoder: no density, so no bound to publish
        assert not {m.name for m in entry.metrics} & {"neg_elbo", "iwae_nll", "active_units"}
        assert entry.training.selection["val_loss"] > 0, "selected on its validation loss, recorded"
    elif entry.dataset in FACTOR_DATASETS:  # a disentanglement study model: its bounds and every score
        disentanglement = {name for name in METRICS.names() if METRICS.get(name).suite == "disentanglement"}
        assert {m.name for m in entry.metrics} >= {"neg_elbo", "recon", "active_units"} | disentanglement, \
            f"vaezoo eval {entry.name} --iw-samples 0 -o A; vaezoo eval {entry.name} --disentanglement -o B"
        assert all(m.protocol.split == "test" and m.protocol.num_examples == 2458 for m in entry.metrics
                   if m.name in ("neg_elbo", "recon"))
        assert entry.training.selection["val_examples"] == entry.recipe.data.val_size
    else:
        assert {m.name for m in entry.metrics} >= {"neg_elbo", "iwae_nll", "active_units"}
        assert any(m.protocol.importance_samples >= 5000 for m in entry.metrics if m.name == "iwae_nll")
    # a model trained on binary images is scored on the fixed binary test draw, a grayscale one on grey levels
    # (its samples are set against the grey test images, whatever it was trained on)
    binarized = entry.recipe.data.binarize != "none"
    assert all(m.protocol.binarization.startswith("binarized" if binarized else "none") for m in entry.metrics
               if not m.protocol.features)
    if entry.reference is not None:  # answers a published row: selected on its validation split, never on test
        selection = entry.training.selection
        assert selection and selection["val_examples"] == entry.recipe.data.val_size == 10000, \
            "a model that answers a published row records the validation -ELBO that selected it"
        assert selection["val_neg_elbo"] > 0 and 1 <= selection["epoch"] <= entry.training.epochs
    for metric in entry.metrics:  # a figure from a bf16 decoder is the float32 one: checked on a subset
        if metric.protocol.decoder_arithmetic == "bfloat16":
            checked = "iwae_nll" if metric.name == "nll_bpd" else metric.name  # the same measurement in bits/dim
            check = next((c for c in entry.arithmetic_checks if c.metric == checked), None)
            assert check is not None, f"python benchmarks/iwae_precision.py --model {entry.name} --limit 1000 --record"
            assert abs(check.difference) < 0.02 and check.num_examples >= 1000
    for check in entry.rescorings:  # an independent re-measurement reproduces the number within its standard error
        published = next(m for m in entry.metrics if m.name == check.metric)
        assert check.seed != published.protocol.seed and check.num_examples == published.protocol.num_examples
        assert abs(check.value - published.value) <= published.stderr, f"{check.command} disagrees"
    if entry.retired is None:
        loaded = vaezoo.load(entry.name, local_files_only=True)
        assert not loaded.training and all(p.dtype == torch.float32 for p in loaded.parameters())
    assert samples_picture(entry.name).is_file(), f"vaezoo sample {entry.name} -o {samples_picture(entry.name)}"
    if entry.dataset in FACTOR_DATASETS:  # no feature network for these images: samples are looked at, not scored
        return
    # every Fashion-MNIST model: sample quality under the training prior, and the fitted mixture's where it has one
    names = {m.name for m in entry.metrics}
    priors = ["", "@gmm"] if supports_gmm_prior(model) else [""]
    assert {f"{base}-fashion-v1{prior}" for base in QUALITY_METRICS for prior in priors} <= names, \
        f"vaezoo eval {entry.name} --fid [--prior gmm] -o FILE, then vaezoo publish-metrics {entry.name} FILE"
    assert all(m.protocol.samples == 10000 and m.protocol.num_examples == 10000 for m in entry.metrics
               if m.protocol.features and m.protocol.samples)
    assert "fd-recon-fashion-v1" in names and (model.conditional or "probe-accuracy" in names)
    assert len(priors) == 1 or priors_picture(entry.name).is_file(), f"vaezoo sample {entry.name} --prior both"


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED_FILES, ids=[p.stem for p in SHIPPED_FILES])
def test_published_neg_elbo_reproduces(path: Path, fashion_mnist_dir):
    entry = read_entry(path)
    recorded = next((m for m in entry.metrics if m.name == "neg_elbo"), None)
    if recorded is None:  # a model without a bound: its test reconstructions' FD, deterministic, reproduces instead
        recon = next(m for m in entry.metrics if m.name == "fd-recon-fashion-v1")
        model = vaezoo.load(entry.name, local_files_only=True)
        report = vaezoo.sample_quality(model, entry.recipe.data, samples=500, progress=False)
        assert report["fd-recon-fashion-v1"] == pytest.approx(recon.value, abs=1e-3)
        return
    p = recorded.protocol
    model = vaezoo.load(entry.name, local_files_only=True)
    report = vaezoo.evaluate(model, entry.recipe.data, iw_samples=0, elbo_samples=p.mc_samples or 1,
                             seed=p.seed or 0, limit=p.num_examples)
    assert abs(report["neg_elbo"] - recorded.value) <= NEG_ELBO_TOLERANCE


# ------------------------------------------------------------------------ a synthetic entry


@pytest.fixture
def run_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    experiment = vaezoo.get_config("fashion-mlp16", {"trainer.epochs": 2})
    # metrics and training facts in the shape vaezoo.training's loop writes them
    protocol = {"likelihood": "bernoulli", "binarization": "none", "importance_samples": 1}
    metrics = {"test_neg_elbo": {"value": 260.0, "split": "test", "num_examples": 10000, **protocol},
               "val_neg_elbo": {"value": 259.0, "split": "validation", "num_examples": 5000, **protocol}}
    training = {"epochs": 2, "steps": 100, "batch_size": 128, "wall_time_s": 12.5, "device": "cpu", "processes": 1}
    return vaezoo.create("fashion-mlp16").save_pretrained(
        tmp_path / "run", experiment=experiment, metrics=metrics, training=training)


EVAL_REPORT = {  # the shape of `vaezoo eval`'s JSON (vaezoo.evaluation.EvalReport.to_dict)
    "protocol": {"model": "tiny-mlp", "dataset": "fashion-mnist", "split": "test", "examples": 10000,
                 "binarization": "none (grayscale in [0, 1])", "likelihood": "bernoulli", "elbo_samples": 10,
                 "iw_samples": 5000, "seed": 0},
    "metrics": {"neg_elbo": {"value": 250.5, "unit": "nats", "label": "-ELBO", "stderr": 0.4, "protocol": "S=10"},
                "iwae_nll": {"value": 241.25, "unit": "nats", "label": "NLL", "stderr": 0.4, "protocol": "k=5000"},
                "kl": {"value": 20.0, "unit": "nats", "label": "KL", "stderr": 0.1, "protocol": ""}},
}


def test_publish_writes_fp16_weights_and_a_valid_entry(run_dir, tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    metrics = tmp_path / "eval.json"
    metrics.write_text(json.dumps(EVAL_REPORT))
    path = publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=metrics,
                       registry=registry, date=dt.date(2024, 5, 1))
    entry = read_entry(path)
    shipped = registry / "weights" / "tiny-mlp.safetensors"
    assert entry.shipped == "weights/tiny-mlp.safetensors" and sha256_file(shipped) == entry.weights.sha256
    assert entry.weights.revision is None and entry.storage_dtype == "float16"
    assert entry.training.epochs == 2 and entry.training.hardware == "cpu" and entry.training.time_s == 12.5
    assert entry.recipe.trainer.epochs == 2 and entry.num_params == vaezoo.create("fashion-mlp16").num_parameters()
    by_name = {m.name: m for m in entry.metrics}
    assert set(by_name) == {"neg_elbo", "iwae_nll"}  # only the bounds; KL is not a registry metric
    assert by_name["iwae_nll"].protocol.importance_samples == 5000
    assert by_name["neg_elbo"].protocol.importance_samples == 1 and by_name["neg_elbo"].protocol.mc_samples == 10
    assert by_name["neg_elbo"].protocol.weights_dtype == "float16"  # measured on what ships

    # publishing again reproduces the same bytes and sha256 (safetensors files are deterministic)
    again = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=metrics,
                                   registry=registry, date=dt.date(2024, 5, 1)))
    assert again.weights.sha256 == entry.weights.sha256

    # vaezoo.load by name: the fp16 file, back in float32, in eval mode, with no network at all
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    original = vaezoo.load(run_dir)
    model = vaezoo.load("tiny-mlp", local_files_only=True)
    assert not model.training
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value.half().float())

    docs = render_models_md(list_entries(registry))
    assert ("### Grayscale Fashion-MNIST, Bernoulli cross-entropy" in docs
            and "| `tiny-mlp` | vae | 1,079,600 | 16 | 250.50 (test, 10,000) | 241.25 (test, 10,000) | - | - | - |"
            in docs)
    assert "k = 5,000 importance samples" in docs and entry.weights.sha256 in docs


def test_publish_merges_an_elbo_report_and_an_iwae_report(run_dir, tmp_path):
    # the usual flow: -ELBO and active units over the whole test set, the costly IWAE bound on a subset
    elbo_report = {"protocol": {**EVAL_REPORT["protocol"], "iw_samples": 0},
                   "metrics": {"neg_elbo": EVAL_REPORT["metrics"]["neg_elbo"],
                               "active_units": {"value": 12, "unit": "of 16", "label": "active units",
                                                "protocol": "Cov_x(E_q[z_j]) > 0.01"}}}
    iwae_report = {"protocol": {**EVAL_REPORT["protocol"], "examples": 200, "elbo_samples": 1},
                   "metrics": {"neg_elbo": {**EVAL_REPORT["metrics"]["neg_elbo"], "value": 255.0},
                               "iwae_nll": EVAL_REPORT["metrics"]["iwae_nll"],
                               "nll_bpd": {"value": 0.45, "unit": "bits/dim", "label": "NLL bits/dim"}}}
    files = []
    for name, report in (("elbo", elbo_report), ("iwae", iwae_report)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(report))
    registry = tmp_path / "registry"
    entry = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=files,
                                   registry=registry, date=dt.date(2024, 5, 1)))
    by_name = {m.name: m for m in entry.metrics}
    assert set(by_name) == {"neg_elbo", "active_units", "iwae_nll", "nll_bpd"}
    assert by_name["active_units"].value == 12 and by_name["active_units"].unit == "units"
    # both reports have a -ELBO: the one over the whole test set is kept, whichever file comes first
    assert by_name["neg_elbo"].protocol.num_examples == 10000 and by_name["neg_elbo"].value == 250.5
    assert by_name["iwae_nll"].protocol.num_examples == 200
    reversed_order = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16",
                                            metrics=files[::-1], registry=tmp_path / "other"))
    assert {m.name: m.value for m in reversed_order.metrics} == {m.name: m.value for m in entry.metrics}

    docs = render_models_md(list_entries(registry))
    # the reproducibility table: params, protocol, bounds with their test-set sizes, bits/dim of the
    # tightest bound, active units, epochs, training time, hardware
    assert ("| `tiny-mlp` | 1,079,600 | bernoulli, grayscale | 250.50 (test, 10,000) | 241.25 (test, 200) "
            "| 0.450 (NLL) | 12 / 16 | 2 | 12 s | cpu |") in docs
    assert "latent dims with Cov_x(E_q[z_j|x]) > 0.01" in docs
    assert ("reproduce: `vaezoo train configs/fashion-mlp16.yaml --out runs/tiny-mlp --set trainer.epochs=2`, "
            "then `vaezoo eval tiny-mlp --iw-samples 0 --elbo-samples 10` and "
            "`vaezoo eval tiny-mlp --iw-samples 5000 --limit 200 --batch-size 8 --precision float32`") in docs

    # an IWAE run over the whole test set reports a one-sample -ELBO: the S = 10 one is kept
    full_iwae = tmp_path / "iwae-full.json"
    full_iwae.write_text(json.dumps({**iwae_report, "protocol": {**iwae_report["protocol"], "examples": 10000}}))
    entry = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16",
                                   metrics=[full_iwae, files[0]], registry=registry))
    assert {m.name: m.value for m in entry.metrics}["neg_elbo"] == 250.5
    # the same protocol with two different values is a mistake to fix, not to settle silently
    with pytest.raises(HubError, match="'neg_elbo' is given twice under the same protocol"):
        publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16",
                    metrics=[files[0], {**elbo_report, "metrics": {"neg_elbo": {"value": 1.0}}}], registry=registry)


def test_add_metrics_joins_new_measurements_and_keeps_more_precise_ones(run_dir, tmp_path):
    registry = tmp_path / "registry"
    publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=EVAL_REPORT, registry=registry)
    before = read_entry(registry / "tiny-mlp.json")
    subset = {"protocol": {**EVAL_REPORT["protocol"], "examples": 200},
              "metrics": {"iwae_nll": {**EVAL_REPORT["metrics"]["iwae_nll"], "value": 240.0},
                          "neg_elbo_bpd": {"value": 0.46, "unit": "bits/dim", "label": "-ELBO bits/dim"}}}
    path, left_out = add_metrics("tiny-mlp", subset, registry=registry)
    after = read_entry(path)
    assert left_out == ["iwae_nll"]  # measured on 200 images: the entry's 10,000-image value stays
    assert {m.name: m.value for m in after.metrics} == {**{m.name: m.value for m in before.metrics},
                                                        "neg_elbo_bpd": 0.46}
    assert after.weights == before.weights and after.recipe == before.recipe
    with pytest.raises(HubError, match="publish its run first"):
        add_metrics("no-such-model", subset, registry=registry)


def test_the_model_table_is_split_by_protocol_and_says_what_each_model_is_for_and_costs(run_dir, tmp_path):
    registry = tmp_path / "registry"
    publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=EVAL_REPORT, registry=registry)
    binary = {**EVAL_REPORT, "protocol": {**EVAL_REPORT["protocol"], "model": "tiny-bin",
                                          "binarization": "binarized once (seed 7)"}}
    experiment = vaezoo.get_config("fashion-mlp16", {"trainer.epochs": 2, "data.binarize": "dynamic"})
    binarized = vaezoo.create("fashion-mlp16").save_pretrained(
        tmp_path / "bin", experiment=experiment, training={"epochs": 2, "wall_time_s": 5.0, "device": "cpu"})
    publish_run(binarized, "tiny-bin", "alice/tiny-bin", config="fashion-mlp16", metrics=binary, registry=registry)
    entry = read_entry(registry / "tiny-bin.json")
    write_entry(entry.model_copy(update={"use_for": "a binarized baseline"}), registry)
    costs = {"sample_ms": 0.02, "encode_ms": 0.015, "elbo_ms": 0.03, "iwae_ms": 70.0, "iwae_k": 5000,
             "hardware": "1 thread of a test CPU", "threads": 1, "command": "python benchmarks/model_costs.py tiny-bin"}
    add_costs("tiny-bin", costs, registry=registry)
    assert read_entry(registry / "tiny-bin.json").costs.sha256 == entry.weights.sha256  # pinned to these weights
    docs = render_models_md(list_entries(registry))
    binarized_at, grayscale_at = docs.index("### Binarized Fashion-MNIST"), docs.index("### Grayscale Fashion-MNIST")
    assert binarized_at < docs.index("| `tiny-bin` |") < grayscale_at < docs.index("| `tiny-mlp` |")
    assert "| a binarized baseline | 0.02 / 0.015 / 0.03 | 12 min (70 ms/image) |" in docs
    assert "Costs: milliseconds per image on 1 thread of a test CPU" in docs
    assert "so `vaezoo.load(NAME)` works offline" in docs and "@ not pushed yet" in docs
    # timings of other weights are refused, as a rescoring of them is
    stale = read_entry(registry / "tiny-bin.json").model_dump(mode="json")
    stale["costs"]["sha256"] = "0" * 64
    with pytest.raises(ValueError, match="costs timed other weights"):
        PretrainedEntry.model_validate(stale)


def test_a_rescoring_is_recorded_for_another_seed_and_these_weights_only(run_dir, tmp_path):
    registry = tmp_path / "registry"
    (registry / "references").mkdir(parents=True)
    (registry / "references" / "published.json").write_text(json.dumps({"rows": {"paper/vae": {
        "source": "A paper, Table 1", "row": "VAE", "metric": "iwae_nll", "value": 241.0, "stderr": 0.1}}}))
    publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=EVAL_REPORT, registry=registry,
                answers="paper/vae")
    again = {"protocol": {**EVAL_REPORT["protocol"], "seed": 1},
             "metrics": {"iwae_nll": {**EVAL_REPORT["metrics"]["iwae_nll"], "value": 241.31}}}
    with pytest.raises(HubError, match="seed 0, the published measurement's"):
        add_rescoring("tiny-mlp", EVAL_REPORT, "python benchmarks/rescore.py tiny-mlp", registry=registry)
    with pytest.raises(HubError, match="scored 200 test images"):
        add_rescoring("tiny-mlp", {**again, "protocol": {**again["protocol"], "examples": 200}}, "cmd",
                      registry=registry)
    with pytest.raises(HubError, match="not the published name 'tiny-mlp'"):
        add_rescoring("tiny-mlp", {**again, "protocol": {**again["protocol"], "model": "other"}}, "cmd",
                      registry=registry)
    add_rescoring("tiny-mlp", again, "first", registry=registry)
    entry = read_entry(add_rescoring("tiny-mlp", again, "python benchmarks/rescore.py tiny-mlp --seed 1",
                                     registry=registry))
    assert [(c.metric, c.seed, c.value, c.num_examples, c.command) for c in entry.rescorings] == [
        ("iwae_nll", 1, 241.31, 10000, "python benchmarks/rescore.py tiny-mlp --seed 1")]  # the same seed: replaced
    assert entry.rescorings[0].sha256 == entry.weights.sha256
    assert "| 241.25 ± 0.40 (10,000 test images) | 241.31 (seed 1) | +0.25 |" in render_models_md(list_entries(registry))
    # publishing the same bytes again keeps it; other bytes (float32 this time) drop it
    kept = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=EVAL_REPORT,
                                  registry=registry))
    assert kept.rescorings == entry.rescorings
    fresh = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=EVAL_REPORT,
                                   registry=registry, dtype="float32"))
    assert fresh.weights.sha256 != entry.weights.sha256 and fresh.rescorings == []
    # and an entry may not claim one for weights it did not score
    data = json.loads((registry / "tiny-mlp.json").read_text())
    data["rescorings"] = [entry.rescorings[0].model_dump(mode="json")]
    (registry / "tiny-mlp.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="rescorings.0 scored other weights"):
        read_entry(registry / "tiny-mlp.json")


def test_shipped_file_with_wrong_sha_and_no_hub_revision_is_refused(run_dir, tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", registry=registry)
    shipped = registry / "weights" / "tiny-mlp.safetensors"
    shipped.write_bytes(shipped.read_bytes()[:-1] + b"\x00")
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    with pytest.raises(HubError, match="not on the Hub yet.*shipped weights were altered.*reinstall vaezoo$"):
        vaezoo.load("tiny-mlp")
    shipped.unlink()
    with pytest.raises(HubError, match="not on the Hub yet.*no shipped weights file with sha256"):
        vaezoo.load("tiny-mlp")


def test_a_recipe_that_starts_from_a_retired_model_says_how_to_run():
    for entry in list_entries():
        if entry.retired is None:
            continue
        for dependent in starts_from(entry.name):
            config = (resources.configs_dir() / f"{read_entry(REGISTRY / f'{dependent}.json').config}.yaml").read_text()
            assert "trainer.init_from=" in config and ".safetensors" in config, dependent


def _is_seed_replicate(entry, twin) -> bool:
    """The same config, architecture and recipe, but for the trainer's seed."""
    same_trainer = entry.recipe.trainer.model_copy(update={"seed": twin.recipe.trainer.seed}) == twin.recipe.trainer
    return (entry.config == twin.config and entry.model == twin.model and entry.recipe.data == twin.recipe.data
            and same_trainer)


def test_a_retired_entry_keeps_its_pin_and_points_to_the_committed_file(run_dir, tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    for name in ("tiny-mlp", "tiny-mlp-better"):
        publish_run(run_dir, name, f"alice/{name}", config="fashion-mlp16", registry=registry)
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True).stdout  # noqa: E731
    git("init", "-q")
    git("add", "registry")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "publish")
    pinned = read_entry(registry / "tiny-mlp.json").weights.sha256
    with pytest.raises(HubError, match="must be another entry that ships"):
        retire("tiny-mlp", "tiny-mlp", "no", registry=registry)
    retire("tiny-mlp", "tiny-mlp-better", "it scores better", registry=registry)
    entry = read_entry(registry / "tiny-mlp.json")
    assert entry.shipped is None and entry.weights.sha256 == pinned and entry.retired.superseded_by == "tiny-mlp-better"
    assert not (registry / "weights" / "tiny-mlp.safetensors").exists()
    assert entry.retired.commit == git("rev-parse", "HEAD").decode().strip()
    recovered = git("show", f"{entry.retired.commit}:{entry.retired.path}")  # what the load error tells users to run
    assert hashlib.sha256(recovered).hexdigest() == pinned
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    with pytest.raises(HubError, match="kept as history.*it scores better.*Load 'tiny-mlp-better'"):
        vaezoo.load("tiny-mlp")
    with pytest.raises(HubError, match="ships no weights already"):
        retire("tiny-mlp", "tiny-mlp-better", "again", registry=registry)
    data = json.loads((registry / "tiny-mlp.json").read_text())
    data["shipped"] = "weights/tiny-mlp-better.safetensors"
    (registry / "tiny-mlp.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="a retired entry ships no weights"):
        read_entry(registry / "tiny-mlp.json")


def test_publish_refuses_metrics_without_protocol_and_wrong_config(run_dir, tmp_path):
    with pytest.raises(HubError, match="metric 'val_loss' has no protocol: give split, num_examples"):
        publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics={"val_loss": 250.0},
                    registry=tmp_path / "r")
    with pytest.raises(HubError, match="architecture differs from configs/fashion-conv16.yaml"):
        publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-conv16", registry=tmp_path / "r")
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))


def test_metric_records_get_their_protocol_from_the_run():
    records = normalize_metrics({"neg_elbo": {"value": 250.0, "split": "test", "num_examples": 10000,
                                              "importance_samples": 1}},
                                likelihood="bernoulli", binarization="static", weights_dtype="float16", name="x")
    assert records[0].protocol.binarization == "static" and records[0].protocol.likelihood == "bernoulli"


@pytest.mark.parametrize("change, key", [
    (lambda e: e["weights"].update(sha256="abc"), "weights.sha256"),
    (lambda e: e["weights"].update(revision="main"), "weights.revision"),
    (lambda e: e.update(surprise=1), "surprise"),
    (lambda e: e["metrics"][0]["protocol"].pop("num_examples"), "metrics.0.protocol.num_examples"),
    (lambda e: e.update(name="other"), "name"),
])
def test_entry_schema_rejects_bad_entries(run_dir, tmp_path, change, key):
    registry = tmp_path / "registry"
    path = publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", registry=registry,
                       metrics=EVAL_REPORT)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        read_entry(path)
    assert str(path) in str(info.value) and f"{key}:" in str(info.value)


def test_cli_publish_and_docs(run_dir, tmp_path, capsys):
    import vaezoo.cli
    from vaezoo.maintenance.models_doc import main as docs_main

    registry = tmp_path / "registry"
    assert vaezoo.cli.main(["publish", str(run_dir), "tiny-mlp", "alice/tiny-mlp", "--config", "fashion-mlp16",
                            "--registry", str(registry), "--hardware", "1x H100"]) == 0
    assert read_entry(Path(capsys.readouterr().out.strip())).training.hardware == "1x H100"
    out = tmp_path / "models.md"
    assert docs_main(["--registry", str(registry), "--out", str(out)]) == 0
    assert docs_main(["--registry", str(registry), "--out", str(out), "--check"]) == 0
    assert "`tiny-mlp`" in out.read_text()
    out.write_text("hand-edited\n")
    assert docs_main(["--registry", str(registry), "--out", str(out), "--check"]) == 1
    # errors are one line on stderr and exit 2
    capsys.readouterr()
    assert vaezoo.cli.main(["pull", "no-such-name"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no pretrained weights named 'no-such-name'")


def test_publish_defaults_to_the_runs_own_metrics(run_dir, tmp_path):
    entry = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16",
                                   registry=tmp_path / "registry"))
    by_name = {m.name: m for m in entry.metrics}
    assert by_name["test_neg_elbo"].value == 260.0 and by_name["val_neg_elbo"].protocol.split == "validation"
    # the training loop measured its own float32 weights, not the fp16 file that ships
    assert {m.protocol.weights_dtype for m in entry.metrics} == {"float32"}


def test_a_warm_started_entry_pins_its_source_and_counts_its_cost(tmp_path, monkeypatch):
    """trainer.init_from in the recipe: the entry records the source's sha256 and its epochs and
    time (a chain of warm starts adds up); the docs show both costs."""
    registry = tmp_path / "registry"

    def published(name: str, epochs: int, seconds: float, init_from=None):
        experiment = vaezoo.get_config("fashion-mlp16", {"trainer.epochs": epochs, "trainer.init_from": init_from})
        training = {"epochs": epochs, "wall_time_s": seconds, "device": "cpu", "processes": 1}
        folder = vaezoo.create("fashion-mlp16").save_pretrained(tmp_path / name, experiment=experiment,
                                                                 training=training)
        report = {**EVAL_REPORT, "protocol": {**EVAL_REPORT["protocol"], "model": name}}
        return read_entry(publish_run(folder, name, f"alice/{name}", config="fashion-mlp16", metrics=report,
                                      registry=registry))

    parent = published("tiny-a", 40, 600.0)
    child = published("tiny-b", 10, 60.0, init_from="tiny-a")
    grandchild = published("tiny-c", 5, 30.0, init_from="tiny-b")
    elsewhere = published("tiny-d", 5, 30.0, init_from="runs/somewhere")
    assert parent.training.started_from is None
    source = child.training.started_from
    assert (source.source, source.sha256, source.epochs, source.time_s) == ("tiny-a", parent.weights.sha256, 40, 600.0)
    assert (grandchild.training.started_from.epochs, grandchild.training.started_from.time_s) == (50, 660.0)
    assert elsewhere.training.started_from.model_dump() == {"source": "runs/somewhere", "sha256": None,
                                                            "epochs": None, "time_s": None}
    with_reference = child.model_copy(update={"reference": PublishedReference(
        source="a paper", row="a row", metric="iwae_nll", value=240.0)})
    page = render_models_md([with_reference, grandchild])
    assert "| 10 + 40 (`tiny-a`) | 1 min + 10 min |" in page
    assert f"started from `tiny-b` (weights sha256 `{child.weights.sha256[:12]}…`), itself trained 50 epochs" in page
