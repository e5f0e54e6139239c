"""Vector quantization with an EMA codebook (``vq-ema``): van den Oord, Vinyals & Kavukcuoglu
2017 ("Neural discrete representation learning", appendix A.1), as in Razavi et al. 2019.

Each latent vector takes its nearest code; the codebook is not trained by the optimizer but by
exponential moving averages of the vectors assigned to each code:

    N_k <- decay N_k + (1 - decay) n_k           (n_k: vectors assigned to code k in the batch)
    m_k <- decay m_k + (1 - decay) sum_{i->k} z_i
    e_k  = m_k / N_k'                            (N_k' Laplace-smoothed: no division by zero)

The encoder gets the commitment loss ``commitment * ||z - sg(e)||^2`` and, through the
straight-through estimator, the decoder's gradient. Under DDP the batch's n_k and sums are
all-reduced first, so every process holds the same codebook.

Initialization (``init: data``, the default): the first training batch replaces the codebook by
random latent vectors of that batch, so that the codes start where the encoder's outputs are
(a codebook drawn from N(0, I) far from them would leave all but a few codes unused until
the dead-code restarts caught up).

Dead codes: a code whose EMA count N_k falls below ``dead_below`` is restarted at a random
latent vector of the current batch (count 1), the fix for codebooks in which most codes are
never used. It runs every training step with masked tensor ops (no host sync); under DDP rank
0's candidates are broadcast. The codebook and its statistics are buffers: they are saved in
the checkpoint's safetensors and a resume continues them bit for bit.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.distributed as dist
from pydantic import Field, NonNegativeFloat, PositiveInt

from ..kinds import PartParams, register_quantizer
from .base import Quantized, Quantizer, channels_last_flat, code_statistics

__all__ = ["VectorQuantizerEMA", "VQParams"]


class VQParams(PartParams):
    codebook_size: PositiveInt = Field(512, description="number of codes K")
    decay: float = Field(0.99, gt=0.0, lt=1.0, description="EMA decay of the codebook statistics")
    commitment: NonNegativeFloat = Field(0.25, description="weight of the commitment loss (beta)")
    dead_below: NonNegativeFloat = Field(0.1, description="EMA count under which a code is restarted (0: never)")
    epsilon: float = Field(1e-5, gt=0.0, description="Laplace smoothing of the EMA counts")
    init: Literal["data", "normal"] = Field("data", description="data: the codebook starts at latent vectors of "
                                                                "the first training batch; normal: N(0, I)")


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@register_quantizer("vq-ema", params=VQParams)
class VectorQuantizerEMA(Quantizer):
    def __init__(self, dim: int, **params):
        super().__init__()
        config = VQParams(**params)
        self.dim, self.codebook_size = dim, config.codebook_size
        self.decay, self.commitment = config.decay, config.commitment
        self.dead_below, self.epsilon = config.dead_below, config.epsilon
        embedding = torch.randn(config.codebook_size, dim)
        self.register_buffer("embedding", embedding)
        self.register_buffer("cluster_size", torch.ones(config.codebook_size))
        self.register_buffer("embed_sum", embedding.clone())
        self.register_buffer("initialized", torch.tensor(config.init == "normal"))
        self._initialize_checked = False  # whether this process has looked at `initialized`

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return self.embedding[indices].movedim(-1, 1)

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """The index of each row's nearest code (squared Euclidean distance)."""
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embedding.t()
                     + self.embedding.pow(2).sum(1)[None])
        return distances.argmin(dim=1)

    def forward(self, z: torch.Tensor, update: bool | None = None) -> Quantized:
        flat = channels_last_flat(z).float()
        update = self.training if update is None else update
        if update and not self._initialize_checked:
            # one host read per process: a restored codebook draws nothing (a resume stays bit-exact)
            if not bool(self.initialized):
                self._initialize(flat.detach())
            self._initialize_checked = True
        indices = self.nearest(flat)
        z_q = self.lookup(indices.reshape(z.shape[0], *z.shape[2:])).to(z.dtype)  # the codes before the update
        if update:
            self._update(flat.detach(), indices)
        per_image = (z - z_q.detach()).pow(2).flatten(1).sum(1)
        return Quantized(z_q=z + (z_q - z).detach(), indices=indices.reshape(z.shape[0], *z.shape[2:]),
                         terms={"commitment": self.commitment * per_image.mean()},
                         stats=code_statistics(indices, self.codebook_size))

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        one_hot = torch.nn.functional.one_hot(indices, self.codebook_size).type(flat.dtype)
        counts, sums = one_hot.sum(0), one_hot.t() @ flat
        if _distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        if self.dead_below > 0:
            self._restart_dead(flat)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        self.embedding.copy_(self.embed_sum / smoothed[:, None])

    def _random_rows(self, flat: torch.Tensor) -> torch.Tensor:
        """``codebook_size`` random latent vectors of the batch, the same on every process."""
        rows = flat[torch.randint(flat.shape[0], (self.codebook_size,), device=flat.device)]
        if _distributed():
            dist.broadcast(rows, 0)
        return rows

    @torch.no_grad()
    def _initialize(self, flat: torch.Tensor) -> None:
        rows = self._random_rows(flat)
        self.embedding.copy_(rows)
        self.embed_sum.copy_(rows)
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    def _restart_dead(self, flat: torch.Tensor) -> None:
        dead = self.cluster_size < self.dead_below
        candidates = self._random_rows(flat)
        self.embed_sum.copy_(torch.where(dead[:, None], candidates, self.embed_sum))
        self.cluster_size.copy_(torch.where(dead, torch.ones_like(self.cluster_size), self.cluster_size))
