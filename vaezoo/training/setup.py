"""Everything a run needs before its first step: data, model, loader, optimizer, resume, DDP.

Repeatability: the model is initialized from ``trainer.seed``; each rank's training RNG stream
is seeded from ``(seed, rank)``; the data order is a function of ``(seed, epoch)``; a checkpoint
stores every RNG state, so a resumed CPU run reproduces the uninterrupted run bit for bit.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..data.binarize import TEST_BINARIZE_SEED, VAL_BINARIZE_SEED, static_binarize
from ..data.splits import load_splits
from ..errors import CheckpointError, ConfigError
from ..factory import build_model
from ..layout import load_state
from ..layout.checkpoint import MAIN_OPTIMIZER, Checkpoint, checkpoint_path, load_checkpoint, save_checkpoint
from ..schemas import ExperimentConfig, OptimizerConfig, TrainerConfig
from .averaging import WeightAverage
from .distributed import DistContext, all_reduce_sum, broadcast_module, gather_tensors, gradient_averager
from .loader import DeviceLoader, derive_seed, make_loader
from .recipe import build_optimizer, lr_lambda, resolve_precision, short_run_notes, wants_channels_last
from .warm_start import initialize_priors_from_data, warm_start

__all__ = ["RunState", "Run", "prepare_run", "optimizer_settings", "read_resume_checkpoint", "save_run_checkpoint"]

_RNG_CPU, _RNG_CUDA = "torch_cpu", "torch_cuda"
_LEGACY_SUMS = ["loss", "recon", "kl"]  # what checkpoints of the one-family release summed, in order


@dataclass
class RunState:
    """Where the run is; saved as JSON in every checkpoint."""

    epoch: int = 0  # the epoch in progress (0-based)
    step_in_epoch: int = 0  # optimizer steps done in that epoch
    global_step: int = 0  # optimizer steps done in all
    sums: dict[str, float] = field(default_factory=dict)  # this rank's loss and terms, summed over the epoch's steps
    count: int = 0  # steps summed in ``sums``
    epoch_time: float = 0.0  # seconds of training (not evaluation) in this epoch
    epoch_images: int = 0
    elapsed: float = 0.0  # seconds of the whole run, over every resume
    history: list[dict[str, Any]] = field(default_factory=list)
    best: Optional[dict[str, Any]] = None  # {"epoch", "val_neg_elbo"} of the lowest validation -ELBO so far
    epochs_since_best: int = 0
    eval_batch_size: Optional[int] = None  # of the validation and test passes, chosen once (trainer.eval_batch_size)

    def new_epoch(self) -> None:
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.sums, self.count, self.epoch_time, self.epoch_images = {}, 0, 0.0, 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunState":
        data = dict(data)
        if isinstance(data.get("sums"), list):
            data["sums"] = dict(zip(_LEGACY_SUMS, data["sums"]))
        return cls(**data)


@dataclass
class Run:
    """The assembled run: what the loop drives."""

    experiment: ExperimentConfig
    ctx: DistContext
    model: nn.Module
    net: nn.Module  # the model, wrapped by DDP and torch.compile where asked
    loader: Any
    val: tuple[torch.Tensor, Optional[torch.Tensor]]  # uint8 images (a fixed binary draw if binarized), labels
    test: tuple[torch.Tensor, Optional[torch.Tensor]]
    train_size: int
    optimizers: dict[str, torch.optim.Optimizer]  # by name, in the order of the training step's updates
    schedulers: dict[str, Any]  # one LambdaLR per optimizer, same names
    state: RunState
    total_steps: int
    channels_last: bool
    autocast_dtype: Optional[torch.dtype]
    resumed: bool
    notes: list[str] = field(default_factory=list)  # what the user should know about this run's math
    average: Optional[WeightAverage] = None  # trainer.ema_decay: the averaged weights
    # Several updates a step under DDP: each update's gradients averaged by this, not by DDP's hooks
    grad_sync: Optional[Callable[[list[nn.Parameter]], None]] = None
    sync_buffers: bool = False  # and rank 0's BatchNorm statistics broadcast before each step

    @property
    def steps_per_epoch(self) -> int:
        return self.loader.steps_per_epoch

    @property
    def scored_model(self) -> nn.Module:
        """The weights that validation, selection, the test split and the export see: the moving
        average where the run keeps one, else the trained weights themselves."""
        return self.average.module if self.average is not None else self.model


# What a resume must share with the run it continues: the epoch accounting, the data order and
# the bit-exact guarantee rest on them. Epochs, max_steps, logging, evaluation and device
# settings may change (a resume that runs longer is the common case).
RECIPE_FIELDS = ("batch_size", "seed", "optimizer", "optimizers", "scheduler", "kl_warmup_epochs", "grad_clip",
                 "micro_batch_size", "precision", "ema_decay", "init_from")


def recipe_changes(experiment: ExperimentConfig, saved: dict[str, Any]) -> list[str]:
    """``section.field: A here, B in the checkpoint`` for each difference that a resume must not have."""
    mine = experiment.model_dump(mode="json")
    changes = []
    for section in ("model", "data", "trainer"):
        ours, theirs = mine[section], dict(saved.get(section) or {})
        if section == "model":
            theirs.setdefault("family", "vae")  # checkpoints of the one-family release
        if section == "data":  # the data may sit elsewhere on this machine
            ours, theirs = {**ours, "root": None}, {**theirs, "root": None}
        if section == "trainer":
            theirs = {**TrainerConfig().model_dump(mode="json"), **theirs}
        keys = RECIPE_FIELDS if section == "trainer" else sorted(set(ours) | set(theirs))
        for key in keys:
            changes += _differences(f"{section}.{key}", ours.get(key), theirs.get(key))
    return changes


def _differences(path: str, ours: Any, theirs: Any) -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [line for key in sorted(set(ours) | set(theirs))
                for line in _differences(f"{path}.{key}", ours.get(key), theirs.get(key))]
    if ours == theirs:
        return []
    return [f"{path}: {_short(ours)} here, {_short(theirs)} in the checkpoint"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def read_resume_checkpoint(experiment: ExperimentConfig, out: Path, resume: Optional[Path],
                           allow_changes: bool = False) -> Optional[Checkpoint]:
    """The checkpoint to continue from (None for a fresh run), after checking it is this run's:
    a changed recipe is refused unless ``allow_changes``."""
    if resume is None:
        if checkpoint_path(out).is_file():
            raise CheckpointError(
                f"{out} already holds a training run ({checkpoint_path(out)}); continue it with "
                f"--resume {out} (resume=True), or pick another --out folder"
            )
        return None
    checkpoint = load_checkpoint(resume)
    changes = recipe_changes(experiment, checkpoint.state.get("experiment", {}))
    if changes and not allow_changes:
        raise CheckpointError(
            f"cannot resume from {checkpoint.path}: the recipe differs ({'; '.join(changes)}). The epoch accounting "
            f"and the bit-exact resume assume the same recipe: resume without the change, or pass --allow-changes "
            f"(allow_changes=True) to continue anyway"
        )
    return checkpoint


def _check_data(experiment: ExperimentConfig, splits, model) -> None:
    source = experiment.name or ""
    if tuple(splits.shape) != tuple(experiment.model.input_shape):
        channels, height, width = splits.shape
        raise ConfigError(source, [(
            "model.input_shape",
            f"is {list(experiment.model.input_shape)} but the dataset's images are {list(splits.shape)}: set "
            f"model.input_shape to {list(splits.shape)}, or make the data match the model (for image-folder: "
            f"data.dataset.channels, data.dataset.size)",
        )])
    if model.conditional:
        if splits.train_labels is None:
            raise ConfigError(source, [("data.dataset", f"the '{model.family}' family is conditional but dataset "
                                                         f"'{experiment.data.dataset.name}' has no labels")])
        classes = int(splits.train_labels.max()) + 1
        if classes > model.config.num_classes:
            raise ConfigError(source, [("model.num_classes", f"is {model.config.num_classes} but the dataset's "
                                                             f"labels go up to {classes - 1}")])


def optimizer_settings(experiment: ExperimentConfig, model) -> dict[str, OptimizerConfig]:
    """The settings of each optimizer the model trains with: ``trainer.optimizer`` for ``model``,
    ``trainer.optimizers.<name>`` for the others; a name the model does not train is an error."""
    cfg = experiment.trainer
    names = model.training_updates()
    unknown = sorted(set(cfg.optimizers) - set(names))
    if unknown:
        raise ConfigError(experiment.name or "", [(f"trainer.optimizers.{name}", (
            f"this model trains no optimizer '{name}'; its optimizers are {', '.join(names)} "
            f"(`model` is set by trainer.optimizer)")) for name in unknown])
    parts = model.training_parts()  # a network of its own starts from defaults; a split of the model's own
    return {name: cfg.optimizer if name == MAIN_OPTIMIZER  # parameters (PIWAE's encoder) from the model's settings
            else cfg.optimizers.get(name, OptimizerConfig() if name in parts else cfg.optimizer) for name in names}


def prepare_run(experiment: ExperimentConfig, out: Path, ctx: DistContext, *, resume: Optional[Path],
                allow_changes: bool = False) -> Run:
    cfg = experiment.trainer
    device = ctx.device
    checkpoint = read_resume_checkpoint(experiment, out, resume, allow_changes)

    splits = load_splits(experiment.data, expected_shape=tuple(experiment.model.input_shape))
    val, test = splits.val, splits.test
    if experiment.data.binarize == "dynamic":
        # Training draws fresh binary images per batch; evaluation needs one fixed draw so that
        # the numbers compare across epochs (the test draw equals the static protocol's).
        val, test = static_binarize(val, VAL_BINARIZE_SEED), static_binarize(test, TEST_BINARIZE_SEED)

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = build_model(experiment.model, source=experiment.name or "").to(device)
    _check_data(experiment, splits, model)
    labels = model.conditional  # only a conditional model's batches carry labels to the step
    channels_last = wants_channels_last(cfg.channels_last, model, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if checkpoint is None:  # a resume's weights are in its checkpoint
        copied, notes = warm_start(model, cfg.init_from) if cfg.init_from else (set(), [])
        notes += initialize_priors_from_data(model, splits.train, cfg.seed, skip=copied)
    else:
        notes = []
    model, plan_notes = batch_statistics_plan(model, ctx, cfg.micro_batch_size)
    notes += plan_notes
    loader = make_loader(
        cfg.loader, splits.train, cfg.batch_size, device=device, seed=cfg.seed, rank=ctx.rank,
        world_size=ctx.world_size, binarize="dynamic" if experiment.data.binarize == "dynamic" else "none",
        channels_last=channels_last, num_workers=cfg.num_workers, labels=splits.train_labels if labels else None,
    )
    val_labels = splits.val_labels if labels else None
    test_labels = splits.test_labels if labels else None
    if isinstance(loader, DeviceLoader):
        val, test = val.to(device), test.to(device)
    elif device.type == "cuda":  # pinned: each evaluation batch's copy to the GPU does not block
        val, test = val.pin_memory(), test.pin_memory()
    spe = loader.steps_per_epoch
    total_steps = cfg.epochs * spe if cfg.max_steps is None else min(cfg.epochs * spe, cfg.max_steps)
    notes += short_run_notes(cfg, total_steps, spe)

    settings = optimizer_settings(experiment, model)
    groups = model.optimizer_groups()
    optimizers = {name: build_optimizer(groups[name], settings[name], device) for name in model.training_updates()}
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.scheduler, total_steps))
                  for name, optimizer in optimizers.items()}
    if checkpoint is not None:
        state = _restore(checkpoint, model, optimizers, schedulers, ctx, cfg.seed)
        if allow_changes:  # the new recipe's optimizer settings, not the checkpoint's
            for name, optimizer in optimizers.items():
                _apply_optimizer_settings(optimizer, schedulers[name], settings[name])
    else:
        state = RunState()
        torch.manual_seed(derive_seed(cfg.seed, ctx.rank, 0x7A))  # this rank's training stream
    average = _weight_average(model, cfg.ema_decay, checkpoint)

    net: nn.Module = model
    grad_sync, sync_buffers = None, False
    if ctx.distributed and len(optimizers) > 1:
        broadcast_module(model, ctx)  # what DDP does at its start: rank 0's weights everywhere
        grad_sync, sync_buffers = gradient_averager(ctx), syncs_buffers(model)
    elif ctx.distributed:
        net = wrap_ddp(model, device)
    if cfg.compile != "off":
        net = torch.compile(net, mode=None if cfg.compile == "default" else cfg.compile)
    return Run(
        experiment=experiment, ctx=ctx, model=model, net=net, loader=loader, val=(val, val_labels),
        test=(test, test_labels), train_size=int(splits.train.shape[0]), optimizers=optimizers, schedulers=schedulers,
        state=state, total_steps=total_steps, channels_last=channels_last,
        autocast_dtype=resolve_precision(cfg.precision, device, model), resumed=checkpoint is not None, notes=notes,
        average=average, grad_sync=grad_sync, sync_buffers=sync_buffers,
    )


def _weight_average(model: nn.Module, decay: Optional[float], checkpoint: Optional[Checkpoint]
                    ) -> Optional[WeightAverage]:
    """The moving average of ``trainer.ema_decay``, continued from the checkpoint's where it has one
    (a run that starts averaging on a resume, with --allow-changes, starts from the weights in hand)."""
    if decay is None:
        return None
    saved = checkpoint.averaged if checkpoint is not None else {}
    average = WeightAverage(model, decay, updates=int(checkpoint.state.get("ema_updates", 0)) if saved else 0)
    if saved:
        load_state(average.module, saved, f"{checkpoint.path} (the averaged weights)")
    return average


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.parallel.DistributedDataParallel:
    """DDP over ``model``. The buffers that change in training are BatchNorm's running statistics:
    SyncBatchNorm's are equal on every rank, plain BatchNorm's (CPUs) are broadcast from rank 0.
    Every other buffer (the prior's loc and scale, ...) is constant: broadcasting it each step
    would be a collective for nothing."""
    ddp = nn.parallel.DistributedDataParallel
    sync = syncs_buffers(model)
    # torch 2.14 renamed the switch (the start still syncs every buffer, as it must)
    name = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters else \
        "broadcast_buffers"
    return ddp(model, device_ids=[device.index] if device.type == "cuda" else None, **{name: sync})


def syncs_buffers(model: nn.Module) -> bool:
    """Whether DDP must broadcast rank 0's buffers before each forward: only for plain BatchNorm."""
    return has_batch_norm(model) and not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def batch_statistics_plan(model: nn.Module, ctx: DistContext, micro_batch_size: Optional[int]
                          ) -> tuple[nn.Module, list[str]]:
    """Keep statistics of the batch those of the global batch where we can, and say where not.

    Under DDP on GPUs, BatchNorm becomes SyncBatchNorm (the statistics of the global batch, the
    same running statistics on every rank); beta-TCVAE gathers its posteriors itself (see
    ``StepContext.gather_batch``). SyncBatchNorm runs only on GPUs, so CPU processes keep
    per-process statistics, and micro-batches keep per-chunk ones: both are said."""
    notes = []
    batch_norm = has_batch_norm(model)
    if ctx.distributed and batch_norm:
        if ctx.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            notes.append(f"BatchNorm statistics are per process ({ctx.world_size} parts of the batch) on CPUs: "
                         f"SyncBatchNorm needs GPUs, so this run's math differs from one process's")
    objective = getattr(getattr(model, "objective", None), "batch_statistics", False)
    uses_batch = [what for what, yes in (("BatchNorm", batch_norm), ("the objective", objective)) if yes]
    if micro_batch_size and uses_batch:
        notes.append(f"{' and '.join(uses_batch)} use statistics of each micro-batch of {micro_batch_size} images, "
                     f"not of the batch: trainer.micro_batch_size changes this model's math (unset it to avoid)")
    return model, notes


def _restore(checkpoint: Checkpoint, model, optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any],
             ctx: DistContext, seed: int) -> RunState:
    load_state(model, checkpoint.model, str(checkpoint.path))  # every missing, extra or misshapen tensor named
    _check_optimizer_names(checkpoint, optimizers)
    saved_schedulers = checkpoint.state["schedulers"]
    for name, optimizer in optimizers.items():
        _check_optimizer_state(checkpoint, name, optimizer)
        optimizer.load_state_dict(checkpoint.optimizers[name])
        schedulers[name].load_state_dict(saved_schedulers[name])
    state = RunState.from_json(checkpoint.state["progress"])
    if ctx.rank != 0:  # the checkpoint holds the sums of every rank: rank 0 carries them on
        state.sums, state.count = {}, 0
    cpu = checkpoint.rng.get(f"{_RNG_CPU}.rank{ctx.rank}")
    if cpu is not None and checkpoint.state.get("world_size") == ctx.world_size:
        torch.set_rng_state(cpu)
        cuda = checkpoint.rng.get(f"{_RNG_CUDA}.rank{ctx.rank}")
        if cuda is not None and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(cuda, ctx.device)
    else:
        # A different number of processes: the old per-rank streams do not map onto the new
        # ranks. Continue deterministically, though not bit-identically to the old layout.
        torch.manual_seed(derive_seed(seed, ctx.rank, state.global_step, 0x7A))
    return state


def _apply_optimizer_settings(optimizer, scheduler, settings) -> None:
    for group in optimizer.param_groups:
        group.update(initial_lr=settings.lr, weight_decay=settings.weight_decay, betas=tuple(settings.betas))
    scheduler.base_lrs = [settings.lr] * len(optimizer.param_groups)
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["lr"] = settings.lr * factor(scheduler.last_epoch)


def _check_optimizer_names(checkpoint: Checkpoint, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    saved, ours = sorted(checkpoint.optimizers), sorted(optimizers)
    schedulers = checkpoint.state.get("schedulers")
    if saved != ours or not isinstance(schedulers, dict) or sorted(schedulers) != ours:
        raise CheckpointError(f"{checkpoint.path}: it holds the optimizers {', '.join(saved) or 'none'} (schedulers: "
                              f"{', '.join(sorted(schedulers or {})) or 'none'}), this run trains with "
                              f"{', '.join(ours)}; it cannot be resumed from: resume with the run's own config, or "
                              f"start the run again")


def _check_optimizer_state(checkpoint: Checkpoint, name: str, optimizer: torch.optim.Optimizer) -> None:
    """The optimizer's moments must be there for every trained parameter: torch would accept a
    state without them and restart Adam from zero, silently."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved_state = checkpoint.optimizers[name]
    saved = saved_state["state"]
    problems = []
    if len(saved_state["param_groups"]) != len(optimizer.param_groups):
        problems.append(f"{len(saved_state['param_groups'])} parameter groups, the run has "
                        f"{len(optimizer.param_groups)}")
    extra = sorted(i for i in saved if i >= len(params))
    if extra:
        problems.append(f"state for parameters {extra[:5]} that the model does not have")
    # A parameter that never got a gradient has no state, legitimately; none at all after steps is a loss.
    if checkpoint.step > 0 and not saved and any(p.requires_grad for p in params):
        problems.append(f"no optimizer state at all after {checkpoint.step} steps")
    if problems:
        what = "its optimizer state" if name == MAIN_OPTIMIZER else f"the state of its optimizer {name!r}"
        raise CheckpointError(f"{checkpoint.path}: {what} does not fit this run ({'; '.join(problems)}); "
                              f"it cannot be resumed from: resume with the run's own config, or start the run again")


def _rng_states(ctx: DistContext) -> dict[str, torch.Tensor]:
    """Every rank's RNG states (a collective under DDP: all ranks call it)."""
    mine = {_RNG_CPU: torch.get_rng_state()}
    if ctx.device.type == "cuda":
        mine[_RNG_CUDA] = torch.cuda.get_rng_state(ctx.device)
    out = {}
    for name, tensor in mine.items():
        for rank, value in enumerate(gather_tensors(tensor, ctx)):
            out[f"{name}.rank{rank}"] = value.cpu()
    return out


def save_run_checkpoint(run: Run, out: Path) -> None:
    """The crash-safe checkpoint of the run as it is now (a collective: every rank calls it)."""
    rng = _rng_states(run.ctx)
    st = run.state
    progress = asdict(st)
    # The epoch's running sums of every rank, added up: a resumed run's epoch means stay exact
    # whatever rank held which steps (rank 0 alone carries them on, see _restore).
    names = sorted(st.sums)
    totals = all_reduce_sum(torch.tensor([st.sums[n] for n in names] + [st.count], dtype=torch.float64,
                                         device=run.ctx.device), run.ctx).tolist()
    progress["sums"], progress["count"] = dict(zip(names, totals[:-1])), int(totals[-1])
    if run.ctx.is_main:
        average = run.average
        save_checkpoint(out, model=run.model, optimizers=run.optimizers, rng=rng,
                        averaged=average.module if average is not None else None, state={
            "global_step": st.global_step,  # top level, for people and tools reading last.json
            "epoch": st.epoch,
            "step_in_epoch": st.step_in_epoch,
            "progress": progress,
            "schedulers": {name: scheduler.state_dict() for name, scheduler in run.schedulers.items()},
            "experiment": run.experiment.model_dump(mode="json"),
            "world_size": run.ctx.world_size,
            "torch_version": torch.__version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **({"ema_updates": average.updates} if average is not None else {}),
        })
