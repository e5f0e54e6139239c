"""Pictures written as small PNGs: a picture without colour (every grid of grayscale images, and the
labelled figures drawn around them) as 8-bit grayscale, a third of the RGB file; a colour picture as
RGB, with its alpha channel only where something is transparent. Lossless either way: reading the
file back gives the same pixels in every channel. Other suffixes than ``.png`` (a ``.jpg`` grid, a
``.pdf`` figure) are written by torchvision and matplotlib as before."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

__all__ = ["png_bytes", "save_image_png", "save_figure_png"]


def _is_png(path: Path) -> bool:
    return path.suffix.lower() == ".png"


def _image(pixels: np.ndarray):
    """``pixels`` (H, W, 3 or 4) uint8 as the smallest lossless PIL image: grayscale, RGB or RGBA."""
    from PIL import Image

    if pixels.shape[-1] == 4 and bool((pixels[..., 3] == 255).all()):
        pixels = pixels[..., :3]  # opaque: the alpha channel says nothing
    if pixels.shape[-1] == 3 and bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()):
        return Image.fromarray(np.ascontiguousarray(pixels[..., 0]), "L")
    return Image.fromarray(np.ascontiguousarray(pixels), "RGBA" if pixels.shape[-1] == 4 else "RGB")


def _pixels(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) picture in [0, 1] (C = 1 or 3) as (H, W, 3) uint8, rounded as
    ``torchvision.utils.save_image`` rounds."""
    pixels = image.detach().float().cpu().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    return pixels.permute(1, 2, 0).numpy()


def png_bytes(image: torch.Tensor, optimize: bool = True) -> bytes:
    """A (C, H, W) picture in [0, 1] as the bytes of a PNG file (grayscale when it has no colour);
    ``optimize=False`` spends less time compressing (an interactive page's pictures)."""
    buffer = io.BytesIO()
    _image(_pixels(image)).save(buffer, format="PNG", optimize=optimize)
    return buffer.getvalue()


def save_image_png(image: torch.Tensor, path: str | Path) -> Path:
    """A (C, H, W) picture in [0, 1] (C = 1 or 3) to ``path``, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _is_png(path):
        from torchvision.utils import save_image

        save_image(image, str(path))
        return path
    path.write_bytes(png_bytes(image))
    return path


def save_figure_png(fig, path: str | Path) -> Path:
    """A matplotlib figure on an Agg canvas to ``path`` at its own size and dpi, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _is_png(path):
        fig.savefig(path)
        return path
    fig.canvas.draw()
    _image(np.asarray(fig.canvas.buffer_rgba())).save(path, format="PNG", optimize=True)
    return path
