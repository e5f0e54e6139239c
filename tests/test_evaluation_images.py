"""Pictures: shapes, value ranges, tile counts and tile contents of every image function."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torchvision.io import read_image

import vaezoo
from vaezoo.viz.images import (
    interpolation_grid, latent_map, pca_2d, rank_dims_by_kl, reconstruction_grid, sample_grid, traversal_grid,
)

SIDE, PAD = 8, 2  # 8x8 images, make_grid's 2-pixel padding
TILE = SIDE + PAD


def grid_size(rows: int, cols: int) -> tuple[int, int]:
    return rows * TILE + PAD, cols * TILE + PAD


def tile(grid: torch.Tensor, row: int, col: int) -> torch.Tensor:
    """The (3, SIDE, SIDE) picture at (row, col) of a make_grid grid."""
    top, left = PAD + row * TILE, PAD + col * TILE
    return grid[:, top: top + SIDE, left: left + SIDE]


@pytest.fixture(scope="module")
def model():
    """A linear model whose latent 0 is very informative, latent 1 less and latent 2 not at all."""
    torch.manual_seed(0)
    m = vaezoo.create({"model": {"input_shape": [1, SIDE, SIDE], "latent_dim": 3, "encoder": "linear",
                                 "decoder": "linear"}})
    with torch.no_grad():
        enc = m.encoder.linear
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[0] = 0.5   # mu_0 = 0.5 * sum(x): large spread -> large KL
        enc.weight[1] = 0.05  # mu_1: small spread
        enc.bias[3:] = -2.0   # all posteriors narrow, so KL is driven by the means
        enc.bias[5] = 0.0     # latent 2: q = N(0, 1) = the prior, KL 0
    return m.eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(6, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0))


def test_sample_grid_shape_range_and_png(model, tmp_path):
    grid = sample_grid(model, 12, nrow=4, path=tmp_path / "s.png")
    assert grid.shape == (3, *grid_size(3, 4))
    assert 0.0 <= grid.min() and grid.max() <= 1.0
    stored = read_image(str(tmp_path / "s.png"))  # grayscale images: a one-channel file of the grid's pixels
    assert stored.shape == (1, *grid.shape[1:])
    assert torch.equal(stored[0], grid[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8))
    assert torch.equal(sample_grid(model, 12, nrow=4), grid)  # seeded: the same picture twice
    assert not torch.equal(sample_grid(model, 12, nrow=4, seed=1), grid)


def test_reconstructions_sit_beside_their_inputs(model, images):
    grid = reconstruction_grid(model, images, pairs_per_row=3)
    assert grid.shape == (3, *grid_size(2, 6))  # 6 inputs -> 12 tiles, 6 per row
    recon = model.reconstruct(images).clamp(0, 1)
    for i in range(6):
        row, col = divmod(2 * i, 6)
        assert torch.allclose(tile(grid, row, col)[0], images[i, 0], atol=1 / 255)
        assert torch.allclose(tile(grid, row, col + 1)[0], recon[i, 0], atol=1 / 255)


def test_uint8_images_are_read_as_0_to_255(model, images):
    as_uint8 = (images * 255).round().to(torch.uint8)
    assert torch.allclose(reconstruction_grid(model, as_uint8), reconstruction_grid(model, as_uint8.float() / 255))


def test_dims_rank_by_kl(model, images):
    order, kl = rank_dims_by_kl(model, torch.rand(200, 1, SIDE, SIDE))
    assert order == [0, 1, 2]
    assert kl[2] == pytest.approx(0.0, abs=1e-6) and kl[0] > kl[1] > 0


def test_traversal_rows_follow_kl_and_tiles_decode_the_swept_latent(model, images):
    values = torch.linspace(-2, 2, 5)
    grid = traversal_grid(model, images[0], dims=[2, 0], values=values, reference=torch.rand(200, 1, SIDE, SIDE))
    assert grid.shape == (3, *grid_size(2, 5))
    base = model.encode(images[:1]).mean[0]
    for col, v in enumerate(values):
        z = base.clone()
        z[0] = v  # row 0 is latent 0: the higher-KL one comes first although asked second
        expected = model.decode(z[None]).mean.clamp(0, 1)[0, 0]
        assert torch.allclose(tile(grid, 0, col)[0], expected, atol=1 / 255)
    # Default: the most informative num_dims dimensions only.
    assert traversal_grid(model, images[0], values=values, num_dims=2).shape == (3, *grid_size(2, 5))


def test_traversal_rejects_dims_outside_the_latent(model, images):
    with pytest.raises(ValueError, match="out of range"):
        traversal_grid(model, images[0], dims=[3])


def test_interpolation_rows_start_and_end_at_the_inputs(model, images):
    grid = interpolation_grid(model, images[:2], images[2:4], steps=5)
    assert grid.shape == (3, *grid_size(2, 7))  # a, 5 steps, b
    for row in range(2):
        assert torch.allclose(tile(grid, row, 0)[0], images[row, 0], atol=1 / 255)
        assert torch.allclose(tile(grid, row, 6)[0], images[row + 2, 0], atol=1 / 255)
    # The first decoded step is the reconstruction of a (t = 0).
    assert torch.allclose(tile(grid, 0, 1)[0], model.reconstruct(images[:1]).clamp(0, 1)[0, 0], atol=1 / 255)


def test_pca_finds_the_direction_of_largest_variance():
    t = torch.linspace(-1, 1, 101)[:, None]
    points = t * torch.tensor([[3.0, 4.0, 0.0]]) + 0.01 * torch.randn(101, 3, generator=torch.Generator().manual_seed(0))
    coords, ratio = pca_2d(points)
    assert coords.shape == (101, 2)
    assert ratio[0] > 0.99
    assert torch.allclose(coords[:, 0].abs(), (5 * t[:, 0]).abs().double(), atol=0.05)


def test_latent_map_is_a_coloured_picture_with_a_legend(model, tmp_path):
    x = torch.rand(300, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(300) % 3
    picture = latent_map(model, x, labels, ["shirt", "shoe", "bag"], size=(5, 4), dpi=50, path=tmp_path / "m.png")
    assert picture.shape == (3, 200, 250)
    assert 0.0 <= picture.min() and picture.max() <= 1.0
    assert read_image(str(tmp_path / "m.png")).shape == picture.shape
    plain = latent_map(model, x, size=(5, 4), dpi=50)
    tab10 = matplotlib.colormaps["tab10"]
    for i in range(3):
        # Each class's colour (drawn at alpha 0.6 over white) appears: its points and legend marker.
        colour = 0.6 * torch.tensor(tab10(i)[:3]) + 0.4
        assert pixels_of(picture, colour) > 5
        if i > 0:
            assert pixels_of(plain, colour) == 0  # unlabelled: one colour only


def pixels_of(picture: torch.Tensor, colour: torch.Tensor) -> int:
    return int(((picture - colour[:, None, None]).abs().max(dim=0).values < 0.03).sum())
