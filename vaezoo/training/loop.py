"""The one training loop that trains every variant: the objective comes from the config.

Speed without changing the math: the uint8 data lives on the device and is sliced per step
(:mod:`.loader`), no host-device sync per step (losses stay on the device and are read every
``log_every`` steps), ``zero_grad(set_to_none=True)``, foreach/fused optimizers, channels-last
for convolutional models (measured: about 1.6x on the seed model's convolutions on a 2-core
AVX2 CPU), bf16 autocast on GPUs that support it, optional ``torch.compile``.

Repeatability: the model is initialized from ``trainer.seed``; each rank's training RNG
stream is seeded from ``(seed, rank)``; the data order is a function of ``(seed, epoch)``;
evaluation runs inside ``torch.random.fork_rng`` so that it never perturbs training. A
checkpoint stores every RNG state, so a resumed CPU run reproduces the uninterrupted run
bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import torch
from torch import nn

from ..config import ConfigError
from ..data.binarize import STATIC_BINARIZE_SEED, static_binarize
from ..data.splits import load_splits
from ..model import VAE
from ..schemas import ExperimentConfig, OptimizerConfig, SchedulerConfig, TrainerConfig
from ..zoo import build_model
from .checkpoint import Checkpoint, CheckpointError, checkpoint_path, load_checkpoint, save_checkpoint
from .distributed import DistContext, all_reduce_sum, barrier, gather_tensors, init_distributed
from .loader import DeviceLoader, derive_seed, eval_batches, make_loader
from .progress import Progress
from .records import LOSS_PLOT_NAME, TensorBoard, write_metrics

__all__ = [
    "Trainer", "NonFiniteLossError", "build_optimizer", "lr_lambda", "kl_scale_at", "resolve_precision",
    "wants_channels_last",
]


class NonFiniteLossError(RuntimeError):
    """The loss or the weights became NaN/inf; ``step`` names the first bad optimizer step."""

    def __init__(self, message: str, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


# ---------------------------------------------------------------------------- recipe pieces


def build_optimizer(params, cfg: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.name]
    # Fused kernels on GPUs; the multi-tensor (foreach) path on CPUs, where it was the faster.
    impl = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, **impl)


def lr_lambda(cfg: SchedulerConfig, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate after ``step`` optimizer steps: a linear warm-up
    over ``warmup_steps``, then constant or a cosine decay to ``min_lr_ratio`` at ``total_steps``."""
    warmup, floor = cfg.warmup_steps, cfg.min_lr_ratio

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.name == "constant":
            return 1.0
        span = max(1, total_steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def kl_scale_at(cfg: TrainerConfig, epoch: int, step_in_epoch: int, steps_per_epoch: int) -> float:
    """The KL weight of a step: a linear ramp from 0 to 1 over ``kl_warmup_epochs`` (a Python
    float, so the ramp costs no device work)."""
    if cfg.kl_warmup_epochs <= 0:
        return 1.0
    return min(1.0, (epoch + step_in_epoch / steps_per_epoch) / cfg.kl_warmup_epochs)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. ``auto``: bf16 on GPUs that support it, fp32 elsewhere
    (CPUs without native bf16 run it slower than fp32, so the CPU only uses it when asked)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def wants_channels_last(setting: str, model: nn.Module, device: torch.device) -> bool:
    if setting != "auto":
        return setting == "on"
    return model.prefers_channels_last(device)


# ---------------------------------------------------------------------------- progress state


@dataclass
class _Progress:
    """Where the run is; saved as JSON in every checkpoint."""

    epoch: int = 0  # the epoch in progress (0-based)
    step_in_epoch: int = 0  # optimizer steps done in that epoch
    global_step: int = 0  # optimizer steps done in all
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # loss, recon, kl over this epoch's steps
    count: int = 0  # steps summed in ``sums``
    epoch_time: float = 0.0  # seconds of training (not evaluation) in this epoch
    epoch_images: int = 0
    elapsed: float = 0.0  # seconds of the whole run, over every resume
    history: list[dict[str, Any]] = field(default_factory=list)

    def new_epoch(self) -> None:
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.sums, self.count, self.epoch_time, self.epoch_images = [0.0, 0.0, 0.0], 0, 0.0, 0


_RNG_CPU, _RNG_CUDA = "torch_cpu", "torch_cuda"


class Trainer:
    """Train ``experiment`` into the run folder ``out``.

    ``resume``: a run folder whose ``checkpoints/last.safetensors`` to continue from (usually
    ``out`` itself). ``stream``: where progress goes (stderr by default).
    """

    def __init__(
        self,
        experiment: ExperimentConfig,
        out: str | Path,
        *,
        data_root: str | None = None,
        device: str | None = None,
        resume: str | Path | None = None,
        stream: TextIO | None = None,
    ):
        self.experiment = experiment
        self.cfg: TrainerConfig = experiment.trainer
        self.out = Path(out)
        self.data_root = data_root
        self.device_name = device or self.cfg.device
        self.resume = Path(resume) if resume is not None else None
        self.stream = stream if stream is not None else sys.stderr

    # -- entry point ------------------------------------------------------------------

    def fit(self) -> tuple[VAE, dict[str, Any]]:
        ctx = init_distributed(self.device_name)
        try:
            return self._fit(ctx)
        finally:
            ctx.close()

    def _fit(self, ctx: DistContext) -> tuple[VAE, dict[str, Any]]:
        cfg, exp, device = self.cfg, self.experiment, ctx.device
        self.ctx = ctx
        checkpoint = self._read_resume_checkpoint()

        splits = load_splits(exp.data, self.data_root)
        if tuple(splits.shape) != tuple(exp.model.input_shape):
            raise ConfigError(exp.name or "", [(
                "model.input_shape",
                f"is {list(exp.model.input_shape)} but the dataset's images are {list(splits.shape)}",
            )])
        val, test = splits.val, splits.test
        if exp.data.binarize == "dynamic":
            # Training draws fresh binary images per batch; evaluation needs one fixed draw so that
            # the numbers compare across epochs (the test draw equals the static protocol's).
            val, test = static_binarize(val, STATIC_BINARIZE_SEED + 2), static_binarize(test, STATIC_BINARIZE_SEED + 1)

        torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
        model = build_model(exp.model, source=exp.name or "").to(device)
        self.model = model
        self.channels_last = wants_channels_last(cfg.channels_last, model, device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        loader = make_loader(
            cfg.loader, splits.train, cfg.batch_size, device=device, seed=cfg.seed, rank=ctx.rank,
            world_size=ctx.world_size, binarize="dynamic" if exp.data.binarize == "dynamic" else "none",
            channels_last=self.channels_last, num_workers=cfg.num_workers,
        )
        if isinstance(loader, DeviceLoader):
            val, test = val.to(device), test.to(device)
        self.val, self.test = val, test
        spe = self.steps_per_epoch = loader.steps_per_epoch
        total_steps = cfg.epochs * spe if cfg.max_steps is None else min(cfg.epochs * spe, cfg.max_steps)
        self.total_steps = total_steps

        optimizer = build_optimizer(model.parameters(), cfg.optimizer, device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.scheduler, total_steps))
        self.optimizer, self.scheduler = optimizer, scheduler
        state = _Progress()
        if checkpoint is not None:
            state = self._restore(checkpoint)
            if ctx.is_main:  # drop the lines of epochs that the crash undid
                write_metrics(self.out, state.history)
        else:
            torch.manual_seed(derive_seed(cfg.seed, ctx.rank, 0x7A))  # this rank's training stream
        self.state = state

        net: nn.Module = model
        if ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.compile:
            net = torch.compile(net)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
        self.net = net
        self.autocast_dtype = resolve_precision(cfg.precision, device)

        self.progress = Progress(epochs=cfg.epochs, steps_per_epoch=spe, enabled=ctx.is_main, stream=self.stream)
        self.tensorboard = TensorBoard(self.out, enabled=ctx.is_main)
        if ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            where = f" on {ctx.world_size} processes" if ctx.distributed else ""
            what = f"resumed at step {state.global_step} (epoch {state.epoch + 1})" if checkpoint else "started"
            self.progress.message(
                f"training {exp.name or 'model'}: {model.num_parameters():,} parameters, {device}{where}, "
                f"{splits.train.shape[0]:,} images, {spe} steps/epoch of {cfg.batch_size}; {what}"
            )
        try:
            self._train(loader)
        finally:
            self.progress.close()
            self.tensorboard.close()
        return self._finish()

    # -- resume -----------------------------------------------------------------------

    def _read_resume_checkpoint(self) -> Checkpoint | None:
        if self.resume is None:
            if checkpoint_path(self.out).is_file():
                raise CheckpointError(
                    f"{self.out} already holds a training run ({checkpoint_path(self.out)}); continue it with "
                    f"--resume {self.out} (resume=True), or pick another --out folder"
                )
            return None
        checkpoint = load_checkpoint(self.resume)
        saved = checkpoint.state.get("experiment", {})
        for section in ("model", "data"):
            mine = self.experiment.model_dump(mode="json")[section]
            theirs = dict(saved.get(section) or {})
            if section == "data":  # the data may sit elsewhere on this machine
                mine, theirs = {**mine, "root": None}, {**theirs, "root": None}
            if mine != theirs:
                raise CheckpointError(
                    f"cannot resume from {checkpoint.path}: its {section} config differs from this one "
                    f"(resume with the run's own config, or start a new run)"
                )
        return checkpoint

    def _restore(self, checkpoint: Checkpoint) -> _Progress:
        self.model.load_state_dict(checkpoint.model)
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.scheduler.load_state_dict(checkpoint.state["scheduler"])
        state = _Progress(**checkpoint.state["progress"])
        rank = self.ctx.rank
        cpu = checkpoint.rng.get(f"{_RNG_CPU}.rank{rank}")
        if cpu is not None and checkpoint.state.get("world_size") == self.ctx.world_size:
            torch.set_rng_state(cpu)
            cuda = checkpoint.rng.get(f"{_RNG_CUDA}.rank{rank}")
            if cuda is not None and self.ctx.device.type == "cuda":
                torch.cuda.set_rng_state(cuda, self.ctx.device)
        else:
            # A different number of processes: the old per-rank streams do not map onto the new
            # ranks. Continue deterministically, though not bit-identically to the old layout.
            torch.manual_seed(derive_seed(self.cfg.seed, rank, state.global_step, 0x7A))
        return state

    def _rng_states(self) -> dict[str, torch.Tensor]:
        """Every rank's RNG states (a collective under DDP: all ranks call it)."""
        mine = {_RNG_CPU: torch.get_rng_state()}
        if self.ctx.device.type == "cuda":
            mine[_RNG_CUDA] = torch.cuda.get_rng_state(self.ctx.device)
        out = {}
        for name, tensor in mine.items():
            for rank, value in enumerate(gather_tensors(tensor, self.ctx)):
                out[f"{name}.rank{rank}"] = value.cpu()
        return out

    def _checkpoint(self) -> None:
        self._check_weights()
        rng = self._rng_states()
        if self.ctx.is_main:
            save_checkpoint(self.out, model=self.model, optimizer=self.optimizer, rng=rng, state={
                "global_step": self.state.global_step,  # top level, for people and tools reading last.json
                "epoch": self.state.epoch,
                "step_in_epoch": self.state.step_in_epoch,
                "progress": asdict(self.state),
                "scheduler": self.scheduler.state_dict(),
                "experiment": self.experiment.model_dump(mode="json"),
                "world_size": self.ctx.world_size,
                "torch_version": torch.__version__,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            })
        self._last_checkpoint_step = self.state.global_step

    # -- the loop ---------------------------------------------------------------------

    def _step(self, x: torch.Tensor, kl_scale: float) -> torch.Tensor:
        dtype = self.autocast_dtype
        if self.cfg.compile:
            # torch.compile specializes on Python floats: a ramping KL weight would recompile
            # every step. A 0-d tensor is a graph input instead.
            kl_scale = torch.tensor(kl_scale, dtype=torch.float32)
        self.optimizer.zero_grad(set_to_none=True)
        # Micro-batches accumulate the gradient of the batch-mean loss chunk by chunk: the same
        # gradient, a working set small enough for the CPU's caches. Under DDP only the last
        # chunk synchronizes gradients.
        chunks = x.split(self.cfg.micro_batch_size) if self.cfg.micro_batch_size else (x,)
        terms = []
        for i, chunk in enumerate(chunks):
            weight = chunk.shape[0] / x.shape[0]
            sync = i == len(chunks) - 1 or not isinstance(self.net, nn.parallel.DistributedDataParallel)
            with contextlib.nullcontext() if sync else self.net.no_sync():
                with torch.autocast(self.ctx.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
                    out = self.net(chunk, kl_scale=kl_scale)
                (out.loss * weight if len(chunks) > 1 else out.loss).backward()
            terms.append(torch.stack([out.loss.detach(), out.recon.detach(), out.kl.detach()]).float() * weight)
        if self.cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip, foreach=True)
        self.optimizer.step()
        self.scheduler.step()
        # stays on the device: read every log_every steps, not every step
        return terms[0] if len(terms) == 1 else torch.stack(terms).sum(dim=0)

    def _train(self, loader) -> None:
        cfg, st = self.cfg, self.state
        self._last_checkpoint_step = st.global_step if self.resume is not None else None
        self._window: list[torch.Tensor] = []
        self._window_t0 = time.perf_counter()
        stop = st.global_step >= self.total_steps
        while st.epoch < cfg.epochs and not stop:
            self.progress.epoch_start(st.epoch, st.step_in_epoch)
            epoch_t0 = time.perf_counter()
            self._window_t0 = epoch_t0
            for x in loader.batches(st.epoch, st.step_in_epoch):
                self._window.append(self._step(x, kl_scale_at(cfg, st.epoch, st.step_in_epoch, self.steps_per_epoch)))
                st.step_in_epoch += 1
                st.global_step += 1
                st.epoch_images += cfg.batch_size
                self.progress.advance()
                stop = st.global_step >= self.total_steps
                if st.global_step % cfg.log_every == 0 or stop:
                    self._flush()
                if stop:
                    break
                if st.global_step % cfg.checkpoint_every == 0 and st.step_in_epoch < self.steps_per_epoch:
                    self._flush()
                    now = time.perf_counter()
                    st.epoch_time += now - epoch_t0
                    st.elapsed += now - epoch_t0
                    epoch_t0 = now
                    self._checkpoint()
            self._flush()
            now = time.perf_counter()
            st.epoch_time += now - epoch_t0
            st.elapsed += now - epoch_t0
            self._end_epoch(complete=st.step_in_epoch >= self.steps_per_epoch)

    def _flush(self) -> None:
        """Read the losses of the last steps from the device (one sync), stop on NaN/inf, report."""
        window, st = self._window, self.state
        if not window:
            return
        values = torch.stack(window).double().cpu()
        first = st.global_step - len(window) + 1
        bad = (~torch.isfinite(values)).any(dim=1).nonzero()
        bad_step = first + int(bad[0]) if len(bad) else 0
        if self.ctx.distributed:  # every rank must stop together, at the earliest bad step of any rank
            flag = torch.tensor([bad_step or 2**62], dtype=torch.int64, device=self.ctx.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            bad_step = int(flag) if int(flag) != 2**62 else 0
        if bad_step:
            self._raise_non_finite(f"the loss became NaN/inf at step {bad_step}", bad_step)
        totals = values.sum(dim=0)
        st.sums = [a + float(b) for a, b in zip(st.sums, totals)]
        st.count += len(window)
        now = time.perf_counter()
        elapsed = max(now - self._window_t0, 1e-9)
        mean = (totals / len(window)).tolist()
        remaining = self.total_steps - st.global_step
        stats = {
            "loss": mean[0], "recon": mean[1], "kl": mean[2], "neg_elbo": mean[1] + mean[2],
            "img_per_s": len(window) * self.cfg.batch_size / elapsed, "lr": self.scheduler.get_last_lr()[0],
            "eta_s": remaining * elapsed / len(window),
        }
        self.progress.log(st.epoch, st.step_in_epoch, st.global_step, stats)
        if self.ctx.is_main:
            self.tensorboard.scalars("train", {k: v for k, v in stats.items() if k != "eta_s"}, st.global_step)
        window.clear()
        self._window_t0 = now

    def _check_weights(self) -> None:
        finite = torch.stack([p.detach().isfinite().all() for p in self.model.parameters()]).all()
        if self.ctx.distributed:
            flag = finite.to(torch.int64).reshape(1)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            finite = flag[0].bool()
        if not bool(finite):
            self._raise_non_finite(f"the weights became NaN/inf by step {self.state.global_step}",
                                   self.state.global_step)

    def _raise_non_finite(self, what: str, step: int) -> None:
        st, spe = self.state, self.steps_per_epoch
        epoch, batch = (step - 1) // spe + 1, (step - 1) % spe + 1
        path = checkpoint_path(self.out)
        if self._last_checkpoint_step is not None and path.is_file():
            kept = (f"The last good checkpoint (step {self._last_checkpoint_step}) is kept at {path}; "
                    f"continue from it with --resume {self.out} and a smaller trainer.optimizer.lr or a "
                    f"trainer.grad_clip.")
        else:
            kept = "No checkpoint was written before it (lower trainer.checkpoint_every to keep one sooner)."
        message = (f"training stopped: {what} (epoch {epoch}, batch {batch} of {spe}). {kept} "
                   f"Nothing after step {self._last_checkpoint_step or 0} was saved.")
        raise NonFiniteLossError(message, step, path if path.is_file() else None)

    # -- evaluation and records -------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self, images: torch.Tensor, tag: int) -> dict[str, float]:
        """Mean -ELBO, reconstruction and KL over a split, sharded over the ranks."""
        device = self.ctx.device
        sums = torch.zeros(4, dtype=torch.float64, device=device)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            # A fixed stream: the numbers are repeatable, and training's RNG is left untouched.
            torch.manual_seed(derive_seed(self.cfg.seed, tag, self.ctx.rank))
            self.model.eval()
            try:
                for x in eval_batches(images, self.cfg.eval_batch_size, device=device, rank=self.ctx.rank,
                                      world_size=self.ctx.world_size, channels_last=self.channels_last):
                    out = self.model(x)
                    n = x.shape[0]
                    sums += torch.stack([-out.elbo.sum().double(), out.recon.double() * n,
                                         out.kl.double() * n, torch.tensor(n, dtype=torch.float64, device=device)])
            finally:
                self.model.train()
        total = all_reduce_sum(sums, self.ctx).tolist()
        n = max(total[3], 1.0)
        return {"neg_elbo": total[0] / n, "recon": total[1] / n, "kl": total[2] / n}

    def _end_epoch(self, complete: bool) -> None:
        st, cfg = self.state, self.cfg
        sums = all_reduce_sum(torch.tensor(st.sums + [st.count], dtype=torch.float64, device=self.ctx.device),
                              self.ctx).tolist()
        count = max(sums[3], 1.0)
        val, test = self._evaluate(self.val, 1), self._evaluate(self.test, 2)
        record: dict[str, Any] = {
            "epoch": st.epoch + 1, "step": st.global_step,
            "train_loss": sums[0] / count, "train_recon": sums[1] / count, "train_kl": sums[2] / count,
            "train_neg_elbo": (sums[1] + sums[2]) / count,
            "val_neg_elbo": val["neg_elbo"], "val_recon": val["recon"], "val_kl": val["kl"],
            "test_neg_elbo": test["neg_elbo"], "test_recon": test["recon"], "test_kl": test["kl"],
            "kl_scale": kl_scale_at(cfg, st.epoch, max(st.step_in_epoch - 1, 0), self.steps_per_epoch),
            "lr": self.scheduler.get_last_lr()[0],
            "img_per_s": st.epoch_images / max(st.epoch_time, 1e-9),
            "epoch_time_s": st.epoch_time, "wall_time_s": st.elapsed,
        }
        if not complete:
            record["partial"] = True
        if st.history and st.history[-1].get("partial") and st.history[-1]["epoch"] == record["epoch"]:
            st.history[-1] = record  # a stopped epoch that a longer run has now finished
        else:
            st.history.append(record)
        if self.ctx.is_main:
            write_metrics(self.out, st.history)
            self.tensorboard.scalars("epoch", record, st.global_step)
        self.progress.epoch_end(record)
        if complete:
            st.new_epoch()
        self._checkpoint()

    def _finish(self) -> tuple[VAE, dict[str, Any]]:
        model, exp, st = self.model, self.experiment, self.state
        final = dict(st.history[-1]) if st.history else {}
        if self.ctx.is_main:
            from ..hub.layout import save_pretrained
            from ..viz.curves import plot_loss_curves

            model.to(memory_format=torch.contiguous_format)
            protocol = {"likelihood": exp.model.likelihood.name, "binarization": exp.data.binarize,
                        "importance_samples": 1}
            metrics = {}
            if final:
                metrics = {
                    "test_neg_elbo": {"value": round(final["test_neg_elbo"], 4), "split": "test",
                                      "num_examples": int(self.test.shape[0]), **protocol},
                    "val_neg_elbo": {"value": round(final["val_neg_elbo"], 4), "split": "validation",
                                     "num_examples": int(self.val.shape[0]), **protocol},
                }
            training = {
                "epochs": final.get("epoch", 0), "steps": st.global_step, "batch_size": self.cfg.batch_size,
                "wall_time_s": round(st.elapsed, 1), "device": str(self.ctx.device), "processes": self.ctx.world_size,
            }
            save_pretrained(model, self.out, experiment=exp, metrics=metrics, training=training, samples=64)
            plot_loss_curves(st.history, self.out / LOSS_PLOT_NAME, title=exp.name or "")
        barrier(self.ctx)
        return model.eval(), final
