"""Scoring the validation (or training) split: ``vaezoo.evaluate(..., split="val")`` and ``vaezoo eval
--split val`` score the images a recipe held out for selection, binarized once with the split's own
recorded seed, and a report of any split but the test set is refused by publishing."""

from __future__ import annotations

import json

import pytest
import torch

import vaezoo
from vaezoo.cli import main
from vaezoo.data import load_splits
from vaezoo.data.binarize import STATIC_BINARIZE_SEED, static_binarize
from vaezoo.data.splits import DataSplits
from vaezoo.errors import HubError, UsageError
from vaezoo.evaluation.data import SPLITS, VAL_BINARIZE_SEED, resolve_data
from vaezoo.evaluation.shards import merge_shards
from vaezoo.maintenance.publish import normalize_metrics
from vaezoo.schemas import DataConfig
from vaezoo.training.distributed import init_distributed
from vaezoo.training.setup import prepare_run

from _tiny_training import TINY_FAMILIES, register, tiny_config

register()

SIZES = {"train": 12, "val": 5, "test": 7}


def _splits(binarize: str = "dynamic") -> DataSplits:
    """Grey 8x8 images, a different count per split, labels that say which split an image is from."""
    g = torch.Generator().manual_seed(0)
    images = {s: torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g) for s, n in SIZES.items()}
    labels = {f"{s}_labels": torch.full((n,), i) for i, (s, n) in enumerate(SIZES.items())}
    return DataSplits(**images, **labels, classes=["train", "val", "test"], source="tiny", binarize=binarize)


def _model():
    torch.manual_seed(0)
    return vaezoo.create({"model": {"family": "vae", "input_shape": [1, 8, 8], **TINY_FAMILIES["vae"]}})


@pytest.mark.parametrize("split", list(SPLITS))
def test_each_split_is_its_own_images_binarized_once_with_its_recorded_seed(split):
    splits = _splits()
    data = resolve_data(splits, split=split, binarize="dynamic")
    assert data.labels.tolist() == [list(SIZES).index(split)] * SIZES[split]
    assert torch.equal(data.images, static_binarize(getattr(splits, split), SPLITS[split]).float() / 255)
    assert data.protocol["split"] == split and data.protocol["examples_available"] == SIZES[split]
    assert data.protocol["binarization"] == f"binarized: one fixed Bernoulli draw (seed {SPLITS[split]})"
    assert len(set(SPLITS.values())) == len(SPLITS)  # three draws, none shared


@pytest.mark.parametrize("binarize", ["dynamic", "static"])
def test_the_validation_split_is_the_images_a_training_validates_on(tmp_path, binarize):
    experiment = vaezoo.get_config(tiny_config(), {"data.binarize": binarize})
    run = prepare_run(experiment, tmp_path / "run", init_distributed("cpu"), resume=None)
    scored = resolve_data(experiment.data, split="val")
    assert torch.equal(scored.images, run.val[0].float() / 255)
    assert scored.protocol["examples"] == experiment.data.val_size == 64


def test_a_static_recipes_validation_images_keep_the_draw_training_saw():
    splits = _splits("static")
    splits.val = static_binarize(splits.val, STATIC_BINARIZE_SEED)  # as load_splits binarizes a static recipe
    data = resolve_data(splits, split="val")
    assert torch.equal(data.images, splits.val.float() / 255)  # not drawn again
    assert data.protocol["binarization"].endswith(f"(seed {STATIC_BINARIZE_SEED})")


def test_a_validation_report_has_the_split_in_its_protocol_and_shards_name_it():
    model, splits = _model(), _splits()
    settings = dict(iw_samples=8, elbo_samples=2, progress=False, binarize="dynamic", split="val")
    whole = vaezoo.evaluate(model, splits, **settings)
    assert whole.protocol["split"] == "val" and whole.protocol["examples"] == SIZES["val"]
    assert "val split, 5 examples" in whole.format_table()
    images = resolve_data(splits, split="val", binarize="dynamic").images
    given = vaezoo.evaluate(model, images, iw_samples=8, elbo_samples=2, progress=False)
    assert given["iwae_nll"] == pytest.approx(whole["iwae_nll"], rel=1e-9)  # the same images, the same noise
    test = vaezoo.evaluate(model, splits, iw_samples=8, elbo_samples=2, progress=False, binarize="dynamic")
    assert test.protocol["split"] == "test" and test["iwae_nll"] != pytest.approx(whole["iwae_nll"])
    second = vaezoo.evaluate(model, splits, start=3, **settings)
    with pytest.raises(UsageError, match="the shards do not tile the val split"):
        merge_shards([second])
    first_test = vaezoo.evaluate(model, splits, limit=3, iw_samples=8, elbo_samples=2, progress=False,
                                 binarize="dynamic")
    with pytest.raises(UsageError, match="its protocol differs in .*split"):
        merge_shards([first_test, second])


def test_wrong_splits_are_refused_with_what_to_do():
    splits = _splits()
    with pytest.raises(UsageError, match="split must be one of test, val, train, got 'validation'"):
        resolve_data(splits, split="validation")
    with pytest.raises(UsageError, match="the data given is a tensor of images"):
        resolve_data(torch.rand(3, 1, 8, 8), split="val")
    splits.val = splits.val[:0]
    with pytest.raises(UsageError, match=r"the val split is empty \(the recipe's data.val_size is 0\)"):
        resolve_data(splits, split="val")
    with pytest.raises(UsageError, match="index of a val image, 0 to 4"):
        resolve_data(_splits(), split="val", start=5)


def test_publishing_refuses_a_report_of_another_split_than_test():
    report = vaezoo.evaluate(_model(), _splits(), iw_samples=4, elbo_samples=1, progress=False, split="val")
    record = json.loads(report.to_json())
    with pytest.raises(HubError, match=r"scored the val split \(vaezoo eval --split val\)"):
        normalize_metrics(record, likelihood="bernoulli", binarization="dynamic", weights_dtype="float32",
                          name="tiny")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny Fashion-MNIST-shaped VAE whose config.json holds a recipe that holds out 1,000 images."""
    torch.manual_seed(0)
    model = vaezoo.create({"model": {"family": "vae", "input_shape": [1, 28, 28], "latent_dim": 2,
                                     "encoder": "linear", "decoder": "linear"}})
    folder = model.save_pretrained(tmp_path_factory.mktemp("tiny"))
    config = json.loads((folder / "config.json").read_text())
    config["data"] = {"dataset": {"name": "fashion-mnist"}, "binarize": "dynamic", "val_size": 1000}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_cli_scores_the_validation_images_the_recipe_held_out(checkpoint, capsys, fashion_mnist_dir):
    assert main(["eval", str(checkpoint), "--split", "val", "--iw-samples", "4", "--elbo-samples", "1",
                 "--limit", "6", "--start", "2", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    p = report["protocol"]
    assert (p["split"], p["examples"], p["examples_available"], p["first_example"]) == ("val", 6, 1000, 2)
    assert p["binarization"].endswith(f"(seed {VAL_BINARIZE_SEED})")
    held_out = load_splits(DataConfig(dataset="fashion-mnist", binarize="dynamic", val_size=1000)).val
    images = static_binarize(held_out, VAL_BINARIZE_SEED).float() / 255
    # the noise is keyed by the index in the whole split, so the shard is the same range of one run
    expected = vaezoo.evaluate(vaezoo.load(str(checkpoint)), images, iw_samples=4, elbo_samples=1, progress=False,
                               start=2, limit=6)
    for name in ("iwae_nll", "neg_elbo"):
        assert report["metrics"][name]["value"] == pytest.approx(expected[name], rel=1e-9), name


def test_the_cli_refuses_a_split_for_the_sample_and_factor_scores(checkpoint, capsys):
    assert main(["eval", str(checkpoint), "--split", "val", "--fid"]) == 2
    assert "--split chooses the images the bounds score" in capsys.readouterr().err
