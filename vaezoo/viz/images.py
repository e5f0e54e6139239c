"""Pictures of a VAE: prior samples, reconstructions, latent traversals, interpolations, latent maps.

Every function returns the picture as a float tensor of shape (3, H, W) with values in
[0, 1] and, given ``path``, also writes it as a PNG. Grids are built with
``torchvision.utils.make_grid``; the latent map, which needs axes and a legend, is drawn by
matplotlib on an Agg canvas created for it (pyplot's global backend is never touched).
Random draws use a private generator state seeded by ``seed``, so the caller's RNG is
left as it was.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Optional, Sequence

import torch
from torchvision.utils import make_grid, save_image

from ..evaluation.data import to_float_images
from ..evaluation.metrics import kl_per_dimension

__all__ = [
    "image_grid", "save_png", "sample_grid", "reconstruction_grid", "rank_dims_by_kl", "traversal_grid",
    "interpolation_grid", "pca_2d", "latent_map",
]

PAD_VALUE = 1.0  # white separators between tiles


def _device(model) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _as_input(model, x: torch.Tensor) -> torch.Tensor:
    x = to_float_images(x)
    if x.ndim == len(model.input_shape):
        x = x.unsqueeze(0)
    return x.to(_device(model), next(model.parameters()).dtype)


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """Tile (N, C, H, W) images (uint8 or float in [0, 1]) into one (3, H', W') image in [0, 1]."""
    images = to_float_images(images).detach().float().cpu().clamp(0.0, 1.0)
    return make_grid(images, nrow=max(1, nrow), padding=padding, pad_value=PAD_VALUE)


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write a (3, H, W) [0, 1] picture as a PNG, creating the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(image, str(path))
    return path


def _finish(grid: torch.Tensor, path) -> torch.Tensor:
    if path is not None:
        save_png(grid, path)
    return grid


@torch.no_grad()
def sample_grid(
    model, n: int = 64, *, nrow: Optional[int] = None, seed: int = 0, mean: bool = True, path=None
) -> torch.Tensor:
    """``n`` images decoded from prior samples z ~ p(z): the mean of p(x|z), or a draw (``mean=False``)."""
    device = _device(model)
    with _seeded(seed, device):
        images = model.sample(n, mean=mean)
    return _finish(image_grid(images, nrow or math.ceil(math.sqrt(n))), path)


@torch.no_grad()
def reconstruction_grid(model, x: torch.Tensor, *, pairs_per_row: int = 8, path=None) -> torch.Tensor:
    """Each input immediately followed by its reconstruction (the mean of p(x|z) at the posterior mean).

    The grid has ``2 * pairs_per_row`` tiles per row: input, reconstruction, input, ...
    """
    x = _as_input(model, x)
    recon = model.reconstruct(x)
    tiles = torch.stack([x, recon], dim=1).flatten(0, 1)  # x0, r0, x1, r1, ...
    return _finish(image_grid(tiles, 2 * pairs_per_row), path)


@torch.no_grad()
def rank_dims_by_kl(model, x: torch.Tensor, batch_size: int = 512) -> tuple[list[int], torch.Tensor]:
    """Latent dimensions sorted by their mean KL(q(z_j|x) || N(0, 1)) over ``x``, most informative first.

    Returns the order and the per-dimension KL (nats). Dimensions the encoder ignores have
    KL near 0 and their traversals show nothing, so ranking puts the useful rows on top.
    """
    x = to_float_images(x)
    total = None
    for start in range(0, x.shape[0], batch_size):
        posterior = model.encode(_as_input(model, x[start: start + batch_size]))
        kl = kl_per_dimension(posterior).double().sum(dim=0).cpu()
        total = kl if total is None else total + kl
    kl = total / x.shape[0]
    order = torch.argsort(kl, descending=True, stable=True).tolist()
    return order, kl


@torch.no_grad()
def traversal_grid(
    model,
    x: torch.Tensor,
    *,
    dims: Optional[Sequence[int]] = None,
    values: Sequence[float] | torch.Tensor = tuple(torch.linspace(-3, 3, 9).tolist()),
    num_dims: int = 8,
    reference: Optional[torch.Tensor] = None,
    order_by_kl: bool = True,
    offset: bool = False,
    path=None,
) -> torch.Tensor:
    """Latent traversals of one input: one row per latent dimension, one column per value.

    Every latent is held at the posterior mean of ``x`` except the swept one, which is set
    to each of ``values`` (or, with ``offset=True``, shifted by them, as in the seed
    notebook). ``dims`` picks the dimensions (default: all); with ``order_by_kl`` they are
    ranked by mean KL over ``reference`` (default: ``x``), and without explicit ``dims`` the
    ``num_dims`` most informative are shown.
    """
    x = _as_input(model, x)[:1]
    values = torch.as_tensor(values, dtype=x.dtype, device=x.device).flatten()
    chosen = list(range(model.latent_dim)) if dims is None else [int(d) for d in dims]
    bad = [d for d in chosen if not 0 <= d < model.latent_dim]
    if bad:
        raise ValueError(f"latent dimensions {bad} are out of range for a {model.latent_dim}-d latent")
    if order_by_kl:
        order, _ = rank_dims_by_kl(model, x if reference is None else reference)
        rank = {d: i for i, d in enumerate(order)}
        chosen = sorted(chosen, key=rank.__getitem__)
        if dims is None:
            chosen = chosen[:num_dims]
    base = model.encode(x).mean[0]
    z = base.repeat(len(chosen), len(values), 1)  # (rows, cols, D)
    for row, d in enumerate(chosen):
        z[row, :, d] = (base[d] + values) if offset else values
    images = model.decode(z.flatten(0, 1)).mean
    return _finish(image_grid(images, len(values)), path)


@torch.no_grad()
def interpolation_grid(model, x_a: torch.Tensor, x_b: torch.Tensor, *, steps: int = 10, path=None) -> torch.Tensor:
    """Rows that walk the latent line between the posterior means of x_a[i] and x_b[i].

    Each row: the input a, ``steps`` decodings of (1 - t) mu_a + t mu_b for t from 0 to 1,
    the input b; so ``steps + 2`` tiles per row.
    """
    x_a, x_b = _as_input(model, x_a), _as_input(model, x_b)
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_a and x_b must have the same shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the two ends), got {steps}")
    mu_a, mu_b = model.encode(x_a).mean, model.encode(x_b).mean
    t = torch.linspace(0, 1, steps, device=mu_a.device, dtype=mu_a.dtype).view(1, steps, 1)
    z = (1 - t) * mu_a.unsqueeze(1) + t * mu_b.unsqueeze(1)  # (rows, steps, D)
    decoded = model.decode(z.flatten(0, 1)).mean.view(x_a.shape[0], steps, *x_a.shape[1:])
    tiles = torch.cat([x_a.unsqueeze(1), decoded, x_b.unsqueeze(1)], dim=1).flatten(0, 1)
    return _finish(image_grid(tiles, steps + 2), path)


def pca_2d(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project (N, D) points onto their first two principal components.

    Returns the (N, 2) coordinates and the fraction of variance each component explains.
    Signs are fixed (largest loading positive) so the picture is the same run to run.
    """
    points = points.double()
    centered = points - points.mean(dim=0)
    _, s, vh = torch.linalg.svd(centered, full_matrices=False)
    components = vh[:2]
    if components.shape[0] < 2:  # a 1-d latent: pad with a zero axis
        components = torch.cat([components, torch.zeros_like(components)])
    signs = torch.sign(components.gather(1, components.abs().argmax(dim=1, keepdim=True)))
    components = components * torch.where(signs == 0, torch.ones_like(signs), signs)
    variance = s.pow(2)
    ratio = torch.zeros(2, dtype=points.dtype)
    ratio[: min(2, variance.numel())] = (variance / variance.sum().clamp_min(1e-300))[:2]
    return centered @ components.T, ratio


@torch.no_grad()
def latent_map(
    model,
    x: torch.Tensor,
    labels: Optional[torch.Tensor] = None,
    classes: Optional[Sequence[str]] = None,
    *,
    batch_size: int = 512,
    title: Optional[str] = None,
    size: tuple[float, float] = (7.0, 6.0),
    dpi: int = 100,
    path=None,
) -> torch.Tensor:
    """Scatter plot of the posterior means of ``x`` on their first two principal components,
    coloured by ``labels`` with a legend of ``classes`` (e.g. the Fashion-MNIST class names)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = to_float_images(x)
    means = torch.cat([model.encode(_as_input(model, x[i: i + batch_size])).mean.cpu()
                       for i in range(0, x.shape[0], batch_size)])
    coords, ratio = pca_2d(means)
    coords = coords.float().numpy()
    fig = Figure(figsize=size, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    dot = max(2.0, min(20.0, 3000.0 / max(1, len(coords))))  # visible for 300 points, no blob for 10,000
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=dot, alpha=0.6, color="tab:blue", linewidths=0)
    else:
        labels = labels.cpu()
        present = sorted(set(labels.tolist()))
        cmap = matplotlib.colormaps["tab10" if len(present) <= 10 else "tab20"]
        for i, label in enumerate(present):
            mask = (labels == label).numpy()
            name = classes[label] if classes is not None and 0 <= label < len(classes) else str(label)
            ax.scatter(coords[mask, 0], coords[mask, 1], s=dot, alpha=0.6, color=cmap(i % cmap.N),
                       label=name, linewidths=0)
        ax.legend(markerscale=max(1.0, 12.0 / dot), fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xlabel(f"PC 1 ({100 * float(ratio[0]):.1f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * float(ratio[1]):.1f}% of variance)")
    ax.set_title(title or f"posterior means of {x.shape[0]:,} images (PCA of {model.latent_dim}-d latent)")
    fig.tight_layout()
    canvas.draw()
    rgba = torch.frombuffer(bytearray(canvas.buffer_rgba()), dtype=torch.uint8)
    width, height = canvas.get_width_height()
    image = rgba.view(height, width, 4)[..., :3].permute(2, 0, 1).float().div(255.0)
    return _finish(image, path)
