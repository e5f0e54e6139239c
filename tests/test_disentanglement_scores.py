"""Disentanglement scores, checked on representations whose answer is known: the factors themselves
score 1, a random rotation of them far less, noise about nothing."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from vaezoo.data.factors import FactorGrid
from vaezoo.evaluation.predictive_scores import dci, explicitness, sap
from vaezoo.evaluation.disentanglement import (
    DisentanglementRecipe, beta_vae_score, factor_vae_score, gaussian_total_correlation, histogram_discretize, mig,
    modularity, mutual_information, mutual_information_between_codes,
)

GRID = FactorGrid(("a", "b", "c"), (4, 6, 5))
QUICK = DisentanglementRecipe(batch_size=32, train_votes=300, eval_votes=200, variance_points=2000)


def _rotation(d: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def _factors_as_codes(factors: torch.Tensor) -> torch.Tensor:
    return factors.double()


def test_discretization_is_numpys_histogram_and_digitize():
    codes = torch.randn(500, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    codes[:, 3] = 2.5  # a constant code: numpy widens its range
    ours = histogram_discretize(codes, 20)
    for j in range(4):
        x = codes[:, j].numpy()
        assert np.array_equal(ours[:, j].numpy(), np.digitize(x, np.histogram(x, 20)[1][:-1])), j


def test_mutual_information_of_a_uniform_factor_with_itself_is_its_entropy():
    factors = GRID.all_factors()
    m = mutual_information(factors, factors)
    assert torch.allclose(m.diagonal(), torch.log(torch.tensor(GRID.sizes, dtype=torch.float64)))
    assert float(m.fill_diagonal_(0).abs().max()) < 1e-12  # the full grid: independent factors


def test_mig_and_modularity_are_one_for_the_factors_and_far_lower_for_a_rotation_or_noise():
    factors = GRID.all_factors()
    codes = factors.double()
    assert mig(codes, factors) == pytest.approx(1.0) and modularity(codes, factors) == pytest.approx(1.0)
    rotated = codes @ _rotation(3)
    assert mig(rotated, factors) < 0.5 and modularity(rotated, factors) < 0.9
    many = GRID.factors_of(torch.randint(len(GRID), (10_000,), generator=torch.Generator().manual_seed(1)))
    noise = torch.randn(10_000, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert mig(noise, many) < 0.02


def test_factor_vae_score_names_the_fixed_factor_for_the_factors_and_not_for_noise():
    exact = factor_vae_score(GRID, _factors_as_codes, QUICK)
    assert exact["eval_accuracy"] == 1.0 and exact["active_codes"] == 3
    rotation = _rotation(3)
    rotated = factor_vae_score(GRID, lambda factors: _factors_as_codes(factors) @ rotation, QUICK)
    assert rotated["eval_accuracy"] < 0.9
    generator = torch.Generator().manual_seed(3)
    noise = factor_vae_score(GRID, lambda factors: torch.randn(factors.shape[0], 4, generator=generator), QUICK)
    assert noise["eval_accuracy"] < 0.6  # chance is a third with three factors
    constant = factor_vae_score(GRID, lambda factors: torch.zeros(factors.shape[0], 4), QUICK)
    assert constant == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_codes": 0}


def test_beta_vae_score_is_one_for_the_factors_and_near_chance_for_noise():
    assert beta_vae_score(GRID, _factors_as_codes, QUICK)["eval_accuracy"] == 1.0
    generator = torch.Generator().manual_seed(4)
    noise = beta_vae_score(GRID, lambda factors: torch.randn(factors.shape[0], 4, generator=generator), QUICK)
    assert noise["eval_accuracy"] < 0.6


def test_a_models_codes_are_its_posterior_means_looked_up_by_factor(tmp_path, monkeypatch):
    import vaezoo
    from vaezoo.data import shapes2d
    from vaezoo.evaluation.disentanglement import posterior_means_of_grid

    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    data = shapes2d(None, scales=2, orientations=2, positions=4, size=16)
    model = vaezoo.create({"model": {"input_shape": [1, 16, 16], "latent_dim": 3, "encoder": "linear",
                                     "decoder": "linear"}}).eval()
    table = posterior_means_of_grid(model, data, batch_size=7)
    some = data.grid.factors_of(torch.tensor([0, 5, 17, 40]))
    direct = model.encode(data.images_of(some).float() / 255).mean.double()
    torch.testing.assert_close(table[data.grid.index_of(some)], direct)


def _draws(codes_of, seed: int = 7, train: int = 2000, test: int = 1000):
    generator = torch.Generator().manual_seed(seed)
    factors = GRID.factors_of(torch.randint(len(GRID), (train + test,), generator=generator))
    codes = codes_of(factors, generator)
    return codes[:train], factors[:train], codes[train:], factors[train:]


def test_the_classifier_scores_are_near_one_for_the_factors_lower_for_a_rotation_and_low_for_noise():
    rotation = _rotation(3)
    exact = _draws(lambda f, g: f.double())
    rotated = _draws(lambda f, g: f.double() @ rotation)
    noise = _draws(lambda f, g: torch.randn(f.shape[0], 4, generator=g, dtype=torch.float64))
    trees = [dci(*draw) for draw in (exact, rotated, noise)]
    assert trees[0]["disentanglement"] > 0.95 and trees[0]["completeness"] > 0.95
    assert trees[0]["informativeness"] == 1.0
    assert trees[1]["disentanglement"] < 0.6 and trees[1]["completeness"] < 0.6 and trees[1]["informativeness"] > 0.9
    assert trees[2]["informativeness"] < 0.35  # chance is a fourth to a sixth
    saps = [sap(*draw) for draw in (exact, rotated, noise)]
    assert saps[0] > 0.2 and saps[1] < saps[0] and saps[2] < 0.03
    linear = [explicitness(*draw)["test"] for draw in (exact, rotated, noise)]
    assert linear[0] > 0.8 and linear[1] > 0.8 and linear[2] < 0.55  # an AUC: 0.5 is chance, rotations keep it


class _CentreOfMass(torch.nn.Module):
    """A stand-in encoder whose codes are known: the image's centre of mass (x, y) and its area."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def posterior_means(self, x, y=None):
        mass = x.sum(dim=(1, 2, 3)).clamp(min=1e-6)
        rows, cols = torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij")
        centre_x = (x[:, 0] * cols).sum(dim=(1, 2)) / mass
        centre_y = (x[:, 0] * rows).sum(dim=(1, 2)) / mass
        return {"z": torch.stack([centre_x, centre_y, mass], dim=1)}


def test_each_code_is_named_after_the_factor_it_carries(tmp_path, monkeypatch):
    from vaezoo.data import shapes2d
    from vaezoo.evaluation.disentanglement import factor_of_each_code

    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    data = shapes2d(None, scales=3, orientations=2, positions=6, size=32)
    named = factor_of_each_code(_CentreOfMass(), data)
    assert [name for name, _ in named] == ["x", "y", "scale"]
    assert named[0][1] > 0.9 and named[1][1] > 0.9  # the centre of mass tells the position almost exactly


def test_the_unsupervised_scores_see_dependence_between_codes():
    generator = torch.Generator().manual_seed(5)
    independent = torch.randn(10_000, 3, generator=generator, dtype=torch.float64)
    assert gaussian_total_correlation(independent) < 0.01
    assert mutual_information_between_codes(independent) < 0.03
    tied = independent.clone()
    tied[:, 1] = tied[:, 0] + 0.1 * tied[:, 1]  # correlation 0.995: TC = -0.5 log(1 - rho^2)
    assert gaussian_total_correlation(tied) == pytest.approx(-0.5 * math.log(1 - 1 / 1.01), rel=0.05)
    assert mutual_information_between_codes(tied) > 0.3


def test_mig_needs_two_codes():
    with pytest.raises(ValueError, match="at least two latent dimensions"):
        mig(torch.zeros(10, 1), torch.zeros(10, 1, dtype=torch.long))


def test_eval_disentanglement_on_a_run_trained_on_a_factor_dataset(tmp_path, capsys, monkeypatch):
    """`vaezoo eval RUN --disentanglement` scores the factor dataset the run was trained on, and its
    report publishes with the recipe in each record's protocol."""
    import json

    import vaezoo
    from vaezoo.cli import main
    from vaezoo.maintenance.publish import normalize_metrics

    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", "1")
    config = {"name": "shapes", "model": {"input_shape": [1, 16, 16], "latent_dim": 4,
                                          "encoder": {"name": "mlp", "hidden": [64]},
                                          "decoder": {"name": "mlp", "hidden": [64]}},
              "data": {"dataset": {"name": "shapes2d", "scales": 2, "orientations": 2, "positions": 6, "size": 16},
                       "val_size": 40},
              "trainer": {"epochs": 1, "batch_size": 32}}
    vaezoo.train(config, out=tmp_path / "run", progress=False)
    assert main(["eval", str(tmp_path / "run"), "--disentanglement", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["protocol"]["dataset"] == "shapes2d" and report["protocol"]["factors"]["x"] == 6
    values = {name: m["value"] for name, m in report["metrics"].items()}
    fractions = {"mig", "modularity", "factor-vae-score", "beta-vae-score", "dci-disentanglement",
                 "dci-completeness", "dci-informativeness", "sap", "explicitness"}
    assert set(values) == fractions | {"gaussian-tc", "code-mi"}
    assert all(0 <= values[k] <= 1 for k in fractions)
    records = normalize_metrics(report, likelihood="bernoulli", binarization="none", weights_dtype="float32",
                                name=str(tmp_path / "run"))
    assert {r.name for r in records} == set(values)
    assert all(r.protocol.disentanglement.startswith("10,000 points, 20 bins") for r in records)
    assert main(["eval", str(tmp_path / "run"), "--disentanglement", "--probe"]) == 2
    assert "run them apart" in capsys.readouterr().err
    # a traversal of a factor dataset's model says which factor each row's dimension carries
    assert main(["traverse", str(tmp_path / "run"), "--top", "2", "-o", str(tmp_path / "t.png")]) == 0
    rows = capsys.readouterr().out.split("rows (")[1].splitlines()[0]
    assert re.search(r"\d: \d+\.\d\d (shape|scale|orientation|x|y) [01]\.\d\d, \d: ", rows), rows
    assert (tmp_path / "t.png").is_file()


def test_published_disentanglement_scores_get_a_table_of_their_own(tmp_path):
    import datetime as dt

    import vaezoo
    from vaezoo.hub.index import list_entries
    from vaezoo.maintenance.models_doc import render_models_md
    from vaezoo.maintenance.publish import publish_run

    experiment = vaezoo.get_config("shapes2d-vae", {"trainer.epochs": 1})
    run = vaezoo.create("shapes2d-vae").save_pretrained(tmp_path / "run", experiment=experiment,
                                                        training={"epochs": 1, "wall_time_s": 1.0})
    recipe = DisentanglementRecipe().describe()
    report = {"protocol": {"model": "tiny", "dataset": "shapes2d", "split": "the whole factor grid",
                           "examples": 10000, "disentanglement": recipe},
              "metrics": {"mig": {"value": 0.25, "unit": "fraction"},
                          "factor-vae-score": {"value": 0.75, "unit": "fraction"},
                          "gaussian-tc": {"value": 1.5, "unit": "information"}}}
    publish_run(run, "tiny", "alice/tiny", config="shapes2d-vae", metrics=report, registry=tmp_path / "registry",
                date=dt.date(2026, 12, 6))
    # the same config with another seed: the study's table gives the mean and the range over the seeds
    second = vaezoo.get_config("shapes2d-vae", {"trainer.epochs": 1, "trainer.seed": 1})
    run = vaezoo.create("shapes2d-vae").save_pretrained(tmp_path / "seed1", experiment=second,
                                                        training={"epochs": 1, "wall_time_s": 1.0})
    report["metrics"]["mig"] = {"value": 0.35, "unit": "fraction"}
    publish_run(run, "tiny-seed1", "alice/tiny-seed1", config="shapes2d-vae", metrics=report,
                registry=tmp_path / "registry", date=dt.date(2026, 12, 6))
    # a Fashion-MNIST model's unsupervised scores go to a table of their own
    fashion = vaezoo.create("fashion-mlp16").save_pretrained(
        tmp_path / "fashion", experiment=vaezoo.get_config("fashion-mlp16", {"trainer.epochs": 1}),
        training={"epochs": 1, "wall_time_s": 1.0})
    unsupervised = {"protocol": {**report["protocol"], "dataset": "fashion-mnist", "split": "test"},
                    "metrics": {"gaussian-tc": {"value": 2.25, "unit": "information"}}}
    publish_run(fashion, "tiny-fashion", "alice/tiny-fashion", config="fashion-mlp16", metrics=unsupervised,
                registry=tmp_path / "registry", date=dt.date(2026, 12, 6))
    docs = render_models_md(list_entries(tmp_path / "registry"))
    table = docs[docs.index("## Disentanglement"):]
    assert recipe in table and "| model | dataset | -ELBO | recon | KL | MIG | modularity | FactorVAE score | BetaVAE score | DCI D |" in table
    assert "| `tiny` | shapes2d | - | - | - | 0.250 | - | 0.750 | - | - | - | - | - | - | 1.500 | - |" in table
    assert "tiny-fashion` | fashion" not in table.split("## Dependence between codes")[0]
    assert "| `tiny-fashion` | vae | 16 | 2.250 | - |" in table.split("## Dependence between codes")[1]
    assert "| `shapes2d-vae` | 0, 1 | - | - | - | 0.300<br>0.250–0.350 | - | 0.750<br>0.750–0.750 |" in table
    assert "--set trainer.seed=1" in docs[docs.index("## tiny-seed1"):]


def test_a_model_of_a_dataset_without_factors_gets_the_unsupervised_scores_of_its_test_images():
    import vaezoo
    from vaezoo.evaluation.disentanglement import evaluate_disentanglement
    from vaezoo.errors import UsageError
    from vaezoo.schemas import DataConfig

    from _tiny_training import TINY_DATASET, TINY_FAMILIES, _tiny, register

    register()
    data = DataConfig.model_validate({"dataset": TINY_DATASET, "val_size": 0})
    torch.manual_seed(0)
    model = vaezoo.create({"input_shape": [1, 8, 8], **TINY_FAMILIES["vae"]})
    report = evaluate_disentanglement(model, data)
    assert set(report.metrics) == {"gaussian-tc", "code-mi"} and report.protocol["examples"] == 64
    test = _tiny().test_images.float() / 255
    with torch.no_grad():
        means = model.encode(test).mean.double()
    assert report["gaussian-tc"] == pytest.approx(gaussian_total_correlation(means), rel=1e-6)
    assert report["code-mi"] == pytest.approx(mutual_information_between_codes(means), rel=1e-6)
    for family, why in (("vqvae", "grid of discrete codes"), ("categorical", "singular covariance")):
        other = vaezoo.create({"family": family, "input_shape": [1, 8, 8], **TINY_FAMILIES[family]})
        with pytest.raises(UsageError, match=why):
            evaluate_disentanglement(other, data)
