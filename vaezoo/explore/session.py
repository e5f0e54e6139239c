"""What the explorer page asks of a model, answered without the web: every request is a plain
dict in and a plain dict out (images as PNG data URLs), so the server only routes and the tests
can call it directly.

A *state* is what the page moves: ``{"latents": {level: [values]}, "label": int | None}`` for the
families with continuous or categorical latents, ``{"codes": [[...]]}`` for a VQ model's grid.
Decoding always runs in eval mode without autograd, under one lock (one model, one request at a time).
"""

from __future__ import annotations

import base64
import math
import io
import threading
from typing import Any, Mapping, Optional

import numpy as np
import torch

from ..data.binarize import to_float_images
from ..errors import UsageError
from ..evaluation.quality import supports_gmm_prior, with_gmm_prior
from ..models.base import CodeLatents
from ..models.categorical import CategoricalVAE
from ..png import png_bytes
from ..schemas import DataConfig
from ..viz.images import image_grid, interpolation_grid, rank_dims_by_kl

__all__ = ["Explorer", "png_data_url", "picture_data_url", "read_upload", "MAX_UPLOAD_BYTES", "RANKING_IMAGES"]

MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # an uploaded image: far above any image these models take
RANKING_IMAGES = 500  # test images whose mean KL per dimension orders the sliders
MAX_STEPS = 32  # interpolation images per path
MAX_SAMPLES = 64


def png_data_url(images: torch.Tensor, nrow: Optional[int] = None) -> str:
    """(N, C, H, W) images in [0, 1] (or one (C, H, W)) as one PNG grid, a ``data:image/png`` URL."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    grid = image_grid(images, nrow=nrow or images.shape[0], padding=2 if images.shape[0] > 1 else 0)
    return picture_data_url(grid)


def picture_data_url(picture: torch.Tensor) -> str:
    """A (3, H, W) picture in [0, 1] (what the ``viz`` grids make) as a PNG data URL, one channel when it
    has no colour."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture, optimize=False)).decode("ascii")


def read_upload(data_url: str, input_shape: tuple[int, ...]) -> torch.Tensor:
    """An uploaded image (a data URL, PNG or JPEG) as a (1, C, H, W) float in [0, 1], refused with
    what the model takes when its size or channels differ (no silent resize: the model's answer to
    a stretched image would mislead)."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data_url, str) or "," not in data_url:
        raise UsageError("upload: expected an image as a data URL (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(data_url.split(",", 1)[1], validate=True)
    except ValueError:
        raise UsageError("upload: the image's base64 is malformed") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise UsageError(f"upload: {len(raw):,} bytes is over the {MAX_UPLOAD_BYTES:,}-byte limit")
    channels, height, width = input_shape
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.width * img.height > 4096 * 4096:
                raise UsageError(f"upload: {img.width} x {img.height} pixels is far larger than the model's "
                                 f"{width} x {height}")
            shown = (1 if img.mode in ("1", "L", "I", "I;16", "F", "LA") else 3)
            if (img.height, img.width) != (height, width) or shown != channels:
                kind = "grayscale" if shown == 1 else "colour"
                want = "grayscale" if channels == 1 else "colour (RGB)"
                raise UsageError(f"this model takes {want} images of {height} x {width} pixels; the upload is a "
                                 f"{kind} image of {img.height} x {img.width}: resize or convert it first")
            array = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UsageError(f"upload: not a readable PNG or JPEG image ({' '.join(str(exc).split())})") from None
    tensor = torch.from_numpy(array.copy())
    tensor = tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    return to_float_images(tensor.unsqueeze(0))


def _tensor(value: Any, what: str, dtype: torch.dtype) -> torch.Tensor:
    """A JSON list as a tensor, or a UsageError that names the field."""
    try:
        return torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise UsageError(f"{what}: expected numbers, got {str(value)[:60]}") from None


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise UsageError(f"{what}: expected a whole number, got {value!r}")
    if not low <= int(value) <= high:
        raise UsageError(f"{what}: {int(value)} is out of range ({low} to {high})")
    return int(value)


class Explorer:
    """The model behind one explorer page. ``test``: the test images (N, C, H, W) in [0, 1] and
    their labels, for base points, interpolation and the slider ranking; ``card``: the key figures
    shown on the page; ``data``: the training data config, for the fitted GMM prior (fitted on the
    first request for it)."""

    def __init__(self, model, name: str, test: torch.Tensor, labels: Optional[torch.Tensor] = None, *,
                 card: Optional[Mapping[str, Any]] = None, data: Optional[DataConfig] = None,
                 root: Optional[str] = None):
        self.model, self.name = model.eval(), name
        self.test, self.labels = test, labels
        self.data, self.root = data, root
        self.lock = threading.Lock()
        self._gmm = None
        self.codes = isinstance(model, CodeLatents)
        self.categorical = isinstance(model, CategoricalVAE)
        self.gmm_available = bool(supports_gmm_prior(model) and data is not None)
        self._card = {"name": name, "family": model.family, "parameters": model.num_parameters(),
                      "input_shape": list(model.input_shape), **(card or {})}
        self.levels = self._levels()

    # -- what the page shows first ----------------------------------------------------

    @torch.inference_mode()
    def _levels(self) -> list[dict[str, Any]]:
        if self.codes:
            h, w = self.model.grid
            return [{"name": "codes", "kind": "codes", "grid": [h, w], "codebook_size": self.model.codebook_size}]
        if self.categorical:
            return [{"name": "z", "kind": "categorical", "variables": self.model.variables,
                     "categories": self.model.categories}]
        reference = self.test[:RANKING_IMAGES]
        labels = None if self.labels is None or not self.model.conditional else self.labels[:RANKING_IMAGES]
        levels = []
        means = self.model.posterior_means(reference[:1], None if labels is None else labels[:1])
        image = self.model.decode_latents(means, None if labels is None else labels[:1]).mean
        for name, size in self.model.level_dims().items():
            order, score = rank_dims_by_kl(self.model, reference, labels, level=name)
            # a level the decoder does not read (a ladder decodes from z1 alone) changes nothing when moved
            moved = {**means, name: means[name] + 2.0}
            reads = not torch.equal(self.model.decode_latents(moved, None if labels is None else labels[:1]).mean, image)
            levels.append({"name": name, "kind": "gaussian", "size": size, "order": order,
                           "score": [round(float(s), 4) for s in score], "decoder_reads": reads})
        return levels

    def card(self) -> dict[str, Any]:
        return {**self._card, "levels": self.levels, "test_images": int(self.test.shape[0]),
                "conditional": bool(self.model.conditional), "classes": self._card.get("classes"),
                "gmm": self.gmm_available,
                "can_sample": bool(getattr(self.model, "can_sample", True))}

    # -- requests -------------------------------------------------------------------------

    def _label(self, request: Mapping[str, Any]) -> Optional[torch.Tensor]:
        if not self.model.conditional:
            return None
        classes = self.model.num_classes
        return torch.tensor([_int(request.get("label", 0), "label", 0, classes - 1)])

    def _test_image(self, index: Any) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        i = _int(index, "test image", 0, self.test.shape[0] - 1)
        label = None if self.labels is None or not self.model.conditional else self.labels[i:i + 1]
        return self.test[i:i + 1], label

    def _prior_model(self, prior: str):
        if prior == "model":
            return self.model
        if prior != "gmm":
            raise UsageError(f"prior: 'model' or 'gmm', got {prior!r}")
        if not self.gmm_available:
            raise UsageError(f"the '{self.model.family}' model has no fitted GMM prior here (an unconditional "
                             f"Gaussian top latent and its training data are needed)")
        if self._gmm is None:  # fitted once, on the first request that wants it
            self._gmm = with_gmm_prior(self.model, self.data, self.root).eval()
        return self._gmm

    @torch.inference_mode()
    def samples(self, request: Mapping[str, Any]) -> dict[str, Any]:
        seed = _int(request.get("seed", 0), "seed", 0, 2**31 - 1)
        n = _int(request.get("n", 16), "n", 1, MAX_SAMPLES)
        with self.lock:
            model = self._prior_model(str(request.get("prior", "model")))
            torch.manual_seed(seed)
            labels = self._label(request)
            images = model.sample(n, **({"y": labels.expand(n)} if labels is not None else {}))
        return {"image": png_data_url(images, nrow=math.ceil(math.sqrt(n)))}

    @torch.inference_mode()
    def base(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The state to start moving from: a prior sample (``source: sample``, ``seed``) or the
        posterior mean (the codes of a VQ model) of a test image (``source: test``, ``index``)."""
        source = request.get("source", "sample")
        with self.lock:
            if source == "test":
                x, label = self._test_image(request.get("index", 0))
                if self.model.conditional and label is None:  # test images without labels: the page's class
                    label = self._label(request)
                state = self._encode(x, label)
                state["input"] = png_data_url(x[0])
            elif source == "sample":
                seed = _int(request.get("seed", 0), "seed", 0, 2**31 - 1)
                torch.manual_seed(seed)
                label = self._label(request)
                state = self._sampled(label)
            else:
                raise UsageError(f"source: 'sample' or 'test', got {source!r}")
            state["image"] = png_data_url(self._decode_state(state)[0])
        return state

    def _encode(self, x: torch.Tensor, label: Optional[torch.Tensor]) -> dict[str, Any]:
        if self.codes:
            return {"codes": self.model.encode(x).indices[0].tolist()}
        means = self.model.posterior_means(x, label)
        if self.categorical:  # the most probable category of each variable
            k = self.model.categories
            return {"categories": means["z"].view(-1, k).argmax(-1).tolist(), "label": None}
        return {"latents": {name: value[0].tolist() for name, value in means.items()},
                "label": None if label is None else int(label[0])}

    def _sampled(self, label: Optional[torch.Tensor]) -> dict[str, Any]:
        if self.codes:
            if not self.model.can_sample:
                raise UsageError("this VQ-VAE has no code prior to sample from: start from a test image")
            return {"codes": self.model.code_prior.sample(1)[0].tolist()}
        z = self.model.sample_latents(1, label)
        if self.categorical:
            return {"categories": z.view(-1, self.model.categories).argmax(-1).tolist(), "label": None}
        z = z if isinstance(z, dict) else {self.levels[0]["name"]: z}
        return {"latents": {name: value[0].tolist() for name, value in z.items()},
                "label": None if label is None else int(label[0])}

    def _decode_state(self, state: Mapping[str, Any]) -> torch.Tensor:
        parameter = next(self.model.parameters())
        if self.codes:
            h, w = self.model.grid
            codes = _tensor(state.get("codes"), "codes", torch.long).to(parameter.device)
            if codes.shape != (h, w) or bool((codes < 0).any() | (codes >= self.model.codebook_size).any()):
                raise UsageError(f"codes: expected a {h} x {w} grid of codes 0 to {self.model.codebook_size - 1}")
            return self.model.decode_indices(codes.unsqueeze(0))
        if self.categorical:
            n, k = self.model.variables, self.model.categories
            chosen = _tensor(state.get("categories"), "categories", torch.long)
            if chosen.shape != (n,) or bool((chosen < 0).any() | (chosen >= k).any()):
                raise UsageError(f"categories: expected {n} categories, each 0 to {k - 1}")
            z = torch.nn.functional.one_hot(chosen, k).to(parameter).view(1, n * k)
            return self.model.decode_latents({"z": z}).mean
        given = state.get("latents")
        dims = self.model.level_dims()
        if not isinstance(given, Mapping) or set(given) != set(dims):
            raise UsageError(f"latents: expected the levels {sorted(dims)}")
        z = {}
        for name, size in dims.items():
            value = _tensor(given[name], f"latents.{name}", parameter.dtype).to(parameter.device)
            if value.shape != (size,) or not bool(torch.isfinite(value).all()):
                raise UsageError(f"latents.{name}: expected {size} finite numbers")
            z[name] = value.unsqueeze(0)
        return self.model.decode_latents(z, self._label(state)).mean

    @torch.inference_mode()
    def decode(self, state: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"image": png_data_url(self._decode_state(state)[0])}

    @torch.inference_mode()
    def resample_code(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """A VQ model's code at (row, col) drawn again from the code prior given the codes before it
        in raster order (what the autoregressive prior conditions on), the rest kept."""
        if not self.codes:
            raise UsageError(f"the '{self.model.family}' family has no code grid")
        if not self.model.can_sample:
            raise UsageError("this VQ-VAE has no code prior to draw a code from: set the code by hand")
        h, w = self.model.grid
        row, col = _int(request.get("row"), "row", 0, h - 1), _int(request.get("col"), "col", 0, w - 1)
        with self.lock:
            self._decode_state(request)  # validates the grid
            codes = _tensor(request["codes"], "codes", torch.long).unsqueeze(0)
            generator = torch.Generator().manual_seed(_int(request.get("seed", 0), "seed", 0, 2**31 - 1))
            probs = torch.softmax(self.model.code_prior.logits(codes)[0, :, row, col].float(), dim=0)
            codes[0, row, col] = int(torch.multinomial(probs, 1, generator=generator))
            state = {"codes": codes[0].tolist()}
            state["image"] = png_data_url(self._decode_state(state)[0])
        return state

    def _endpoint(self, request: Mapping[str, Any], which: str) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        if "upload" in request:
            x = read_upload(request["upload"], tuple(self.model.input_shape))
            label = self._label(request) if self.model.conditional else None
            return x, label
        return self._test_image(request.get("index", 0 if which == "a" else 1))

    @torch.inference_mode()
    def interpolate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Images along the line between the latents of two images (test images or uploads): a
        VQ model's code vectors, every level's posterior mean otherwise; the ends are the inputs."""
        steps = _int(request.get("steps", 8), "steps", 2, MAX_STEPS)
        with self.lock:
            (x_a, y_a), (x_b, _) = self._endpoint(request.get("a", {}), "a"), self._endpoint(request.get("b", {}), "b")
            # a conditional path keeps the class of its start
            grid = interpolation_grid(self.model, x_a, x_b, y_a, y_a, steps=steps)
        return {"image": picture_data_url(grid)}

    @torch.inference_mode()
    def reconstruct(self, request: Mapping[str, Any]) -> dict[str, Any]:
        x = read_upload(request.get("upload"), tuple(self.model.input_shape))
        with self.lock:
            label = self._label(request)
            state = self._encode(x, label)
            recon = self._decode_state(state)
        return {"input": png_data_url(x[0]), "image": png_data_url(recon[0])}
