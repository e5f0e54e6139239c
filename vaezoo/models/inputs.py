"""What a model's public methods accept, said in one line when it is not that.

Two depths of check, so that the training loop pays nothing for them:

* :func:`check_layout` looks at what a tensor's metadata says (type, shape, dtype) and reads
  no values: no device work, no host sync. It converts what is safe to convert: uint8 images
  (0..255) are divided by 255, bool images become 0/1, floats take the model's dtype.
* :func:`check_images` adds one reduction over the values, read back once: non-finite pixels,
  and pixels outside the range the likelihood scores (a Bernoulli likelihood is a density on
  [0, 1]: 0-255 images or negative values would give a number, and a wrong one).

The user-facing methods (``forward`` called without a training context, ``elbo``, ``iwae``,
``log_weights``, ``reconstruct``, ``refine``, ``vaezoo.evaluate``) run ``check_images``. The
families' ``encode`` scores nothing, so the likelihood's range does not bind it: it checks that
the pixels are finite (:func:`check_finite`), except inside ``forward`` (a training or evaluation
step, whose images were checked: nothing is read back there) and in a compiled graph.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence

import torch

from ..errors import UsageError

__all__ = ["check_layout", "check_finite", "check_images", "check_count", "check_labels"]


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def check_layout(x, input_shape: Sequence[int], dtype: torch.dtype, what: str = "x") -> torch.Tensor:
    """``x`` as a float batch of ``input_shape`` images in ``dtype``, from metadata alone."""
    expected = tuple(int(s) for s in input_shape)
    batch = "(B, " + _shape(expected)[1:]
    if not isinstance(x, torch.Tensor):
        hint = " (torch.from_numpy turns a NumPy array into one)" if type(x).__module__ == "numpy" else ""
        raise UsageError(f"{what} must be a torch.Tensor batch of images {batch}, got {type(x).__name__}{hint}")
    if x.dim() == len(expected) and tuple(x.shape) == expected:
        raise UsageError(f"{what} has shape {_shape(x.shape)}: one image without the batch dimension; this model "
                         f"takes a batch {batch}: use {what}.unsqueeze(0)")
    if x.dim() != len(expected) + 1:
        raise UsageError(f"{what} has shape {_shape(x.shape)}; this model takes a batch of images {batch}")
    if tuple(x.shape[1:]) != expected:
        raise UsageError(f"{what} holds images of shape {_shape(x.shape[1:])} (C, H, W); this model takes "
                         f"{_shape(expected)}")
    if x.shape[0] == 0:
        raise UsageError(f"{what} is an empty batch (shape {_shape(x.shape)}); give at least one image")
    if x.dtype == torch.uint8:
        return x.to(dtype) / 255  # 0..255 images: the [0, 1] scale the likelihoods are defined on
    if x.dtype == torch.bool:
        return x.to(dtype)
    if not x.is_floating_point():
        raise UsageError(f"{what} has dtype {x.dtype}; give float images with values in [0, 1], or uint8 images "
                         f"(0..255, divided by 255 on the way in)")
    return x if x.dtype == dtype else x.to(dtype)


def check_finite(x: torch.Tensor, what: str = "x") -> torch.Tensor:
    """No NaN or infinite pixel (one reduction, one value read back)."""
    if not bool(torch.isfinite(x).all()):
        raise UsageError(f"{what} holds NaN or infinite pixel values; every pixel must be a finite number")
    return x


def check_images(x, input_shape: Sequence[int], dtype: torch.dtype,
                 value_range: Optional[tuple[float, float]], likelihood: str, what: str = "x") -> torch.Tensor:
    """:func:`check_layout`, then the values: finite, and within ``value_range`` where the
    likelihood has one (one reduction and one read back)."""
    x = check_layout(x, input_shape, dtype, what)
    low, high, finite = torch.stack([x.min(), x.max(), torch.isfinite(x).all().to(x.dtype)]).tolist()
    if not finite:
        check_finite(x, what)
    if value_range is not None and (low < value_range[0] or high > value_range[1]):
        lo, hi = value_range
        hint = " (divide 0-255 images by 255, or pass them as uint8)" if high > 10 and hi <= 1 else ""
        raise UsageError(f"{what} has pixel values in [{low:g}, {high:g}]; the {likelihood} likelihood scores values "
                         f"in [{lo:g}, {hi:g}]{hint}")
    return x


def check_count(value, name: str, minimum: int = 1) -> int:
    """A count (samples, k, n, steps) as an int of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_labels(y, n: int, classes: Optional[int], family: str, device: torch.device) -> Optional[torch.Tensor]:
    """Class labels for ``n`` images as int64 on ``device``: one class (an int, applied to all) or
    ``n`` whole numbers in ``0..classes-1``. ``classes=None`` (a family that is not conditional)
    takes none: labels given to it would be ignored, so they are refused."""
    if classes is None:
        if y is not None:
            raise UsageError(f"the '{family}' family is not conditional: it takes no labels (y)")
        return None
    if y is None:
        raise UsageError(f"the '{family}' family is conditional: pass the class labels y (ints in 0..{classes - 1})")
    y = torch.as_tensor(y, device=device)
    if y.is_floating_point() and bool((y != y.round()).any()):
        raise UsageError(f"labels are whole class numbers; got {y.dtype} values such as "
                         f"{float(y[y != y.round()].flatten()[0]):g}")
    if not (y.is_floating_point() or y.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise UsageError(f"labels are whole class numbers; got {y.dtype}")
    y = y.long()
    y = y.expand(n) if y.dim() == 0 else y
    if y.shape != (n,):
        raise UsageError(f"y must be one class or {n} labels, got shape {tuple(y.shape)}")
    if n and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise UsageError(f"labels must be in 0..{classes - 1}, got {sorted(set(y.tolist()))[:10]}")
    return y
