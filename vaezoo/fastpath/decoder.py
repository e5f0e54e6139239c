"""A decoder backbone prepared for scoring: a frozen copy in the scoring arithmetic and memory
format, optionally compiled for one pass shape.

Scoring decodes thousands of latents per image with weights that never change, which is what
an ahead-of-time compiler is for: inductor with ``freezing`` folds the weights into the graph,
fuses each layer's bias and activation into its matrix product or convolution and keeps the
activations in bf16 between layers. With the rest of the scoring plan that made the IWAE
bound 6.5-7.9x faster than a plain float32 loop on a CPU with AMX (``benchmarks/iwae_nll.py``,
docs/performance.md). Only the decoder backbone runs here: the likelihood, the prior and posterior
densities and the log-sum-exp stay in float32 (float64 for the sum over chunks), so the
arithmetic touches p(x|z)'s parameters and nothing else.
"""

from __future__ import annotations

import builtins
import copy
import types
import warnings

import torch
from torch import nn

__all__ = ["FastDecoder"]


class FastDecoder:
    """Calls ``decoder`` on (N, features) float32 rows in ``dtype``, ``pass_size`` rows at a time
    (the last pass padded with zeros when compiled, so that one graph serves every call), and
    returns float32 maps. Not an ``nn.Module``: the copy is not part of the model's weights."""

    def __init__(self, decoder: nn.Module, dtype: torch.dtype, pass_size: int, channels_last: bool,
                 compile: bool):
        module = copy.deepcopy(decoder).eval().requires_grad_(False).to(dtype=dtype)
        if channels_last:
            module.to(memory_format=torch.channels_last)
        self.module = module
        self.dtype = dtype
        self.pass_size = pass_size
        self.compile_pending = compile
        self.compiled = False
        self._run = module

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        h = h.to(self.dtype)
        fixed_shape = self.compile_pending or self.compiled
        outputs = []
        for first in range(0, h.shape[0], self.pass_size):
            rows = h[first: first + self.pass_size]
            missing = self.pass_size - rows.shape[0] if fixed_shape else 0
            if missing:
                rows = torch.cat([rows, rows.new_zeros(missing, *rows.shape[1:])])
            out = self._call(rows)
            outputs.append(out[: out.shape[0] - missing] if missing else out)
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        return out.float()

    def _call(self, rows: torch.Tensor) -> torch.Tensor:
        if not self.compile_pending:
            return self._run(rows)
        self.compile_pending = False
        try:  # freezing: the weights become constants of the graph, prepacked for oneDNN
            compiled = torch.compile(_own_function(self.module), dynamic=False, options={"freezing": True})
            out = compiled(rows)
        except Exception as exc:  # no C++ compiler, an operator inductor lacks: eager is the same arithmetic, slower
            warnings.warn(f"scoring runs the decoder eagerly: torch.compile failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})", RuntimeWarning, stacklevel=3)
            return self._run(rows)
        self._run, self.compiled = compiled, True
        return out


def _decode(rows: torch.Tensor) -> torch.Tensor:
    return module(rows)  # noqa: F821 (``module`` is bound per decoder by _own_function)


def _own_function(module: nn.Module):
    """``module(rows)`` as a function with a code object of its own. Dynamo keeps compiled graphs
    on the code object it traces, at most 8 per object (``recompile_limit``): the decoders of a
    calibration (one per pass size) and of the runs after it would pile up on the backbone's
    ``forward`` and, past 8, run eagerly without a word. A copy of the code per decoder gives
    each its own cache, freed with it."""
    code = _decode.__code__.replace(co_name="scoring_decoder")
    return types.FunctionType(code, {"module": module, "__builtins__": builtins}, "scoring_decoder")
