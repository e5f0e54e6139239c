"""Pictures as small lossless PNGs: grayscale pictures as 8-bit grayscale files, colour ones as RGB,
and the pixels read back equal to what torchvision's writer would have stored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.utils import make_grid, save_image

from vaezoo.png import save_figure_png, save_image_png
from vaezoo.viz.images import labelled_panels


def _pixels(path):
    with Image.open(path) as image:
        return image.mode, np.asarray(image.convert("RGB"))


def test_a_grid_of_grayscale_images_is_a_grayscale_file_with_torchvisions_pixels(tmp_path):
    torch.manual_seed(0)
    grid = make_grid(torch.rand(16, 1, 28, 28), nrow=4, padding=2, pad_value=1.0)  # 3 equal channels
    save_image(grid, str(tmp_path / "torchvision.png"))
    save_image_png(grid, tmp_path / "ours.png")
    mode, ours = _pixels(tmp_path / "ours.png")
    assert mode == "L"
    assert np.array_equal(ours, _pixels(tmp_path / "torchvision.png")[1])
    assert (tmp_path / "ours.png").stat().st_size < 0.6 * (tmp_path / "torchvision.png").stat().st_size
    save_image_png(grid[:1], tmp_path / "one-channel.png")  # a one-channel picture: the same pixels
    mode, pixels = _pixels(tmp_path / "one-channel.png")
    assert mode == "L" and np.array_equal(pixels, ours)


def test_colour_stays_colour_and_other_formats_go_to_torchvision(tmp_path):
    torch.manual_seed(0)
    picture = torch.rand(3, 10, 12)
    save_image(picture, str(tmp_path / "torchvision.png"))
    save_image_png(picture, tmp_path / "ours.png")
    mode, ours = _pixels(tmp_path / "ours.png")
    assert mode == "RGB" and np.array_equal(ours, _pixels(tmp_path / "torchvision.png")[1])
    save_image_png(picture, tmp_path / "deep" / "ours.jpg")
    with Image.open(tmp_path / "deep" / "ours.jpg") as image:
        assert image.format == "JPEG"


def test_a_figure_without_colour_is_grayscale_and_one_with_transparency_keeps_it(tmp_path):
    grid = make_grid(torch.rand(4, 1, 8, 8), nrow=2)
    path = labelled_panels({"left": grid, "right": grid}, tmp_path / "panels.png", title="two panels")
    mode, pixels = _pixels(path)
    assert mode == "L" and pixels.shape[0] > 0 and pixels.min() < 50  # the labels' dark text is there

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1), dpi=50)
    FigureCanvasAgg(fig)
    fig.patch.set_alpha(0.0)
    fig.add_subplot(1, 1, 1).plot([0, 1], [0, 1], color="tab:red")
    save_figure_png(fig, tmp_path / "transparent.png")
    with Image.open(tmp_path / "transparent.png") as image:
        assert image.mode == "RGBA" and image.size == (100, 50)
        alpha = np.asarray(image)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255


@pytest.mark.parametrize("suffix", [".PNG", ".png"])
def test_the_suffix_is_read_without_regard_to_case(tmp_path, suffix):
    save_image_png(torch.zeros(3, 4, 4), tmp_path / f"black{suffix}")
    with Image.open(tmp_path / f"black{suffix}") as image:
        assert image.format == "PNG" and image.mode == "L"
