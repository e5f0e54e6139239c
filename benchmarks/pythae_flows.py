"""vaezoo's planar and radial flow steps in and out of pythae 0.1.2's ``VAE_LinNF`` flows, so that the
two libraries start from the same flow and vaezoo scores the flow pythae trained (``peer_pythae.py``).

The radial steps carry over exactly: both keep alpha > 0 and beta >= -alpha with the same softplus.
The planar steps do not, quite: vaezoo uses Rezende & Mohamed's u_hat = u + (m(w.u) - w.u) w / |w|^2,
m(a) = -1 + softplus(a), which keeps every step invertible, while pythae trains u as it is. pythae's
u maps back to a vaezoo parameter whose u_hat equals it exactly when w.u > -1 (an invertible step);
a step that ended with w.u <= -1 is not invertible, its log-determinant no density, and the
transfer refuses it rather than score another model.
"""

from __future__ import annotations

import math

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
