"""Sample quality and linear probes: the shipped feature network, the sanity checks the metrics
must pass on real images, Inception plumbing with a stand-in network, errors, the CLI, the registry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.io import read_image

import vaezoo
from vaezoo import resources
from vaezoo.cli import main
from vaezoo.data.binarize import to_float_images
from vaezoo.data.splits import load_splits
from vaezoo.errors import ChecksumError, UsageError
from vaezoo.evaluation.feature_metrics import (
    class_coverage, frechet_distance, kernel_distance, precision_recall_density_coverage,
)
from vaezoo.evaluation.probe import fit_logistic_regression, linear_probe
from vaezoo.evaluation.quality import draw_samples, sample_quality
from vaezoo.features import default_features, get_features, read_fashion_record
from vaezoo.features.fashion import fashion_record_path, load_fashion_v1
from vaezoo.features.inception import INCEPTION_WEIGHTS, InceptionFeatures, load_inception
from vaezoo.maintenance.models_doc import render_models_md
from vaezoo.hub.index import read_entry
from vaezoo.maintenance.publish import publish_run
from vaezoo.schemas import DataConfig

from _tiny_training import briefly_train

ZOO_SPLIT = DataConfig(dataset="fashion-mnist", val_size=10000)


def tiny_vae(latent: int = 4, shape=(1, 28, 28), **model):
    return vaezoo.create({"model": {"input_shape": list(shape), "latent_dim": latent,
                                    "encoder": {"name": "mlp", "hidden": [32]},
                                    "decoder": {"name": "mlp", "hidden": [32]}, **model}})


# ------------------------------------------------------------------ the shipped feature network


def test_shipped_feature_network_is_pinned_and_a_changed_file_is_refused(tmp_path):
    record = read_fashion_record()
    net = load_fashion_v1()
    assert record["sha256"] == hashlib.sha256((fashion_record_path().parent / record["weights"]).read_bytes()).hexdigest()
    assert record["num_features"] == net.num_features == 128 and record["recipe"]["seed"] == 0
    assert record["test_accuracy"] > 0.9 and record["data"]["train_images"] == 50000
    assert float(net.feature_scale) == record["feature_scale"] != 1.0  # calibrated, and stored with the weights
    copy = tmp_path / "features"
    shutil.copytree(fashion_record_path().parent, copy)
    weights = copy / record["weights"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="differs from the pinned"):
        load_fashion_v1(folder=copy)
    (copy / "fashion-v1.json").unlink()
    with pytest.raises(UsageError, match="train_feature_net.py"):
        load_fashion_v1(folder=copy)


def test_features_do_not_depend_on_the_batch_size():
    net = get_features("fashion-v1")
    images = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a, classes_a = net.extract(images, batch_size=300)
    b, classes_b = net.extract(images, batch_size=37)
    assert torch.allclose(a, b, atol=1e-5) and torch.equal(classes_a, classes_b)
    assert a.shape == (300, 128) and int(classes_a.max()) < 10  # the "not clothing" output is no class


def test_feature_network_refuses_other_images_and_unknown_names():
    with pytest.raises(UsageError, match=r"shape \[3, 32, 32\].*takes \[1, 28, 28\].*inception"):
        get_features("fashion-v1", (3, 32, 32))
    with pytest.raises(UsageError, match="fashion-v1"):
        get_features("no-such-network")


# ------------------------------------------------------------------ Inception, with a stand-in


class StandInInception(nn.Module):
    """Inception-v3's interface (an ``fc`` head over 2048 pool features, any 299x299 input) at a
    thousandth of its cost, so that the plumbing is tested without torchvision's weights."""

    def __init__(self):
        super().__init__()
        self.pool_features = nn.Linear(3 * 4 * 4, 2048)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        assert x.shape[-2:] == (299, 299)
        return self.fc(torch.relu(self.pool_features(F.adaptive_avg_pool2d(x, 4).flatten(1))))


def test_inception_features_load_from_the_torch_cache_and_refuse_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UsageError, match=f"{INCEPTION_WEIGHTS} at .*torch/hub/checkpoints"):
        get_features("inception", (1, 28, 28))  # offline and no weights: one clear line, before any work

    torch.manual_seed(0)
    trained = StandInInception()
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(trained.state_dict(), checkpoints / INCEPTION_WEIGHTS)
    net = load_inception((1, 28, 28), builder=StandInInception)
    assert isinstance(net, InceptionFeatures) and net.tag == "inception-tv"
    images = torch.rand(6, 1, 28, 28)
    features, classes = net.extract(images, batch_size=4)
    assert classes is None and features.shape == (6, 2048)
    # what the wrapper must do: grey to RGB, 299 x 299, ImageNet normalization, the pool features
    x = F.interpolate(images.expand(-1, 3, -1, -1), size=(299, 299), mode="bilinear", antialias=True)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = torch.relu(trained.pool_features(F.adaptive_avg_pool2d(x, 4).flatten(1)))
    assert torch.allclose(features, expected, atol=1e-5)
    assert load_inception((3, 32, 32), builder=StandInInception).input_shape == (3, 32, 32)  # any image size


def test_the_feature_network_is_chosen_by_dataset_not_by_image_shape(tmp_path, monkeypatch):
    """An MNIST model has Fashion-MNIST's 28x28 shape; it is not scored in fashion-v1's space unless
    that is asked for by name (its default is Inception, here absent: one clear line)."""
    assert default_features("fashion-mnist") == "fashion-v1"
    assert default_features("mnist") == "inception" and default_features("cifar10") == "inception"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UsageError, match=f"Inception-v3 weights not found.*{INCEPTION_WEIGHTS}"):
        sample_quality(tiny_vae(), DataConfig(dataset="mnist"), progress=False)
    with pytest.raises(UsageError, match="needs more samples than the 128 features"):  # fashion-v1, by name, is taken
        sample_quality(tiny_vae(), DataConfig(dataset="mnist"), features="fashion-v1", samples=100, progress=False)


# ------------------------------------------------------------------ errors before any work


def test_sample_quality_refuses_bad_requests():
    with pytest.raises(UsageError, match=r"takes \[1, 28, 28\]"):
        sample_quality(tiny_vae(shape=(1, 8, 8)), features="fashion-v1")
    with pytest.raises(UsageError, match="needs more samples than the 128 features"):
        sample_quality(tiny_vae(), samples=128)
    with pytest.raises(UsageError, match="'model'.*'gmm'"):
        sample_quality(tiny_vae(), prior="uniform")
    cvae = vaezoo.create({"model": {"family": "cvae", "input_shape": [1, 28, 28], "latent_dim": 4, "num_classes": 10,
                                    "encoder": {"name": "mlp", "hidden": [32]},
                                    "decoder": {"name": "mlp", "hidden": [32]}}})
    with pytest.raises(UsageError, match="conditional"):
        linear_probe(cvae)


def test_draw_samples_are_fixed_by_the_seed_in_blocks():
    model = tiny_vae()
    a = draw_samples(model, 700, seed=3)
    assert torch.equal(a, draw_samples(model, 700, seed=3))
    assert torch.equal(a[:500], draw_samples(model, 500, seed=3))  # block by block: a prefix is a prefix
    assert not torch.equal(a, draw_samples(model, 700, seed=4))


def test_logistic_regression_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 5, generator=g) * 4
    labels = torch.arange(600) % 3
    x = centres[labels] + torch.randn(600, 5, generator=g)
    classifier = fit_logistic_regression(x, labels, 3)
    assert (classifier(x.double()).argmax(1) == labels).double().mean() > 0.99


# ------------------------------------------------------------------ real images


@pytest.fixture(scope="module")
def real(fashion_mnist_dir):
    splits = load_splits(ZOO_SPLIT, root=fashion_mnist_dir)
    net = get_features("fashion-v1")
    test_features, test_classes = net.extract(to_float_images(splits.test))
    return {"net": net, "splits": splits, "test": test_features, "test_classes": test_classes}


def test_feature_network_accuracy_is_what_its_record_says(real):
    accuracy = (real["test_classes"] == real["splits"].test_labels).double().mean().item()
    assert accuracy == pytest.approx(read_fashion_record()["test_accuracy"], abs=2e-3)  # float16 weights


def test_test_set_against_itself_and_against_training_images(real):
    test = real["test"]
    assert frechet_distance(test, test) == pytest.approx(0.0, abs=1e-6)
    kid = kernel_distance(test, test)
    assert abs(kid.value) < 3 * kid.stderr
    train, _ = real["net"].extract(to_float_images(real["splits"].train[:10000]))
    fd_train = frechet_distance(test, train)
    prdc = precision_recall_density_coverage(test, train)
    assert fd_train < 0.5
    assert min(prdc.precision, prdc.recall, prdc.coverage) > 0.9 and 0.9 < prdc.density < 1.1


@pytest.mark.parametrize("kind", ["uniform", "salt-and-pepper"])
def test_noise_is_far_and_imprecise(real, kind):
    # kinds of noise the feature network never saw in training (its outliers are other noise)
    g = torch.Generator().manual_seed(1)
    noise = torch.rand(10000, 1, 28, 28, generator=g)
    if kind == "salt-and-pepper":
        noise = (noise < 0.5).float()
    features, _ = real["net"].extract(noise)
    prdc = precision_recall_density_coverage(real["test"], features)
    assert frechet_distance(real["test"], features) > 100
    assert prdc.precision < 0.02 and prdc.coverage < 0.02


def test_one_class_drops_modes(real):
    # "samples" that are real training images, but all of one class, beside a balanced set of the same size
    train, labels = real["splits"].train[:10000], real["splits"].train_labels[:10000]
    one_class = labels == 0  # T-shirts: realistic, and nine classes missing
    one, predicted = real["net"].extract(to_float_images(train[one_class]))
    balanced, _ = real["net"].extract(to_float_images(train[: int(one_class.sum())]))
    dropped = precision_recall_density_coverage(real["test"], one)
    kept = precision_recall_density_coverage(real["test"], balanced)
    assert dropped.precision > 0.9 and kept.recall > 0.9
    assert dropped.recall < 0.5 * kept.recall and dropped.coverage < 0.5 * kept.coverage
    coverage, shares = class_coverage(predicted, 10)
    assert coverage < 0.2 and max(shares) > 0.8
    assert class_coverage(real["test_classes"], 10)[0] > 0.99  # the balanced test set


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, fashion_mnist_dir):
    """The fashion-mlp16 VAE after 300 Adam steps on 2,000 training images, saved in the Hub layout."""
    torch.manual_seed(0)
    images = to_float_images(load_splits(ZOO_SPLIT, root=fashion_mnist_dir).train[:2000])
    model = briefly_train(vaezoo.create("fashion-mlp16"), images, steps=300)
    experiment = vaezoo.get_config("fashion-mlp16", {"data.val_size": 10000})
    return model.save_pretrained(tmp_path_factory.mktemp("mlp-vae"), experiment=experiment)


def test_sample_quality_does_not_depend_on_the_batch_size(checkpoint, fashion_mnist_dir):
    model = vaezoo.load(checkpoint)
    a = sample_quality(model, ZOO_SPLIT, samples=400, batch_size=500, root=fashion_mnist_dir, progress=False)
    b = sample_quality(model, ZOO_SPLIT, samples=400, batch_size=64, root=fashion_mnist_dir, progress=False)
    assert set(a.metrics) == {"fd-fashion-v1", "kid-fashion-v1", "precision-fashion-v1", "recall-fashion-v1",
                              "density-fashion-v1", "coverage-fashion-v1", "class-coverage-fashion-v1",
                              "fd-recon-fashion-v1"}
    for name in a.metrics:
        assert b[name] == pytest.approx(a[name], rel=1e-5, abs=1e-6), name
    # a briefly trained VAE is far from the data: worse than its reconstructions, far worse than real images
    assert a["fd-fashion-v1"] > a["fd-recon-fashion-v1"] > 1.0


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_fid_gmm_and_probe_then_publish(checkpoint, fashion_mnist_dir, tmp_path, capsys, monkeypatch):
    code, out, _ = run(capsys, "eval", checkpoint, "--fid", "--fid-samples", 500, "--probe", "--data",
                       fashion_mnist_dir, "-q", "-o", tmp_path / "fid.json")
    assert code == 0 and "fashion-v1" in out and "linear-probe accuracy" in out
    report = json.loads((tmp_path / "fid.json").read_text())
    p = report["protocol"]
    assert (p["features"], p["samples"], p["prior"], p["sample_seed"], p["examples"]) == ("fashion-v1", 500, "model",
                                                                                         0, 10000)
    assert p["probe_train_examples"] == 50000 and sum(p["class_shares"].values()) == pytest.approx(1.0, abs=1e-3)
    probe = report["metrics"]["probe-accuracy"]["value"]
    assert 0.4 < probe <= 1.0  # a 16-d posterior of a briefly trained VAE holds much of the class; chance is 0.1

    code, _, _ = run(capsys, "eval", checkpoint, "--fid", "--prior", "gmm", "--fid-samples", 500, "--data",
                     fashion_mnist_dir, "-q", "-o", tmp_path / "gmm.json")
    assert code == 0
    gmm = json.loads((tmp_path / "gmm.json").read_text())
    assert "fd-fashion-v1@gmm" in gmm["metrics"] and "fd-recon-fashion-v1" not in gmm["metrics"]
    assert gmm["protocol"]["sampled_from"].startswith("gmm: 10-component")
    # the GMM prior is fitted on the aggregate posterior: its samples come closer to the data
    assert gmm["metrics"]["fd-fashion-v1@gmm"]["value"] < report["metrics"]["fd-fashion-v1"]["value"]

    registry = tmp_path / "registry"
    publish_run(checkpoint, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16", metrics=[tmp_path / "gmm.json"],
                registry=registry, date=dt.date(2026, 12, 3))
    # a report of the run folder's float32 weights is not a measurement of the published ones
    code, _, err = run(capsys, "publish-metrics", "tiny-mlp", tmp_path / "fid.json", "--registry", registry)
    assert code == 2 and "not the published 'tiny-mlp'" in err
    # the model is published already: later measurements of its published weights join the entry
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    code, _, _ = run(capsys, "eval", "tiny-mlp", "--fid", "--fid-samples", 500, "--probe", "--data", fashion_mnist_dir,
                     "-q", "-o", tmp_path / "published.json")
    probe = json.loads((tmp_path / "published.json").read_text())["metrics"]["probe-accuracy"]["value"]
    code, out, _ = run(capsys, "publish-metrics", "tiny-mlp", tmp_path / "published.json", "--registry", registry)
    assert code == 0
    entry = read_entry(out.strip())
    by_name = {m.name: m for m in entry.metrics}
    fd, fd_gmm, accuracy = by_name["fd-fashion-v1"], by_name["fd-fashion-v1@gmm"], by_name["probe-accuracy"]
    assert (fd.protocol.features, fd.protocol.samples, fd.protocol.sampled_from) == ("fashion-v1", 500, "model")
    assert fd_gmm.protocol.sampled_from == "gmm" and fd.unit == "score" and fd.protocol.importance_samples is None
    assert by_name["fd-recon-fashion-v1"].protocol.samples is None
    assert accuracy.protocol.probe.startswith("multinomial logistic regression") and accuracy.value == probe
    docs = render_models_md([entry])
    assert "## Sample quality and representations" in docs and "not comparable with Inception" in docs
    assert f"{fd.value:.1f} / {fd_gmm.value:.1f}" in docs


def test_cli_quality_flags_need_fid_and_refuse_missing_inception(checkpoint, tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, "eval", checkpoint, "--prior", "gmm")
    assert code == 2 and "add --fid" in err
    code, _, err = run(capsys, "eval", checkpoint, "--fid", "--limit", 10)
    assert code == 2 and "whole test split" in err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    code, _, err = run(capsys, "eval", checkpoint, "--fid", "--features", "inception")
    assert code == 2 and INCEPTION_WEIGHTS in err
    code, _, err = run(capsys, "eval", checkpoint, "--fid", "--fid-samples", 100)
    assert code == 2 and "more samples than the 128 features" in err


def test_cli_sample_from_the_fitted_mixture_and_both_priors(checkpoint, fashion_mnist_dir, tmp_path, capsys):
    code, out, _ = run(capsys, "sample", checkpoint, "--prior", "both", "-n", 16, "--data", fashion_mnist_dir,
                       "-o", tmp_path / "priors.png")
    assert code == 0 and "beside 16 from the fitted mixture" in out
    both = read_image(str(tmp_path / "priors.png"))
    assert both.shape[2] > 1.5 * both.shape[1]  # two panels side by side
    code, _, _ = run(capsys, "sample", checkpoint, "--prior", "gmm", "-n", 16, "--data", fashion_mnist_dir,
                     "-o", tmp_path / "gmm.png")
    code_model, _, _ = run(capsys, "sample", checkpoint, "-n", 16, "-o", tmp_path / "model.png")
    assert code == code_model == 0
    assert not torch.equal(read_image(str(tmp_path / "gmm.png")), read_image(str(tmp_path / "model.png")))


def test_cli_fid_and_sample_through_a_second_stage_vae(checkpoint, fashion_mnist_dir, tmp_path, capsys, monkeypatch):
    import functools

    from vaezoo.evaluation import quality
    from vaezoo.posthoc import fit_flow_prior, fit_two_stage

    # the paper's second stage (3 x 1024, 20 epochs) takes minutes: a small one checks the plumbing
    monkeypatch.setattr(quality, "fit_two_stage", functools.partial(fit_two_stage, depth=2, width=64, epochs=3))
    code, _, _ = run(capsys, "eval", checkpoint, "--fid", "--prior", "two-stage", "--fid-samples", 500, "--data",
                     fashion_mnist_dir, "-q", "-o", tmp_path / "two-stage.json")
    assert code == 0
    report = json.loads((tmp_path / "two-stage.json").read_text())
    assert "fd-fashion-v1@two-stage" in report["metrics"] and "fd-recon-fashion-v1" not in report["metrics"]
    assert report["protocol"]["sampled_from"].startswith("two-stage: a second-stage VAE (2 x 64")
    code, out, _ = run(capsys, "sample", checkpoint, "--prior", "two-stage", "-n", 16, "--data", fashion_mnist_dir,
                       "-o", tmp_path / "two-stage.png")
    assert code == 0 and "two-stage prior learned" in out
    code_model, _, _ = run(capsys, "sample", checkpoint, "-n", 16, "-o", tmp_path / "model.png")
    assert not torch.equal(read_image(str(tmp_path / "two-stage.png")), read_image(str(tmp_path / "model.png")))

    monkeypatch.setattr(quality, "fit_flow_prior", functools.partial(fit_flow_prior, hidden=(32,), epochs=2))
    code, _, _ = run(capsys, "eval", checkpoint, "--fid", "--prior", "maf", "--fid-samples", 500, "--data",
                     fashion_mnist_dir, "-q", "-o", tmp_path / "maf.json")
    maf = json.loads((tmp_path / "maf.json").read_text())
    assert code == 0 and "fd-fashion-v1@maf" in maf["metrics"]
    assert maf["protocol"]["sampled_from"].startswith("maf: a masked autoregressive flow (2 MADE blocks of 32")
    # published beside each other, the docs show every prior's samples in one row
    path = publish_run(checkpoint, "tiny-mlp", "alice/tiny-mlp", config="fashion-mlp16",
                       metrics=[tmp_path / "two-stage.json", tmp_path / "maf.json"], registry=tmp_path / "registry",
                       date=dt.date(2026, 12, 6))
    entry = read_entry(path)
    fd_maf = next(m for m in entry.metrics if m.name == "fd-fashion-v1@maf")
    assert fd_maf.protocol.sampled_from == "maf"
    docs = render_models_md([entry])
    assert "### Samples through priors learned after training" in docs
    two_stage = report["metrics"]["fd-fashion-v1@two-stage"]["value"]
    assert f"| `tiny-mlp` | fashion-v1 | - / - / {two_stage:.1f} / {fd_maf.value:.1f} / - |" in docs
