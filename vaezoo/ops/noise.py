"""Deterministic noise: the same draws for an example whatever the batch or chunk size.

Every random number in an evaluation comes from a stream keyed by (seed, purpose, example
index, block of samples). An example therefore gets the same z samples whether it is
evaluated alone, in a batch of 64 or of 1000, and whether the k importance samples are
drawn in one call or in chunks: results depend on the seed only, never on memory settings.
"""

from __future__ import annotations

import torch

__all__ = ["NoiseSource", "stream_seed", "BLOCK", "ELBO_STREAM", "IWAE_STREAM", "REFINE_STREAM"]

BLOCK = 128  # samples per generator call and example; any chunking reuses the same blocks

ELBO_STREAM, IWAE_STREAM, REFINE_STREAM = 1, 2, 3

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def stream_seed(*keys: int) -> int:
    """A well-mixed 63-bit generator seed from integer keys (so nearby keys give unrelated streams)."""
    h = 0
    for key in keys:
        h = _splitmix64(h ^ (int(key) & _MASK))
    return h >> 1


class NoiseSource:
    """Standard normal noise of shape (samples, B, *event_shape) for examples ``indices``.

    ``draw(start, stop)`` returns samples ``start..stop-1`` of every example. Blocks of
    :data:`BLOCK` samples are generated once per example and cached while chunks walk
    through them in order.
    """

    def __init__(self, seed: int, stream: int, indices, event_shape, device=None, dtype=torch.float32):
        self.keys = [stream_seed(seed, stream, int(i)) for i in indices]
        self.event_shape = tuple(event_shape)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self._generator = torch.Generator(device=self.device)
        self._cache: dict[int, torch.Tensor] = {}

    def _block(self, j: int) -> torch.Tensor:
        if j not in self._cache:
            self._cache = {}  # chunks move forward: only the current block is worth keeping
            draws = []
            for key in self.keys:
                self._generator.manual_seed(stream_seed(key, j))
                draws.append(torch.randn((BLOCK, *self.event_shape), generator=self._generator,
                                         device=self.device, dtype=self.dtype))
            self._cache[j] = torch.stack(draws, dim=1)  # (BLOCK, B, *event)
        return self._cache[j]

    def subset(self, first: int, stop: int) -> "NoiseSource":
        """The same noise for examples ``first..stop-1`` of this source only."""
        part = NoiseSource.__new__(NoiseSource)
        part.keys, part.event_shape, part.device, part.dtype = self.keys[first:stop], self.event_shape, self.device, self.dtype
        part._generator, part._cache = torch.Generator(device=self.device), {}
        return part

    def draw(self, start: int, stop: int) -> torch.Tensor:
        if stop <= start:
            raise ValueError(f"empty sample range [{start}, {stop})")
        first, last = start // BLOCK, (stop - 1) // BLOCK
        blocks = [self._block(j) for j in range(first, last + 1)]
        noise = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=0)
        offset = first * BLOCK
        return noise[start - offset: stop - offset]

