"""Pictures of a VAE: prior samples, reconstructions, latent traversals, interpolations, latent maps.

Every function returns the picture as a float tensor of shape (3, H, W) with values in
[0, 1] and, given ``path``, also writes it as a PNG (one channel when the picture has no colour,
see :mod:`vaezoo.png`). Latents go through the model's family
(``posterior_means``, ``decode_latents``), so each picture works for every family; ``level``
picks a latent level of a hierarchy (default: the top one), and a conditional model takes the
images' labels ``y``. Grids are built with
``torchvision.utils.make_grid``; the latent map, which needs axes and a legend, is drawn by
matplotlib on an Agg canvas created for it (pyplot's global backend is never touched).
Random draws use a private generator state seeded by ``seed``, so the caller's RNG is
left as it was.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch
from torchvision.utils import make_grid

from ..errors import UsageError
from ..data.binarize import to_float_images
from ..png import save_figure_png, save_image_png

__all__ = [
    "image_grid", "save_png", "sample_grid", "class_grid", "reconstruction_grid", "rank_dims_by_kl", "traversal_grid",
    "interpolation_grid", "pca_2d", "latent_map", "resolve_level", "labelled_panels", "labelled_grid",
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


def _as_labels(model, y, n: int) -> Optional[torch.Tensor]:
    if not model.conditional:
        return None
    if y is None:
        raise UsageError(f"the '{model.family}' family is conditional: give the images' labels (y)")
    return torch.as_tensor(y, device=_device(model)).long().reshape(-1)[:n]


def resolve_level(model, level: Optional[str]) -> str:
    """``level`` checked against the model's latent levels; default: the top one."""
    names = [name for name, _ in model.latent_levels]
    if level is None:
        return names[-1]
    if level not in names:
        raise UsageError(f"latent level {level!r} is not one of this {model.family} model's levels: {', '.join(names)}")
    return level


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """Tile (N, C, H, W) images (uint8 or float in [0, 1]) into one (3, H', W') image in [0, 1]."""
    images = to_float_images(images).detach().float().cpu().clamp(0.0, 1.0)
    return make_grid(images, nrow=max(1, nrow), padding=padding, pad_value=PAD_VALUE)


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write a (3, H, W) [0, 1] picture as a PNG (grayscale when it has no colour), creating the folder."""
    return save_image_png(image, path)


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


def labelled_panels(panels: Mapping[str, torch.Tensor], path: str | Path, title: str = "") -> Path:
    """Pictures side by side, each under its label (``{label: (3, H, W) image in [0, 1]}``), as a PNG.
    Drawn on a matplotlib Agg canvas of its own, so pyplot's global backend is untouched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = sum(image.shape[-1] for image in panels.values())
    height = max(image.shape[-2] for image in panels.values())
    fig = Figure(figsize=(max(4.0, width / 60 + 0.4 * len(panels)), height / 60 + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, image) in zip(axes, panels.items()):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure_png(fig, path)


def labelled_grid(grid: torch.Tensor, tile: tuple[int, int], path: str | Path, *, row_labels: Sequence[str] = (),
                  column_labels: Sequence[str] = (), title: str = "", padding: int = 2) -> Path:
    """A grid of :func:`image_grid` (tiles of ``tile`` = (H, W) pixels) saved as a PNG with a label
    beside each row and above each column: which dimension, which value, which tile is the input."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = grid.shape[-2:]
    label_room = 0.12 * max((len(label) for label in row_labels), default=0)
    # small tiles (28 x 28) are drawn larger than one screen pixel each, wide enough for a column's label
    scale = max(1.0, 360 / width, (48 if column_labels else 0) / (tile[1] + padding))
    fig = Figure(figsize=(width * scale / 100 + label_room + 0.4, height * scale / 100 + 0.9), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(grid.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")

    def centers(count: int, size: int) -> list[float]:
        return [padding + i * (size + padding) + size / 2 - 0.5 for i in range(count)]

    ax.set_yticks(centers(len(row_labels), tile[0]), list(row_labels), fontsize=8)
    ax.set_xticks(centers(len(column_labels), tile[1]), list(column_labels), fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9, pad=14 if column_labels else 6)
    fig.tight_layout()
    return save_figure_png(fig, path)


@torch.no_grad()
def class_grid(
    model, per_class: int = 8, *, classes: Optional[Sequence[int]] = None, seed: int = 0, mean: bool = True, path=None,
    nrow: Optional[int] = None,
) -> torch.Tensor:
    """A conditional model's samples, one row per class (all classes by default), ``per_class`` columns;
    the samples of one class alone fill a square grid (``nrow`` per row)."""
    if not model.conditional:
        raise UsageError(f"a class grid needs a conditional model; the '{model.family}' family is not")
    rows = list(range(model.config.num_classes)) if classes is None else [int(c) for c in classes]
    labels = torch.tensor(rows, device=_device(model)).repeat_interleave(per_class)
    with _seeded(seed, _device(model)):
        images = model.sample(labels.numel(), mean=mean, y=labels)
    if nrow is None:
        nrow = math.ceil(math.sqrt(per_class)) if len(rows) == 1 else per_class
    return _finish(image_grid(images, nrow), path)


@torch.no_grad()
def reconstruction_grid(model, x: torch.Tensor, y=None, *, pairs_per_row: int = 8, path=None) -> torch.Tensor:
    """Each input immediately followed by its reconstruction (the mean of p(x|z) at the posterior mean).

    The grid has ``2 * pairs_per_row`` tiles per row: input, reconstruction, input, ...
    """
    x = _as_input(model, x)
    recon = model.reconstruct(x, _as_labels(model, y, x.shape[0]))
    tiles = torch.stack([x, recon], dim=1).flatten(0, 1)  # x0, r0, x1, r1, ...
    return _finish(image_grid(tiles, 2 * pairs_per_row), path)


@torch.no_grad()
def rank_dims_by_kl(model, x: torch.Tensor, y=None, *, level: Optional[str] = None,
                    batch_size: int = 512) -> tuple[list[int], torch.Tensor]:
    """A level's latent dimensions sorted by their mean KL over ``x``, most informative first.

    The KL of each dimension is taken along the mean path (every level at its posterior mean);
    where a level's prior has no per-dimension KL (``vamp``, ``mog``), the variance of the
    posterior means across ``x`` (the active-unit statistic) ranks the dimensions instead.
    Returns the order and the per-dimension score. Dimensions the encoder ignores score near 0
    and their traversals show nothing, so ranking puts the useful rows on top.
    """
    level = resolve_level(model, level)
    x = to_float_images(x)
    total, means = None, []
    for start in range(0, x.shape[0], batch_size):
        chunk = _as_input(model, x[start: start + batch_size])
        labels = _as_labels(model, None if y is None else y[start: start + batch_size], chunk.shape[0])
        eps = torch.zeros(1, chunk.shape[0], *model.noise_shape, device=chunk.device, dtype=chunk.dtype)
        draw = next(lv for lv in model.latent_pass(chunk, eps, labels).levels if lv.name == level)
        per_dim = draw.kl_per_dim()
        if per_dim is None:
            means.append(draw.z[0].double().cpu())
            continue
        kl = per_dim[0].double().sum(dim=0).cpu()
        total = kl if total is None else total + kl
    score = torch.cat(means).var(dim=0) if means else total / x.shape[0]
    order = torch.argsort(score, descending=True, stable=True).tolist()
    return order, score


@torch.no_grad()
def traversal_grid(
    model,
    x: torch.Tensor,
    y=None,
    *,
    level: Optional[str] = None,
    dims: Optional[Sequence[int]] = None,
    values: Sequence[float] | torch.Tensor = tuple(torch.linspace(-3, 3, 9).tolist()),
    num_dims: int = 8,
    reference: Optional[torch.Tensor] = None,
    reference_labels=None,
    order_by_kl: bool = True,
    offset: bool = False,
    with_input: bool = False,
    path=None,
) -> torch.Tensor:
    """Latent traversals of one input: one row per latent dimension of ``level``, one column per value;
    ``with_input`` adds a first row with the input and its reconstruction (at the posterior mean).

    Every latent is held at the posterior mean of ``x`` (every level, along the mean path)
    except the swept one, which is set to each of ``values`` (or, with ``offset=True``, shifted
    by them, as in the seed notebook). ``dims`` picks the dimensions (default: all); with
    ``order_by_kl`` they are ranked by mean KL over ``reference`` (default: ``x``), and without
    explicit ``dims`` the ``num_dims`` most informative are shown.
    """
    level = resolve_level(model, level)
    x = _as_input(model, x)[:1]
    labels = _as_labels(model, y, 1)
    size = model.level_dims()[level]
    values = torch.as_tensor(values, dtype=x.dtype, device=x.device).flatten()
    chosen = list(range(size)) if dims is None else [int(d) for d in dims]
    bad = [d for d in chosen if not 0 <= d < size]
    if bad:
        raise UsageError(f"latent dimensions {bad} are out of range for the {size}-d level {level}")
    if order_by_kl:
        ref, ref_labels = (x, labels) if reference is None else (reference, reference_labels)
        order, _ = rank_dims_by_kl(model, ref, ref_labels, level=level)
        rank = {d: i for i, d in enumerate(order)}
        chosen = sorted(chosen, key=rank.__getitem__)
        if dims is None:
            chosen = chosen[:num_dims]
    base = model.posterior_means(x, labels)
    tiles = len(chosen) * len(values)
    z = {name: value[0].repeat(tiles, 1) for name, value in base.items()}  # (rows * cols, D) per level
    swept = z[level].view(len(chosen), len(values), size)
    for row, d in enumerate(chosen):
        swept[row, :, d] = (base[level][0, d] + values) if offset else values
    tile_labels = None if labels is None else labels.expand(tiles)
    images = model.decode_latents(z, tile_labels).mean
    if with_input:
        first_row = torch.full((len(values), *images.shape[1:]), PAD_VALUE, dtype=images.dtype, device=images.device)
        first_row[0], first_row[1] = x[0].to(images.dtype), model.decode_latents(base, labels).mean[0]
        images = torch.cat([first_row, images])
    return _finish(image_grid(images, len(values)), path)


@torch.no_grad()
def interpolation_grid(model, x_a: torch.Tensor, x_b: torch.Tensor, y_a=None, y_b=None, *, steps: int = 10,
                       path=None) -> torch.Tensor:
    """Rows that walk the latent line between the posterior means of x_a[i] and x_b[i].

    Each row: the input a, ``steps`` decodings of (1 - t) mu_a + t mu_b (every level) for t
    from 0 to 1, the input b; so ``steps + 2`` tiles per row. A conditional model keeps the
    label of a along the row.
    """
    x_a, x_b = _as_input(model, x_a), _as_input(model, x_b)
    if x_a.shape != x_b.shape:
        raise UsageError(f"x_a and x_b must have the same shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}")
    if steps < 2:
        raise UsageError(f"steps must be at least 2 (the two ends), got {steps}")
    rows = x_a.shape[0]
    labels_a, labels_b = _as_labels(model, y_a, rows), _as_labels(model, y_b, rows)
    mu_a, mu_b = model.posterior_means(x_a, labels_a), model.posterior_means(x_b, labels_b)
    t = torch.linspace(0, 1, steps, device=x_a.device, dtype=x_a.dtype)

    def along(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (rows, ...) ends -> (rows * steps, ...)
        w = t.view(1, steps, *[1] * (a.dim() - 1))  # any latent's shape: a vector, a VQ model's code grid
        return ((1 - w) * a.unsqueeze(1) + w * b.unsqueeze(1)).flatten(0, 1)

    z = {name: along(mu_a[name], mu_b[name]) for name in mu_a}
    labels = None if labels_a is None else labels_a.repeat_interleave(steps)
    decoded = model.decode_latents(z, labels).mean.view(rows, steps, *x_a.shape[1:])
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
    level: Optional[str] = None,
    batch_size: int = 512,
    title: Optional[str] = None,
    size: tuple[float, float] = (7.0, 6.0),
    dpi: int = 100,
    path=None,
) -> torch.Tensor:
    """Scatter plot of the posterior means of ``x`` (of ``level``, default the top one) on their first
    two principal components, coloured by ``labels`` with a legend of ``classes`` (e.g. the
    Fashion-MNIST class names). A conditional model is encoded with those labels."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    level = resolve_level(model, level)
    x = to_float_images(x)
    means = []
    for i in range(0, x.shape[0], batch_size):
        chunk = _as_input(model, x[i: i + batch_size])
        chunk_labels = _as_labels(model, None if labels is None else labels[i: i + batch_size], chunk.shape[0])
        means.append(model.posterior_means(chunk, chunk_labels)[level].cpu())
    means = torch.cat(means)
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
    ax.set_title(title or f"posterior means of {x.shape[0]:,} images (PCA of the {means.shape[1]}-d level {level})")
    fig.tight_layout()
    canvas.draw()
    rgba = torch.frombuffer(bytearray(canvas.buffer_rgba()), dtype=torch.uint8)
    width, height = canvas.get_width_height()
    image = rgba.view(height, width, 4)[..., :3].permute(2, 0, 1).float().div(255.0)
    return _finish(image, path)
