"""The generated datasets with known factors: the full grid once each, byte-identical builds, and
factor values that match what the images show."""

from __future__ import annotations

import pytest
import torch

from vaezoo.data import FactorGrid, color_squares, fixed_factor_batch, load_splits, shapes2d
from vaezoo.data.factors import BACKGROUND_COLORS, OBJECT_COLORS
from vaezoo.errors import DataError
from vaezoo.schemas import DataConfig

SMALL_SHAPES = dict(scales=3, orientations=4, positions=6, size=32)
SMALL_SQUARES = dict(sizes=2, positions=5, size=16)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("build, params", [(shapes2d, SMALL_SHAPES), (color_squares, SMALL_SQUARES)])
def test_every_combination_of_the_factors_appears_exactly_once(build, params):
    data = build(None, **params)
    factors = torch.cat([data.train_factors, data.test_factors])
    assert factors.shape == (len(data.grid), len(data.grid.sizes))
    assert torch.equal(data.grid.index_of(factors).sort().values, torch.arange(len(data.grid)))
    assert data.test_images.shape[0] == round(0.1 * len(data.grid))
    for split in ("train", "test"):  # each image is the one its factors name
        assert torch.equal(data.images_of(getattr(data, f"{split}_factors")), getattr(data, f"{split}_images"))


@pytest.mark.parametrize("build, params", [(shapes2d, SMALL_SHAPES), (color_squares, SMALL_SQUARES)])
def test_two_builds_are_byte_identical_and_the_second_comes_from_the_cache(build, params, tmp_path, monkeypatch):
    first = build(None, **params)
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "other-cache"))
    second = build(None, **params)
    assert torch.equal(first.all_images, second.all_images) and torch.equal(first.test_factors, second.test_factors)
    cached = build(None, **params)
    assert cached.source == second.source and str(tmp_path / "other-cache") in cached.source
    assert open(first.source, "rb").read() == open(second.source, "rb").read()


def _centre_of_mass(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mass = images.double().sum(dim=(1, 2, 3))
    rows = torch.arange(images.shape[-2], dtype=torch.float64).view(1, 1, -1, 1)
    cols = torch.arange(images.shape[-1], dtype=torch.float64).view(1, 1, 1, -1)
    return ((images * rows).sum(dim=(1, 2, 3)) / mass, (images * cols).sum(dim=(1, 2, 3)) / mass, mass)


def test_shapes2d_factors_match_what_the_images_show():
    data = shapes2d(None, **SMALL_SHAPES)
    grid, every = data.grid, data.grid.all_factors()
    row, col, mass = _centre_of_mass(data.all_images.double())
    names = grid.names
    x, y, scale = every[:, names.index("x")], every[:, names.index("y")], every[:, names.index("scale")]
    for factor, centre in ((x, col), (y, row)):  # the centre of mass moves with x (columns) and y (rows)
        means = torch.stack([centre[factor == v].mean() for v in range(int(factor.max()) + 1)])
        assert bool((means.diff() > 1.0).all()), means
    masses = torch.stack([mass[scale == v].mean() for v in range(grid.sizes[names.index("scale")])])
    assert bool((masses.diff() > 0).all())  # bigger at every scale step
    shape = every[:, 0]
    square, ellipse = mass[(shape == 0) & (scale == 2)].mean(), mass[(shape == 1) & (scale == 2)].mean()
    assert square > 2 * ellipse  # a square of half-size s against an ellipse of s by s/2: 4 s^2 against pi s^2 / 2
    assert set(data.all_images.unique().tolist()) == {0, 255}  # binary, as dSprites


def test_color_squares_factors_match_what_the_images_show():
    data = color_squares(None, **SMALL_SQUARES)
    every = data.grid.all_factors()
    images = data.all_images.double() / 255
    row, col, _ = _centre_of_mass((images - images[:, :, :1, :1]).abs())  # the square against its background
    for factor, centre in ((every[:, 3], col), (every[:, 4], row)):
        means = torch.stack([centre[factor == v].mean() for v in range(int(factor.max()) + 1)])
        assert bool((means.diff() > 1.0).all()), means
    corner = images[:, :, 0, 0]
    centre = images[torch.arange(len(images)), :, row.round().long(), col.round().long()]
    assert torch.allclose(corner, torch.tensor(BACKGROUND_COLORS, dtype=torch.float64)[every[:, 1]], atol=1 / 255)
    assert torch.allclose(centre, torch.tensor(OBJECT_COLORS, dtype=torch.float64)[every[:, 0]], atol=1 / 255)


def test_a_fixed_factor_batch_holds_one_factor_and_draws_the_others():
    grid = FactorGrid(("a", "b", "c"), (3, 5, 7))
    batch = fixed_factor_batch(grid, 1, 64, torch.Generator().manual_seed(0))
    assert batch.shape == (64, 3) and batch[:, 1].unique().numel() == 1
    assert batch[:, 0].unique().numel() == 3 and batch[:, 2].unique().numel() > 3
    assert bool((batch < torch.tensor(grid.sizes)).all()) and bool((batch >= 0).all())
    assert torch.equal(grid.factors_of(grid.index_of(batch)), batch)
    with pytest.raises(DataError, match="factor 3 is not one of the grid's 3 factors"):
        fixed_factor_batch(grid, 3, 4, torch.Generator())


def test_a_factor_dataset_is_a_dataset_like_any_other():
    splits = load_splits(DataConfig.model_validate({"dataset": {"name": "shapes2d", **SMALL_SHAPES}, "val_size": 20}))
    assert splits.train.shape[1:] == (1, 32, 32) and splits.val.shape[0] == 20
    assert splits.classes == ["square", "ellipse", "triangle"] and int(splits.train_labels.max()) == 2


@pytest.mark.parametrize("name, objective", [("shapes2d-vae", "elbo"), ("shapes2d-beta4", "elbo"),
                                             ("shapes2d-betatcvae", "beta-tcvae"), ("shapes2d-factorvae", "factor-vae")])
def test_the_study_configs_share_everything_but_the_objective(name, objective):
    import vaezoo

    config = vaezoo.get_config(name)
    baseline = vaezoo.get_config("shapes2d-vae")
    assert config.model.objective.name == objective and config.data == baseline.data
    assert config.model.model_copy(update={"objective": baseline.model.objective}) == baseline.model
    model = vaezoo.create(name)
    step = vaezoo.passes.StepContext(torch.ones(()), 0, 22_118)  # as the training loop calls it
    out = model(torch.randint(0, 2, (4, 1, 64, 64)).float(), context=step)
    assert torch.isfinite(out.loss) and model.latent_dim == 10
