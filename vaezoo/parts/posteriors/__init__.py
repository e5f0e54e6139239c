"""Posteriors beyond the diagonal Gaussian: normalizing flows over the encoder's Gaussian draw,
each drawing z together with log q(z|x). One module per family of flows."""

from . import iaf, planar  # noqa: F401 - registers the built-ins
from .base import Flow, FlowPosterior, FlowSteps, draw_with_log_q, with_flow
from .iaf import IAFBlock
from .planar import PlanarStep, RadialStep

__all__ = ["Flow", "FlowSteps", "FlowPosterior", "IAFBlock", "PlanarStep", "RadialStep", "draw_with_log_q",
           "with_flow"]
