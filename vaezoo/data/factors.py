"""Datasets with known generative factors, rendered by our own seeded code from a full grid.

Disentanglement metrics need, for every image, the factor values that made it, and batches in
which one factor is held fixed. The standard sets (dSprites, 3D Shapes, MPI3D) are downloads;
these are generated exactly instead, in the spirit of disent's XYObject data, and named for what
they are:

- ``shapes2d``: a white shape (square, ellipse, triangle) on black, 64 x 64, binary, at every
  scale, orientation and position of a grid: dSprites' factors, not its file.
- ``color-squares``: a coloured square on a coloured background, 3 x 32 x 32, at every size and
  position of a grid.

Every combination of the factors appears exactly once (image ``i`` has the factors
``grid.factors_of(i)``, in raster order of the grid); a fixed fraction, drawn with a fixed seed,
is held out as the test set. A build is cached (``$VAEZOO_CACHE/factors/``) and byte-identical to
any other build with the same arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Optional

import torch
from pydantic import Field, PositiveInt
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..errors import DataError
from ..layout.checkpoint import atomic_write_bytes
from ..parts.kinds import register_dataset
from .datasets import ImageData
from .sources import cache_dir

__all__ = ["FactorGrid", "FactorData", "shapes2d", "color_squares", "fixed_factor_batch", "HOLD_OUT_SEED",
           "FACTOR_DATASETS"]

# the registered datasets that return FactorData: their models publish disentanglement scores
FACTOR_DATASETS = ("shapes2d", "color-squares")

HOLD_OUT_SEED = 0
Fraction = Annotated[float, Field(gt=0, lt=1)]
RENDERER_VERSION = 1  # part of the cache key: a change to the drawing code never reads an old build


@dataclass(frozen=True)
class FactorGrid:
    """The full grid of factor values: ``names[j]`` takes ``sizes[j]`` values, 0..sizes[j]-1."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def __len__(self) -> int:
        return math.prod(self.sizes)

    def factors_of(self, index: torch.Tensor) -> torch.Tensor:
        """(N, F) int64 factor values of grid positions ``index`` (raster order, the last factor fastest)."""
        out, rest = [], index.long().clone()
        for size in reversed(self.sizes):
            out.append(rest % size)
            rest = rest // size
        return torch.stack(out[::-1], dim=1)

    def index_of(self, factors: torch.Tensor) -> torch.Tensor:
        """Grid positions of (N, F) factor values: the inverse of :meth:`factors_of`."""
        index = torch.zeros(factors.shape[0], dtype=torch.long)
        for j, size in enumerate(self.sizes):
            index = index * size + factors[:, j].long()
        return index

    def all_factors(self) -> torch.Tensor:
        return self.factors_of(torch.arange(len(self)))


@dataclass
class FactorData(ImageData):
    """An :class:`ImageData` whose every image comes with its factor values: ``train_factors`` and
    ``test_factors`` are (N, F) int64 rows of ``grid``; ``images_of`` reaches any combination."""

    grid: Optional[FactorGrid] = None
    train_factors: Optional[torch.Tensor] = None
    test_factors: Optional[torch.Tensor] = None
    all_images: Optional[torch.Tensor] = None  # every combination, in grid order

    def images_of(self, factors: torch.Tensor) -> torch.Tensor:
        """The uint8 images of (N, F) factor values."""
        return self.all_images[self.grid.index_of(factors)]


def fixed_factor_batch(grid: FactorGrid, factor: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(batch_size, F) factor values drawn uniformly from the grid, all sharing one random value of
    ``factor``: the batches the BetaVAE and FactorVAE scores are built from."""
    if not 0 <= factor < len(grid.sizes):
        raise DataError(f"factor {factor} is not one of the grid's {len(grid.sizes)} factors ({', '.join(grid.names)})")
    values = torch.stack([torch.randint(size, (batch_size,), generator=generator) for size in grid.sizes], dim=1)
    values[:, factor] = torch.randint(grid.sizes[factor], (1,), generator=generator)
    return values


def _held_out(images: torch.Tensor, grid: FactorGrid, test_fraction: float, source: str) -> FactorData:
    n = images.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(HOLD_OUT_SEED))
    n_test = max(1, round(n * test_fraction))
    test_idx, train_idx = order[:n_test].sort().values, order[n_test:].sort().values
    factors = grid.all_factors()
    return FactorData(train_images=images[train_idx], test_images=images[test_idx], source=source, grid=grid,
                      train_factors=factors[train_idx], test_factors=factors[test_idx], all_images=images)


def _cached(name: str, key: str, render) -> tuple[torch.Tensor, str]:
    """The images of a build, from the cache when an identical build is there (written atomically)."""
    path = cache_dir() / "factors" / f"{name}-{key}-v{RENDERER_VERSION}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["images"], str(path)
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt, not trusted
            path.unlink(missing_ok=True)
    images = render()
    try:
        atomic_write_bytes(path, safetensors_bytes({"images": images.contiguous()}))
    except OSError:  # a read-only cache: the build is used as it is
        return images, "generated (not cached)"
    return images, str(path)


def _coordinates(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres in [-1, 1]: x grows to the right, y downwards (row order)."""
    axis = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
    return axis.view(1, 1, size), axis.view(1, size, 1)


# ------------------------------------------------------------------------------ shapes2d

SHAPES = ("square", "ellipse", "triangle")


def _render_shapes(grid: FactorGrid, size: int) -> torch.Tensor:
    factors = grid.all_factors().double()
    px, py = _coordinates(size)
    _, n_scale, n_angle, n_x, n_y = grid.sizes
    out = torch.empty(len(grid), 1, size, size, dtype=torch.uint8)
    for start in range(0, len(grid), 1024):
        f = factors[start:start + 1024]
        shape = f[:, 0].view(-1, 1, 1)
        half = (0.18 + 0.14 * f[:, 1] / max(n_scale - 1, 1)).view(-1, 1, 1)  # half-size: 0.18 .. 0.32
        angle = (2 * math.pi * f[:, 2] / n_angle).view(-1, 1, 1)
        cx = (-0.6 + 1.2 * f[:, 3] / max(n_x - 1, 1)).view(-1, 1, 1)
        cy = (-0.6 + 1.2 * f[:, 4] / max(n_y - 1, 1)).view(-1, 1, 1)
        dx, dy = px - cx, py - cy
        u = dx * torch.cos(angle) + dy * torch.sin(angle)
        v = -dx * torch.sin(angle) + dy * torch.cos(angle)
        square = torch.maximum(u.abs(), v.abs()) <= half
        ellipse = (u / half) ** 2 + (v / (0.5 * half)) ** 2 <= 1
        triangle = (v <= 0.5 * half) & (math.sqrt(3) * u.abs() <= half + v)  # apex up (v = -half), base below
        inside = torch.where(shape == 0, square, torch.where(shape == 1, ellipse, triangle))
        out[start:start + 1024, 0] = inside.to(torch.uint8) * 255
    return out


@register_dataset("shapes2d")
def shapes2d(
    root: Optional[str],
    scales: PositiveInt = 4,
    orientations: PositiveInt = 8,
    positions: PositiveInt = 16,
    size: Annotated[int, Field(ge=16)] = 64,
    test_fraction: Fraction = 0.1,
) -> FactorData:
    """Shapes (square, ellipse, triangle) on 64 x 64 with known factors: shape, scale, orientation, x, y.

    Generated, binary (0/255), every combination once (3 x 4 x 8 x 16 x 16 = 24,576 images by
    default); dSprites' factors drawn by our own code, not the dSprites file. ``root`` is unused.
    """
    grid = FactorGrid(("shape", "scale", "orientation", "x", "y"), (len(SHAPES), scales, orientations, positions,
                                                                     positions))
    key = f"{scales}-{orientations}-{positions}-{size}"
    images, source = _cached("shapes2d", key, lambda: _render_shapes(grid, size))
    data = _held_out(images, grid, test_fraction, source)
    data.classes = list(SHAPES)  # the shape is also a class label
    data.train_labels, data.test_labels = data.train_factors[:, 0].clone(), data.test_factors[:, 0].clone()
    return data


# ------------------------------------------------------------------------------ color-squares

# Object and background colours (RGB in [0, 1]): six saturated hues, three dark backgrounds.
OBJECT_COLORS = ((1.0, 0.2, 0.2), (1.0, 0.8, 0.2), (0.3, 1.0, 0.3), (0.2, 0.9, 1.0), (0.3, 0.4, 1.0), (1.0, 0.3, 1.0))
BACKGROUND_COLORS = ((0.0, 0.0, 0.0), (0.25, 0.25, 0.25), (0.1, 0.1, 0.35))


def _render_squares(grid: FactorGrid, size: int) -> torch.Tensor:
    factors = grid.all_factors()
    px, py = _coordinates(size)
    _, _, n_size, n_x, n_y = grid.sizes
    objects = torch.tensor(OBJECT_COLORS, dtype=torch.float64)[factors[:, 0]].view(-1, 3, 1, 1)
    backgrounds = torch.tensor(BACKGROUND_COLORS, dtype=torch.float64)[factors[:, 1]].view(-1, 3, 1, 1)
    f = factors.double()
    half = (0.15 + 0.15 * f[:, 2] / max(n_size - 1, 1)).view(-1, 1, 1)
    cx = (-0.6 + 1.2 * f[:, 3] / max(n_x - 1, 1)).view(-1, 1, 1)
    cy = (-0.6 + 1.2 * f[:, 4] / max(n_y - 1, 1)).view(-1, 1, 1)
    inside = ((px - cx).abs() <= half) & ((py - cy).abs() <= half)
    pixels = torch.where(inside.unsqueeze(1), objects, backgrounds)
    return (pixels * 255).round().to(torch.uint8)


@register_dataset("color-squares")
def color_squares(
    root: Optional[str],
    sizes: PositiveInt = 3,
    positions: PositiveInt = 8,
    size: Annotated[int, Field(ge=8)] = 32,
    test_fraction: Fraction = 0.1,
) -> FactorData:
    """Coloured squares on coloured backgrounds, RGB, with known factors: object colour, background
    colour, size, x, y (6 x 3 x 3 x 8 x 8 = 3,456 images of 3 x 32 x 32 by default). ``root`` is unused."""
    if len(OBJECT_COLORS) * len(BACKGROUND_COLORS) * sizes * positions * positions < 2:
        raise DataError("color-squares needs at least two images")
    grid = FactorGrid(("object_color", "background_color", "size", "x", "y"),
                      (len(OBJECT_COLORS), len(BACKGROUND_COLORS), sizes, positions, positions))
    images, source = _cached("color-squares", f"{sizes}-{positions}-{size}", lambda: _render_squares(grid, size))
    return _held_out(images, grid, test_fraction, source)
