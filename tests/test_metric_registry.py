"""The metric registry: a metric added as one registered module reaches `vaezoo eval`, the published
entry and the generated docs tables, with no other file touched."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
import textwrap

import pytest
import torch

import vaezoo
from vaezoo.cli import main
from vaezoo.errors import UsageError
from vaezoo.evaluation import resolve_data
from vaezoo.hub.index import PublishedMetric, Protocol, read_entry
from vaezoo.layout.card import describe_protocol, metric_records
from vaezoo.maintenance.models_doc import render_models_md
from vaezoo.maintenance.publish import publish_run
from vaezoo.parts.metrics import METRICS, ImageMetric, find_metric, register_metric

USER_MODULE = '''
"""A user's metric: nothing else in vaezoo knows it."""
import vaezoo
from vaezoo.parts.metrics import ImageMetric


@vaezoo.register_metric
class LargestError(ImageMetric):
    """The largest absolute pixel error of the mean reconstruction."""

    name, label, unit = "max-error", "largest pixel error", "per pixel"
    higher_is_better = False
    description = "max over pixels of |x - mean of p(x|z)|, images in [0, 1]"
    tables, column, cell = ("quality",), "largest error", "{:.4f}"

    def measure(self, batch):
        return (batch.reconstruction - batch.x).abs().flatten(1).amax(1)
'''


@pytest.fixture
def user_metric(tmp_path):
    path = tmp_path / "user_metrics.py"
    path.write_text(textwrap.dedent(USER_MODULE))
    spec = importlib.util.spec_from_file_location("user_metrics", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["user_metrics"] = module
    spec.loader.exec_module(module)
    yield module
    METRICS.remove("max-error")
    del sys.modules["user_metrics"]


@pytest.fixture
def run_dir(tmp_path):
    torch.manual_seed(0)
    experiment = vaezoo.get_config("fashion-mlp16")
    return vaezoo.create("fashion-mlp16").save_pretrained(
        tmp_path / "run", experiment=experiment, training={"epochs": 1, "wall_time_s": 1.0, "device": "cpu"})


def test_a_metric_in_one_module_reaches_eval_publishing_and_the_docs(user_metric, run_dir, fashion_mnist_dir,
                                                                     tmp_path, capsys):
    report_path = tmp_path / "eval.json"
    assert main(["eval", str(run_dir), "--iw-samples", "0", "--elbo-samples", "1", "--limit", "200", "--data",
                 str(fashion_mnist_dir), "-q", "-o", str(report_path)]) == 0
    assert "largest pixel error" in capsys.readouterr().out  # the table names it by its label
    report = json.loads(report_path.read_text())
    measured = report["metrics"]["max-error"]
    # the value is the metric of the very images scored: the first 200 test images, as the model takes them
    model = vaezoo.load(run_dir)
    x = resolve_data(vaezoo.get_config("fashion-mlp16").data, limit=200, root=str(fashion_mnist_dir)).images
    with torch.no_grad():
        expected = (model.reconstruct(x) - x).abs().flatten(1).amax(1).double()
    assert measured["value"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert measured["unit"] == "per pixel" and measured["stderr"] > 0

    with pytest.warns(UserWarning, match="measured on .* not on the shipped 'tiny-mlp' weights"):
        entry = read_entry(publish_run(run_dir, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16",
                                       metrics=report_path, registry=tmp_path / "registry", date=dt.date(2026, 12, 6)))
    record = next(m for m in entry.metrics if m.name == "max-error")
    assert record.unit == "per pixel" and record.protocol.num_examples == 200
    assert record.protocol.importance_samples is None  # no bound: the registered metric asks for no samples
    assert "max over pixels" in describe_protocol(metric_records([record])[0])  # the card's words are its own

    docs = render_models_md([entry])
    quality = docs.split("## Sample quality and representations", 1)[1].split("\n## ", 1)[0]
    assert "| largest error |" in quality and f"| {record.value:.4f} |" in quality
    assert "| `max-error` | per pixel | lower | reconstructions | `vaezoo eval` |" in docs


def test_eval_measures_exactly_the_metrics_named(user_metric, run_dir, fashion_mnist_dir, tmp_path, capsys):
    base = ["eval", str(run_dir), "--iw-samples", "0", "--limit", "20", "--data", str(fashion_mnist_dir), "-q", "--json"]
    assert main(base + ["--metrics", "max-error"]) == 0
    names = set(json.loads(capsys.readouterr().out)["metrics"])
    assert "max-error" in names and not names & {"mse", "psnr"} and "neg_elbo" in names
    assert main(base + ["--metrics", "none"]) == 0
    assert not set(json.loads(capsys.readouterr().out)["metrics"]) & {"mse", "psnr", "max-error"}
    for wrong, message in (("fd", "'fd' is measured by `vaezoo eval --fid`"), ("max-eror", "Did you mean 'max-error'?")):
        with pytest.raises(SystemExit) as stop:  # refused while the command line is read, before any work
            main(base + ["--metrics", wrong])
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_image_metrics_do_not_depend_on_the_batch_size():
    model = vaezoo.create("fashion-mlp16").eval()
    x = torch.rand(37, 1, 28, 28)
    small = vaezoo.evaluate(model, x, iw_samples=0, batch_size=5, progress=False)
    large = vaezoo.evaluate(model, x, iw_samples=0, batch_size=64, progress=False)
    assert small["psnr"] == pytest.approx(large["psnr"], rel=1e-9)
    assert small["mse"] == pytest.approx(float((model.reconstruct(x) - x).pow(2).mean()), rel=1e-5)


def test_a_metric_is_checked_when_it_registers_and_when_it_measures():
    with pytest.raises(ValueError, match="a unit among .* \\(got 'furlongs'\\)"):
        @register_metric
        class Wrong(ImageMetric):
            name, label, unit = "wrong", "wrong", "furlongs"

            def measure(self, batch):
                return batch.x.flatten(1).mean(1)
    with pytest.raises(ValueError, match="a measure\\(batch\\) method"):
        @register_metric
        class Lazy(ImageMetric):
            name, label, unit = "lazy", "lazy", "fraction"
    assert "wrong" not in METRICS and "lazy" not in METRICS

    @register_metric
    class OnePerBatch(ImageMetric):
        name, label, unit = "one-per-batch", "one per batch", "fraction"

        def measure(self, batch):
            return batch.x.mean().reshape(1)

    try:
        with pytest.raises(ValueError, match="one-per-batch.*one value per image"):
            vaezoo.evaluate(vaezoo.create("fashion-mlp16"), torch.rand(4, 1, 28, 28), iw_samples=0, progress=False)
    finally:
        METRICS.remove("one-per-batch")


def test_published_names_resolve_to_their_metric_and_its_unit_is_enforced():
    assert find_metric("fd-fashion-v1@gmm", "fashion-v1").name == "fd"
    assert find_metric("fd-recon-fashion-v1", "fashion-v1").name == "fd-recon"
    assert find_metric("kl_z1") is None and find_metric("test_neg_elbo") is None
    protocol = Protocol(likelihood="bernoulli", binarization="none", split="test", num_examples=10)
    with pytest.raises(ValueError, match="'psnr' is measured in dB, not nats"):
        PublishedMetric(name="psnr", value=20.0, unit="nats", protocol=protocol)
    with pytest.raises(ValueError, match="unit 'furlongs' is not one of"):
        PublishedMetric(name="my-own", value=1.0, unit="furlongs", protocol=protocol)


def test_every_suite_refuses_a_metric_from_another():
    model = vaezoo.create("fashion-mlp16")
    with pytest.raises(UsageError, match="'probe-accuracy' is measured by `vaezoo eval --probe`"):
        vaezoo.evaluate(model, torch.rand(4, 1, 28, 28), iw_samples=0, metrics=["probe-accuracy"], progress=False)


def test_every_suite_is_measured_by_a_command():
    from vaezoo.evaluation.images import SUITE_FLAGS
    from vaezoo.parts.metrics import SUITES, metrics_of

    assert set(SUITE_FLAGS) == set(SUITES)
    assert {m.name for m in metrics_of("disentanglement")} == {
        "mig", "modularity", "factor-vae-score", "beta-vae-score", "dci-disentanglement", "dci-completeness",
        "dci-informativeness", "sap", "explicitness", "gaussian-tc", "code-mi"}
