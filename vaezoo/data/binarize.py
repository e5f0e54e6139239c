"""Binarization of [0, 1] images for Bernoulli likelihoods.

Two protocols, picked by ``data.binarize``:

* ``static``: one Bernoulli draw per pixel with a fixed seed, done once when the data is
  loaded (:func:`static_binarize`, called by :func:`vaezoo.data.splits.load_splits`). Every
  run sees the same binary images: the "statically binarized" protocol of Larochelle &
  Murray (2011), whose numbers are only comparable with other static results.
* ``dynamic``: a fresh draw each time an image is used (:func:`dynamic_binarize`, called
  per batch by the training loop). Acts as data augmentation and gives lower train/test
  gaps; the data stays uint8 grey levels on the device.

Images are stored as uint8 everywhere in vaezoo; a statically binarized image is uint8
{0, 255}, so the loop's usual ``x.float() / 255`` (:func:`to_float`) yields {0, 1}.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["STATIC_BINARIZE_SEED", "TEST_BINARIZE_SEED", "VAL_BINARIZE_SEED", "static_binarize", "dynamic_binarize",
           "to_float"]

STATIC_BINARIZE_SEED = 1234  # part of the protocol: changing it changes every static result
# The one draw of the test images that every binarized evaluation scores (static or dynamic recipe),
# and of the validation images that a dynamically binarizing training validates on each epoch (its
# training images are drawn anew per batch; a static recipe's are drawn once with the seed above)
TEST_BINARIZE_SEED = STATIC_BINARIZE_SEED + 1
VAL_BINARIZE_SEED = STATIC_BINARIZE_SEED + 2
_CHUNK = 8192  # images per draw; bounds the float32 temporary for 60k x 784 to ~25 MB


def to_float(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images (0..255) to ``dtype`` in [0, 1]. Float input is only cast."""
    if x.dtype == torch.uint8:
        return x.to(dtype).div_(255.0)
    return x.to(dtype)


def to_float_images(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; floating-point tensors pass through unchanged."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise ValueError(f"images must be uint8 or floating point, got {x.dtype}")
    return x


def static_binarize(images: torch.Tensor, seed: int = STATIC_BINARIZE_SEED) -> torch.Tensor:
    """One fixed-seed Bernoulli draw: pixel -> 255 with probability ``pixel / 255``, else 0.

    ``images``: uint8 of any shape, on the CPU. Returns uint8 {0, 255}, same shape. The
    result depends only on ``images`` and ``seed`` (drawn in fixed-size chunks with a CPU
    generator), so it is the same on every call and every machine.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"static_binarize expects uint8 images (0..255), got {images.dtype}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    flat = images.reshape(images.shape[0], -1) if images.dim() > 1 else images.reshape(-1, 1)
    out = torch.empty_like(flat)
    for start in range(0, flat.shape[0], _CHUNK):
        block = flat[start: start + _CHUNK].cpu()
        u = torch.rand(block.shape, generator=gen)
        # u < p with p = x/255, compared as u*255 < x so that 0 stays 0 and 255 stays 255.
        out[start: start + _CHUNK] = (u * 255.0 < block.float()).to(torch.uint8).mul_(255).to(out.device)
    return out.reshape(images.shape)


def dynamic_binarize(x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A fresh Bernoulli draw: each pixel is 1 with probability ``x`` (float in [0, 1]).

    Returns a tensor of ``x``'s dtype and device holding 0s and 1s. Pass a ``generator`` on
    ``x``'s device (and save its state in checkpoints) to make the draws reproducible and
    resumable; ``None`` uses the global RNG. uint8 input is read as 0..255 grey levels.
    """
    if x.dtype == torch.uint8:
        x = to_float(x)
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=torch.float32)
    return (u < x).to(x.dtype)
