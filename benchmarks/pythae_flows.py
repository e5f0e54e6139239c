"""vaezoo's planar and radial flow steps in and out of pythae 0.1.2's ``VAE_LinNF`` flows, and its
affine IAF blocks in and out of pythae's ``VAE_IAF``, so that the two libraries start from the same
flow and vaezoo scores the flow pythae trained (``peer_pythae.py``).

The IAF blocks carry over exactly, weight for weight: pythae's MADE (ReLU, sequential degrees) is
vaezoo's ``iaf`` with ``step: affine, activation: relu, first_order: reversed``; where pythae works
on the code reversed, its first layer's inputs and its head's outputs are vaezoo's reversed, and the
transfer checks that the masks then agree.

The radial steps carry over exactly: both keep alpha > 0 and beta >= -alpha with the same softplus.
The planar steps do not, quite: vaezoo uses Rezende & Mohamed's u_hat = u + (m(w.u) - w.u) w / |w|^2,
m(a) = -1 + softplus(a), which keeps every step invertible, while pythae trains u as it is. pythae's
u maps back to a vaezoo parameter whose u_hat equals it exactly when w.u > -1 (an invertible step);
a step that ended with w.u <= -1 is not invertible, its log-determinant no density, and the
transfer refuses it rather than score another model.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from vaezoo.parts.posteriors import PlanarStep, RadialStep


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))  # log(exp(y) - 1), stable for large y


@torch.no_grad()
def flows_to_pythae(steps, flows) -> None:
    """Set pythae's flow layers to compute what vaezoo's steps compute."""
    for ours, theirs in zip(steps, flows, strict=True):
        if isinstance(ours, PlanarStep):
            theirs.w.copy_(ours.w[None])
            theirs.u.copy_(ours.u_hat()[None])
            theirs.b.copy_(ours.b.reshape(1))
        elif isinstance(ours, RadialStep):
            theirs.x0.copy_(ours.z0[None])
            theirs.log_alpha.copy_(torch.log(F.softplus(ours.raw_alpha)).reshape(1))
            theirs.beta.copy_(ours.raw_beta.reshape(1))
        else:
            raise TypeError(f"no pythae counterpart for {type(ours).__name__}")


@torch.no_grad()
def flows_from_pythae(flows, steps) -> None:
    """Set vaezoo's steps to the functions pythae's trained flow layers compute."""
    for i, (theirs, ours) in enumerate(zip(flows, steps, strict=True)):
        if isinstance(ours, PlanarStep):
            w, u = theirs.w[0].double(), theirs.u[0].double()
            wu = float(w @ u)
            if wu <= -1:
                raise ValueError(f"pythae's planar step {i} ended with w.u = {wu:.3f} <= -1: not invertible, so its "
                                 f"log-determinant is no density and there is no vaezoo step that computes it")
            a = math.log(math.expm1(wu + 1))  # the w.u of the vaezoo parameter: m(a) = w.u
            raw = u + (a - wu) / float(w @ w) * w
            ours.w.copy_(w.float())
            ours.u.copy_(raw.float())
            ours.b.copy_(theirs.b[0])
            torch.testing.assert_close(ours.u_hat(), theirs.u[0], rtol=1e-4, atol=1e-5)
        elif isinstance(ours, RadialStep):
            ours.z0.copy_(theirs.x0[0])
            ours.raw_alpha.copy_(_inverse_softplus(theirs.log_alpha.exp())[0])
            ours.raw_beta.copy_(theirs.beta[0])
        else:
            raise TypeError(f"no pythae counterpart for {type(ours).__name__}")


def _iaf_layers(steps, iaf):
    """(layer index, vaezoo's masked layer, pythae's, the map from one's tensors to the other's) for every
    masked layer, blocks in the order they apply. pythae flips the code before each block and applies its
    blocks last to first, so its first block works on the code reversed, its second on it as it is, ...:
    vaezoo's ``first_order: reversed``; on a reversed block the map reverses the code's order (its own inverse)."""
    blocks = list(steps)
    if len(blocks) % 2 or any(block.step != "affine" for block in blocks):
        raise ValueError("pythae's VAE_IAF is vaezoo's iaf with step: affine and an even number of blocks "
                         "(an odd number leaves pythae's code reversed)")
    for j, (block, made) in enumerate(zip(blocks, iaf.net[::-1], strict=True)):
        ours, theirs = _linears(block), _linears(made)
        if [tuple(layer.weight.shape) for layer in ours] != [tuple(layer.weight.shape) for layer in theirs]:
            raise ValueError("the iaf blocks' hidden layers differ from pythae's MADE (n_hidden_in_made x hidden_size)")
        last = len(ours) - 1
        for i, (a, b) in enumerate(zip(ours, theirs)):
            move = partial(_flipped, i, last) if j % 2 == 0 else (lambda t: t)
            yield i, a, b, move


def _linears(module) -> list[torch.nn.Linear]:
    return [layer for layer in module.modules() if isinstance(layer, torch.nn.Linear)]


def _flipped(index: int, last: int, weight: torch.Tensor) -> torch.Tensor:
    """A masked layer's weight (or mask, or bias) with the code's order reversed where it meets the
    code: the first layer's inputs, the head's two halves of outputs (m and s)."""
    if index == 0 and weight.dim() == 2:
        weight = weight.flip(1)
    if index == last:
        weight = torch.cat([half.flip(0) for half in weight.chunk(2, dim=0)])
    return weight


@torch.no_grad()
def iaf_to_pythae(steps, iaf) -> None:
    """pythae's IAF blocks set to compute vaezoo's, the masks checked to be the same wiring."""
    for i, ours, theirs, move in _iaf_layers(steps, iaf):
        if not torch.equal(move(ours.mask).to(theirs.mask), theirs.mask):
            raise ValueError(f"layer {i} of an iaf block is wired unlike pythae's: not the same autoregressive order")
        theirs.weight.copy_(move(ours.weight))
        theirs.bias.copy_(move(ours.bias))


@torch.no_grad()
def iaf_from_pythae(iaf, steps) -> None:
    """vaezoo's IAF blocks set to pythae's trained ones."""
    for _, ours, theirs, move in _iaf_layers(steps, iaf):
        ours.weight.copy_(move(theirs.weight))
        ours.bias.copy_(move(theirs.bias))
