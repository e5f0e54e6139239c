"""Batches for the training loop: the uint8 dataset on the device, sliced per step.

The data order of an epoch is a permutation derived only from ``(seed, epoch)``, and a
batch is the slice ``[step * B, (step + 1) * B)`` of it, so a run resumed at ``(epoch, step)``
sees exactly the batches the interrupted run would have seen, and nothing about the data
order needs to be stored in a checkpoint. Under DDP each rank takes its contiguous part
of every global batch: the union over ranks is the single-process batch.

Two paths with one interface (``steps_per_epoch``, ``batches(epoch, start_step)``):

* :class:`DeviceLoader` (the default): the uint8 images live on the device (47 MB for
  Fashion-MNIST); a batch is one ``index_select`` plus a conversion to float in [0, 1].
  No per-item Python work at all.
* :class:`HostLoader`: for datasets too large for the device. A ``DataLoader`` with
  workers and pinned memory fetches whole batches (``__getitems__``) in the same order.
"""

from __future__ import annotations

import hashlib
from typing import Iterator, NamedTuple, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.binarize import dynamic_binarize, to_float

__all__ = ["Batch", "derive_seed", "epoch_permutation", "DeviceLoader", "HostLoader", "make_loader", "eval_batches"]


class Batch(NamedTuple):
    """Images (float in [0, 1], on the device) and their labels where the dataset has them."""

    x: torch.Tensor
    y: Optional[torch.Tensor] = None


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (seed, epoch, step, ...), stable across machines."""
    digest = hashlib.blake2b(repr(tuple(int(p) for p in parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch. Drawn with a CPU generator so that the order is the same
    on every device and for both loader paths; it is moved to the device once per epoch."""
    gen = torch.Generator(device="cpu").manual_seed(derive_seed(seed, epoch))
    return torch.randperm(n, generator=gen)


class _Plan:
    """Which rows of the permutation one rank takes at each step (full global batches only)."""

    def __init__(self, n: int, batch_size: int, rank: int, world_size: int):
        if batch_size % world_size:
            raise ValueError(
                f"trainer.batch_size ({batch_size}) is the global batch and must divide evenly "
                f"among the {world_size} processes"
            )
        if n < batch_size:
            raise ValueError(f"the training set has {n} images, fewer than one batch of {batch_size}")
        self.n, self.batch_size = n, batch_size
        # Dropping the last partial batch keeps every step the same size on every rank (DDP
        # averages gradients per rank, so uneven shards would weight images unequally); the
        # permutation changes every epoch, so every image is still used.
        self.steps_per_epoch = n // batch_size
        local = batch_size // world_size
        self.lo, self.hi = rank * local, (rank + 1) * local

    def rows(self, step: int) -> slice:
        base = step * self.batch_size
        return slice(base + self.lo, base + self.hi)


class _Finish:
    """Float conversion, dynamic binarization and memory format: the same for both paths."""

    def __init__(self, device: torch.device, seed: int, rank: int, binarize: str, channels_last: bool):
        self.device, self.seed, self.rank = device, seed, rank
        self.binarize, self.channels_last = binarize, channels_last
        self.generator = torch.Generator(device=device) if binarize == "dynamic" else None

    def __call__(self, batch: torch.Tensor, epoch: int, step: int) -> torch.Tensor:
        x = to_float(batch)
        if self.generator is not None:
            # A fresh draw per batch whose seed is derived from (seed, epoch, step, rank): it
            # differs every epoch, yet a resumed run redraws exactly the same noise, so no
            # generator state has to be checkpointed.
            self.generator.manual_seed(derive_seed(self.seed, epoch, step, self.rank, 0xB1))
            x = dynamic_binarize(x, self.generator)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


class _Loader:
    """What both loaders share: the batch plan of this rank and the per-batch finishing."""

    def __init__(
        self, images: torch.Tensor, batch_size: int, *, device: torch.device, seed: int,
        rank: int = 0, world_size: int = 1, binarize: str = "none", channels_last: bool = False,
        labels: Optional[torch.Tensor] = None,
    ):
        if labels is not None and labels.shape[0] != images.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for {images.shape[0]} images")
        self.seed, self.device = seed, device
        self.plan = _Plan(images.shape[0], batch_size, rank, world_size)
        self.finish = _Finish(device, seed, rank, binarize, channels_last)

    @property
    def steps_per_epoch(self) -> int:
        return self.plan.steps_per_epoch


class DeviceLoader(_Loader):
    """The whole uint8 training set on ``device``; each step slices and converts one batch."""

    def __init__(self, images: torch.Tensor, batch_size: int, **common):
        if images.dtype != torch.uint8:
            raise TypeError(f"the loader expects uint8 images, got {images.dtype}")
        super().__init__(images, batch_size, **common)
        self.images = images.to(self.device)
        labels = common.get("labels")
        self.labels = labels.to(self.device) if labels is not None else None

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        order = epoch_permutation(self.plan.n, self.seed, epoch).to(self.device, non_blocking=True)
        for step in range(start_step, self.steps_per_epoch):
            rows = order[self.plan.rows(step)]
            y = self.labels.index_select(0, rows) if self.labels is not None else None
            yield Batch(self.finish(self.images.index_select(0, rows), epoch, step), y)


class _Rows(Dataset):
    """uint8 rows (and labels); ``__getitems__`` lets the DataLoader fetch a whole batch with one index."""

    def __init__(self, images: torch.Tensor, labels: Optional[torch.Tensor]):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices)
        return self.images[index], (self.labels[index] if self.labels is not None else None)


def _identity(batch):
    return batch


class _BatchOrder(Sampler):
    def __init__(self, plan: _Plan, order: torch.Tensor, start_step: int):
        self.plan, self.order, self.start_step = plan, order, start_step

    def __len__(self) -> int:
        return self.plan.steps_per_epoch - self.start_step

    def __iter__(self):
        for step in range(self.start_step, self.plan.steps_per_epoch):
            yield self.order[self.plan.rows(step)].tolist()


class HostLoader(_Loader):
    """The fallback: images stay in host memory; a DataLoader with workers and pinned memory
    delivers the same batches as :class:`DeviceLoader`, in the same order."""

    def __init__(self, images: torch.Tensor, batch_size: int, num_workers: int = 2, **common):
        super().__init__(images, batch_size, **common)
        self.dataset, self.num_workers = _Rows(images, common.get("labels")), num_workers

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        order = epoch_permutation(self.plan.n, self.seed, epoch)
        loader = DataLoader(
            self.dataset, batch_sampler=_BatchOrder(self.plan, order, start_step), collate_fn=_identity,
            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
        )
        for step, (images, labels) in enumerate(loader, start=start_step):
            y = labels.to(self.device, non_blocking=True) if labels is not None else None
            yield Batch(self.finish(images.to(self.device, non_blocking=True), epoch, step), y)


def make_loader(
    kind: str, images: torch.Tensor, batch_size: int, *, device: torch.device, seed: int, rank: int = 0,
    world_size: int = 1, binarize: str = "none", channels_last: bool = False, num_workers: int = 2,
    labels: Optional[torch.Tensor] = None,
) -> DeviceLoader | HostLoader:
    """``auto``: the device path unless the data would take over half of the GPU's free memory."""
    if kind == "auto":
        kind = "device"
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if images.numel() * images.element_size() > free // 2:
                kind = "dataloader"
    common = dict(device=device, seed=seed, rank=rank, world_size=world_size, binarize=binarize,
                  channels_last=channels_last, labels=labels)
    if kind == "device":
        return DeviceLoader(images, batch_size, **common)
    return HostLoader(images, batch_size, num_workers=num_workers, **common)


def eval_batches(
    images: torch.Tensor, batch_size: int, *, device: torch.device, rank: int = 0, world_size: int = 1,
    channels_last: bool = False, labels: Optional[torch.Tensor] = None,
) -> Iterator[Batch]:
    """This rank's share of an evaluation split (every image exactly once over all ranks), as
    float batches on ``device``. The split is moved batch by batch, so it may live on the host."""
    shard = images.tensor_split(world_size)[rank]
    label_shard = labels.tensor_split(world_size)[rank] if labels is not None else None
    for start in range(0, shard.shape[0], batch_size):
        x = to_float(shard[start: start + batch_size].to(device, non_blocking=True))
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        y = label_shard[start: start + batch_size].to(device) if label_shard is not None else None
        yield Batch(x, y)
