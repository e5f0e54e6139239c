"""The one training loop that trains every family: the objective comes from the config.

Speed without changing the math: the uint8 data lives on the device and is sliced per step
(:mod:`.loader`), no host-device sync per step (the loss and terms stay on the device and are
read every ``log_every`` steps), ``zero_grad(set_to_none=True)``, foreach/fused optimizers,
channels-last for convolutional models, bf16 autocast on GPUs that support it, optional
``torch.compile``. Evaluation runs inside ``torch.random.fork_rng`` so that it never perturbs
training. Setup, the step, the NaN stop and the export live beside this file.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, TextIO

import torch
from torch import nn

from ..errors import TrainingInterrupted
from ..layout.checkpoint import load_best_weights, save_best_weights
from ..layout.lock import run_folder_lock
from ..models.base import PointLatents
from ..parts.objectives.base import MAIN_UPDATE
from ..passes import StepContext
from ..schemas import ExperimentConfig
from .distributed import DistContext, all_reduce_sum, barrier, batch_gatherer, broadcast_module, init_distributed
from .export import export_run, final_record
from .guards import first_bad_step, non_finite_error, weights_finite
from .eval_batch import CANDIDATES as EVAL_CANDIDATES, choose_eval_batch_size, eval_forward_key
from .loader import derive_seed, eval_batches
from .progress import Progress
from .recipe import kl_scale_at
from .status import run_seconds_left
from .records import TensorBoard, write_metrics
from .setup import Run, prepare_run, save_run_checkpoint
from .step import train_step

__all__ = ["Trainer"]

LINE_SECONDS = 10.0  # the longest a single-process run goes without a progress line


class Trainer:
    """Train ``experiment`` into the run folder ``out``.

    ``data_root``: the dataset's folder (overrides ``data.root``; the run's ``config.json`` records
    it, so that evaluating or resuming the run finds the data again). ``resume``: a run folder
    whose ``checkpoints/last.safetensors`` to continue from (usually ``out`` itself);
    ``allow_changes``: continue it even with another recipe (batch size, seed, optimizer, ...).
    ``stream``: where progress goes (stderr by default; ``progress=False``: nowhere).
    ``continue_with``: how a user continues the run once SIGTERM or Ctrl-C has stopped it
    (``--resume OUT`` by default).
    """

    def __init__(self, experiment: ExperimentConfig, out: str | Path, *, data_root: Optional[str] = None,
                 device: Optional[str] = None, resume: str | Path | None = None, stream: Optional[TextIO] = None,
                 allow_changes: bool = False, continue_with: Optional[str] = None, progress: bool = True):
        if data_root is not None:  # the run remembers where its data came from: `vaezoo eval RUN` reads it there
            data = experiment.data.model_copy(update={"root": str(Path(data_root).expanduser().resolve())})
            experiment = experiment.model_copy(update={"data": data})
        self.experiment = experiment
        self.cfg = experiment.trainer
        self.out = Path(out)
        self.device_name = device or self.cfg.device
        self.resume = Path(resume) if resume is not None else None
        self.stream = (stream if stream is not None else sys.stderr) if progress else _Silent()
        self.allow_changes = allow_changes
        self.continue_with = continue_with or f"--resume {self.out}"  # what a stopped run tells its user

    def fit(self) -> tuple[Any, dict[str, Any]]:
        ctx = init_distributed(self.device_name)
        try:
            # rank 0 writes the folder, so rank 0 holds it; before any work, and for all of it
            with run_folder_lock(self.out, "vaezoo train") if ctx.is_main else contextlib.nullcontext():
                return self._fit(ctx)
        finally:
            ctx.close()

    def _fit(self, ctx: DistContext) -> tuple[Any, dict[str, Any]]:
        run = self.run = prepare_run(self.experiment, self.out, ctx, resume=self.resume,
                                     allow_changes=self.allow_changes)
        st, cfg = run.state, self.cfg
        self.progress = Progress(epochs=cfg.epochs, steps_per_epoch=run.steps_per_epoch, enabled=ctx.is_main,
                                 stream=self.stream)
        self.tensorboard = TensorBoard(self.out, enabled=ctx.is_main)
        if ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if run.resumed:
                write_metrics(self.out, st.history)  # drop the lines of epochs that the crash undid
            where = f" on {ctx.world_size} processes" if ctx.distributed else ""
            where += ", bf16 autocast" if run.autocast_dtype == torch.bfloat16 else ""
            what = f"resumed at step {st.global_step} (epoch {st.epoch + 1})" if run.resumed else "started"
            self.progress.message(
                f"training {self.experiment.name or 'model'} ({run.model.family}): {run.model.num_parameters():,} "
                f"parameters, {ctx.device}{where}, {run.train_size:,} images, {run.steps_per_epoch} steps/epoch of "
                f"{cfg.batch_size}; {what}; run folder {self.out}"
            )
            for note in run.notes:
                self.progress.message(f"note: {note}")
        self._selected: Optional[nn.Module] = None  # trainer.select: best_val's pick, at the end
        self._stop_signal: Optional[int] = None  # SIGTERM or SIGINT, once one has asked the run to stop
        self._steps: list[tuple[int, dict[str, float]]] = []  # this process's logged windows (not kept on resume)
        try:
            with _on_stop_signals(self._request_stop), _kernel_choice(cfg.deterministic):
                self._train(run)
        finally:
            self.progress.close()
            self.tensorboard.close()
        if cfg.select == "best_val" and self._selected is None:
            # A resumed run that had already finished: its checkpoint holds the trained weights.
            self._selected = self._select_best(run, st.history[-1]["epoch"] if st.history else 0)
        exported = self._selected if self._selected is not None else run.scored_model
        final = final_record(st.history, st.best["epoch"] if cfg.select == "best_val" and st.best else None)
        if ctx.is_main:
            # an autoregressive decoder draws its samples pixel by pixel: say what the wait is for
            self.progress.message("writing the run folder: weights, model card, 64 samples for samples.png, loss.png")
            export_run(exported, self.experiment, self.out, st.history, final, steps=st.global_step,
                       elapsed=st.elapsed, device=ctx.device, processes=ctx.world_size,
                       val_examples=int(run.val[0].shape[0]), test_examples=int(run.test[0].shape[0]),
                       batch_size=cfg.batch_size, logged=self._steps)
            print(f"wrote the run folder {self.out}: vaezoo.load({str(self.out)!r}) reads it", file=self.stream,
                  flush=True)
        barrier(ctx)
        return exported.eval(), final

    # -- the loop ---------------------------------------------------------------------

    def _train(self, run: Run) -> None:
        cfg, st = self.cfg, run.state
        self._last_checkpoint_step = st.global_step if run.resumed else None
        self._last_checkpoint_time = time.monotonic()
        self._window: list[torch.Tensor] = []
        self._names: list[str] = []
        # The KL warm-up weight lives on the device and is updated in place: no host-to-device
        # copy per step, and torch.compile sees one tensor input instead of a new Python float
        # (which would recompile every step).
        kl_scale = torch.ones((), dtype=torch.float32, device=run.ctx.device)
        gather_batch = batch_gatherer(run.ctx)
        cuda_graphs = cfg.compile == "reduce-overhead" and run.ctx.device.type == "cuda"
        self._warmup: Optional[tuple[int, float]] = None  # (epoch, seconds) of this process's first step
        self._said_first = False
        stop = st.global_step >= run.total_steps or self._out_of_patience(st)
        while st.epoch < cfg.epochs and not stop:
            self.progress.epoch_start(st.epoch, st.step_in_epoch)
            epoch_t0 = self._window_t0 = time.perf_counter()
            for batch in run.loader.batches(st.epoch, st.step_in_epoch):
                kl_scale.fill_(kl_scale_at(cfg, st.epoch, st.step_in_epoch, run.steps_per_epoch))
                context = StepContext(kl_scale, st.global_step, run.train_size, gather_batch)
                started = time.perf_counter()
                if run.sync_buffers:
                    broadcast_module(run.model, run.ctx, buffers_only=True)
                row, self._names = train_step(
                    run.net, run.optimizers, run.schedulers, batch, context,
                    micro_batch_size=cfg.micro_batch_size, grad_clip=cfg.grad_clip,
                    autocast_dtype=run.autocast_dtype, device_type=run.ctx.device.type, cuda_graphs=cuda_graphs,
                    grad_sync=run.grad_sync)
                if run.average is not None:
                    run.average.update(run.model)
                if self._warmup is None:
                    # The first step pays for compilation and kernel autotuning; reading the loss
                    # back once here makes its time honest, and the epoch's img/s leaves it out.
                    row.cpu()
                    self._warmup = (st.epoch, time.perf_counter() - started)
                self._window.append(row)
                st.step_in_epoch += 1
                st.global_step += 1
                st.epoch_images += cfg.batch_size
                self.progress.advance()
                stop = st.global_step >= run.total_steps
                if st.global_step % cfg.log_every == 0 or stop or self._line_due(run):
                    self._flush(run)
                    if self._stop_requested(run):  # SIGTERM or Ctrl-C: keep the progress, then stop
                        self._clock(st, epoch_t0)
                        self._checkpoint(run)
                        raise TrainingInterrupted(
                            f"training stopped by {_SIGNAL_NAMES[self._stop_signal]} after step {st.global_step}; "
                            f"its checkpoint is in {self.out}: continue with {self.continue_with}", st.global_step,
                            self.out, signal=self._stop_signal)
                if stop:
                    break
                if (st.global_step % cfg.checkpoint_every == 0 and st.step_in_epoch < run.steps_per_epoch
                        and self._minutes_passed()):
                    self._flush(run)
                    epoch_t0 = self._clock(st, epoch_t0)
                    self._checkpoint(run)
            self._flush(run)
            self._clock(st, epoch_t0)
            self._end_epoch(run, complete=st.step_in_epoch >= run.steps_per_epoch)
            stop = stop or self._out_of_patience(st)

    def _line_due(self, run: Run) -> bool:
        """Besides every ``log_every`` steps, a progress line after this process's first step and
        then at least every ``LINE_SECONDS``, so that a slow model (a PixelCNN prior on a CPU)
        shows its rate and ETA within seconds. One process only: ranks must flush together."""
        if run.ctx.distributed:
            return False
        if not self._said_first:
            self._said_first = True
            return True
        return time.perf_counter() - self._window_t0 >= LINE_SECONDS

    def _out_of_patience(self, st) -> bool:
        """Early stopping: ``trainer.patience`` epochs have passed without a lower validation -ELBO."""
        return self.cfg.patience is not None and st.epochs_since_best >= self.cfg.patience

    def _epoch_rate(self, st) -> float:
        """Training img/s of the epoch, without the process's first step (compile, autotuning)
        when the epoch has other steps."""
        images, seconds = st.epoch_images, st.epoch_time
        if self._warmup is not None and self._warmup[0] == st.epoch and images > self.cfg.batch_size:
            images, seconds = images - self.cfg.batch_size, seconds - self._warmup[1]
        return images / max(seconds, 1e-9)

    @staticmethod
    def _clock(st, since: float) -> float:
        now = time.perf_counter()
        st.epoch_time += now - since
        st.elapsed += now - since
        return now

    def _flush(self, run: Run) -> None:
        """Read the last steps' loss and terms from the device (one sync), stop on NaN/inf, report."""
        window, st = self._window, run.state
        if not window:
            return
        values = torch.stack(window).double().cpu()
        bad_step = first_bad_step(values, st.global_step - len(window) + 1, run.ctx)
        if bad_step:
            raise non_finite_error(f"the loss or a term of it became NaN/inf at step {bad_step}", bad_step,
                                   run.steps_per_epoch, self.out, self._last_checkpoint_step)
        names = ["loss", *self._names]
        summed = values.sum(dim=0)
        for name, total in zip(names, summed.tolist()):  # this rank's sums: the epoch all-reduces them
            st.sums[name] = st.sums.get(name, 0.0) + total
        st.count += len(window)
        if run.ctx.distributed:  # the progress line shows the global batch, not rank 0's part of it
            summed = all_reduce_sum(summed.to(run.ctx.device), run.ctx) / run.ctx.world_size
        totals = summed.tolist()
        now = time.perf_counter()
        elapsed = max(now - self._window_t0, 1e-9)
        mean = {name: total / len(window) for name, total in zip(names, totals)}
        stats = {"loss": mean["loss"], "terms": {n: mean[n] for n in self._names},
                 "neg_elbo": _neg_elbo(mean), "img_per_s": len(window) * self.cfg.batch_size / elapsed,
                 "lr": _main_lr(run),
                 "eta_s": run_seconds_left(run.total_steps - st.global_step, elapsed / len(window),
                                           run.steps_per_epoch, st.history)}
        self.progress.log(st.epoch, st.step_in_epoch, st.global_step, stats)
        self._steps.append((st.global_step, {"loss": stats["loss"], **stats["terms"]}))  # loss.png of a short run
        if run.ctx.is_main:
            scalars = {k: v for k, v in stats.items() if k not in ("eta_s", "terms")}
            self.tensorboard.scalars("train", {**scalars, **stats["terms"]}, st.global_step)
        window.clear()
        self._window_t0 = now

    def _request_stop(self, signum: int) -> None:
        if signum == signal.SIGINT:
            if self._stop_signal is not None:  # a second Ctrl-C: stop now; the last checkpoint stays
                raise KeyboardInterrupt
            self.progress.message("Ctrl-C: stopping after a checkpoint at the next progress line "
                                  "(Ctrl-C again stops at once and keeps the last checkpoint)")
        self._stop_signal = signum

    def _stop_requested(self, run: Run) -> bool:
        """Whether SIGTERM or Ctrl-C arrived, on any rank (every rank asks at the same log step)."""
        flag = self._stop_signal is not None
        if run.ctx.distributed:
            tensor = torch.tensor([self._stop_signal or 0], device=run.ctx.device)
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
            flag = bool(tensor.item())
            self._stop_signal = self._stop_signal or (int(tensor.item()) or None)
        return flag

    def _minutes_passed(self) -> bool:
        minutes = self.cfg.checkpoint_minutes
        return minutes is None or time.monotonic() - self._last_checkpoint_time >= 60 * minutes

    def _checkpoint(self, run: Run) -> None:
        if not weights_finite(run.model, run.ctx):
            step = run.state.global_step
            raise non_finite_error(f"the weights became NaN/inf by step {step}", step, run.steps_per_epoch,
                                   self.out, self._last_checkpoint_step)
        save_run_checkpoint(run, self.out)
        self._last_checkpoint_step = run.state.global_step
        self._last_checkpoint_time = time.monotonic()

    # -- evaluation and records -------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self, run: Run, split: tuple[torch.Tensor, Optional[torch.Tensor]], tag: int,
                  title: str) -> dict[str, float]:
        """Mean -ELBO and every term of the objective over a split, sharded over the ranks: of
        the selected weights once the end of the run has picked them, else of the scored model.
        A model without a bound (a deterministic encoder: no ``elbo``) gets its mean loss instead."""
        device = run.ctx.device
        model = self._selected if self._selected is not None else run.scored_model
        bounded = not isinstance(model, PointLatents)
        images, labels = split
        sums: Optional[torch.Tensor] = None
        names: list[str] = []
        # Weight 1 on the KL; the training set's size for objectives that need it (beta-TCVAE).
        # Evaluation shards differ in size, so batch statistics stay per process here.
        context = StepContext(1.0, run.state.global_step, run.train_size)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            was_training = model.training  # the trained weights go back to training; an average stays in eval
            model.eval()
            try:
                shard_size = images.tensor_split(run.ctx.world_size)[run.ctx.rank].shape[0]
                batch_size = self._eval_batch_size(run, model, (images, labels), shard_size, context)
                # A fixed stream (seeded after any timing, which draws noise too): the numbers are
                # repeatable, and training's RNG is left untouched.
                torch.manual_seed(derive_seed(self.cfg.seed, tag, run.ctx.rank))
                progress, done = self.progress.pass_progress(title), 0
                for x, y in eval_batches(images, batch_size, device=device, rank=run.ctx.rank,
                                         world_size=run.ctx.world_size, channels_last=run.channels_last,
                                         labels=labels):
                    out = model(x, y, context=context)
                    n = x.shape[0]
                    done += n
                    if progress is not None:
                        progress(done, shard_size)
                    names = list(out.terms)
                    score = -out.elbo.sum().double() if bounded else out.loss.double() * n
                    row = torch.stack([score, *(t.double() * n for t in out.terms.values()),
                                       torch.tensor(n, dtype=torch.float64, device=device)])
                    sums = row if sums is None else sums + row
            finally:
                model.train(was_training)
        if sums is None:  # this rank's shard is empty; its zeros still join the all-reduce
            names = self._names
            sums = torch.zeros(len(names) + 2, dtype=torch.float64, device=device)
        total = all_reduce_sum(sums, run.ctx).tolist()
        if total[-1] == 0:  # an empty split (data.val_size: 0)
            return _NOT_SCORED
        n = total[-1]
        terms = {name: value / n for name, value in zip(names, total[1:-1])}
        kls = [v for k, v in terms.items() if k == "kl" or k.startswith("kl/")]
        return {"neg_elbo": total[0] / n if bounded else None, "loss": None if bounded else total[0] / n,
                "recon": terms.get("recon"), "kl": sum(kls) if kls else None, "terms": terms}

    def _eval_batch_size(self, run: Run, model: nn.Module, split: tuple[torch.Tensor, Optional[torch.Tensor]],
                         shard_size: int, context: StepContext) -> int:
        """``trainer.eval_batch_size``, or with ``auto`` the size timed at the run's first evaluation
        (by rank 0, for every rank) and kept in the run's state for its resumes."""
        if self.cfg.eval_batch_size != "auto":
            return self.cfg.eval_batch_size
        st = run.state
        if st.eval_batch_size is None:
            chosen = 0
            if run.ctx.is_main:
                first = functools.cache(lambda: next(eval_batches(  # the split's first images, moved once if timed
                    split[0], EVAL_CANDIDATES[-1], device=run.ctx.device, channels_last=run.channels_last,
                    labels=split[1])))

                def forward(n: int):
                    x, y = first()
                    return model(x[:n], None if y is None else y[:n], context=context)

                chosen = choose_eval_batch_size(eval_forward_key(model, run.ctx.device, run.channels_last),
                                                shard_size, forward, device=run.ctx.device, say=self.progress.message)
            st.eval_batch_size = int(all_reduce_sum(torch.tensor([float(chosen)], device=run.ctx.device),
                                                    run.ctx).item())
        return st.eval_batch_size

    def _end_epoch(self, run: Run, complete: bool) -> None:
        st, cfg = run.state, self.cfg
        names = sorted(st.sums)
        totals = all_reduce_sum(torch.tensor([st.sums[n] for n in names] + [st.count], dtype=torch.float64,
                                             device=run.ctx.device), run.ctx).tolist()
        count = max(totals[-1], 1.0)
        train = {name: total / count for name, total in zip(names, totals[:-1])}
        last = st.global_step >= run.total_steps or (complete and st.epoch + 1 >= cfg.epochs)
        val_images, val_labels = run.val
        if cfg.val_limit is not None:
            val_images = val_images[: cfg.val_limit]
            val_labels = None if val_labels is None else val_labels[: cfg.val_limit]
        self.progress.close()  # the epoch's bar: the scoring's lines come below it
        val = self._evaluate(run, (val_images, val_labels), 1, "validation: ")
        self._track_best(run, val)
        last = last or self._out_of_patience(st)
        if last and cfg.select == "best_val":
            self._selected = self._select_best(run, st.epoch + 1)  # for the test split and the export
        scored = cfg.test == "every_epoch" or (cfg.test == "end" and last)
        test = self._evaluate(run, run.test, 2, "test: ") if scored else _NOT_SCORED
        record: dict[str, Any] = {
            "epoch": st.epoch + 1, "step": st.global_step,
            "train_loss": train.get("loss"), "train_recon": train.get("recon"),
            "train_kl": sum(v for k, v in train.items() if k == "kl" or k.startswith("kl/"))
            if _neg_elbo(train) is not None else None,
            "train_neg_elbo": _neg_elbo(train),
            **{f"train_term/{name}": value for name, value in train.items() if name != "loss"},
            "val_neg_elbo": val["neg_elbo"], "val_recon": val["recon"], "val_kl": val["kl"],
            "test_neg_elbo": test["neg_elbo"], "test_recon": test["recon"], "test_kl": test["kl"],
            **({"val_loss": val["loss"], "test_loss": test["loss"]} if val.get("loss") is not None else {}),
            "kl_scale": kl_scale_at(cfg, st.epoch, max(st.step_in_epoch - 1, 0), run.steps_per_epoch),
            "lr": _main_lr(run),
            "img_per_s": self._epoch_rate(st),
            "epoch_time_s": st.epoch_time, "wall_time_s": st.elapsed,
        }
        if self._warmup is not None and self._warmup[0] == st.epoch:
            record["first_step_s"] = self._warmup[1]
        if st.best is not None:
            record["best_epoch"] = st.best["epoch"]
        if len(val["terms"]) > 2:  # a hierarchy or extra terms: each split's terms too
            record.update({f"val_term/{k}": v for k, v in val["terms"].items()})
        if not complete:
            record["partial"] = True
        if st.history and st.history[-1].get("partial") and st.history[-1]["epoch"] == record["epoch"]:
            st.history[-1] = record  # a stopped epoch that a longer run has now finished
        else:
            st.history.append(record)
        if run.ctx.is_main:
            write_metrics(self.out, st.history)
            self.tensorboard.scalars("epoch", {k: v for k, v in record.items() if isinstance(v, (int, float))},
                                     st.global_step)
        self.progress.epoch_end(record)
        if complete:
            st.new_epoch()
        if last or self._minutes_passed():
            self._checkpoint(run)


    def _track_best(self, run: Run, val: dict[str, Any]) -> None:
        """Keep the epoch with the lowest validation -ELBO (the same number on every rank); for a
        model without a bound, the lowest validation loss. Warm-up epochs (before
        ``trainer.select_from``) are neither kept nor counted."""
        st = run.state
        if st.epoch + 1 < self.cfg.select_from:
            return
        key, value = ("val_neg_elbo", val["neg_elbo"]) if val.get("neg_elbo") is not None else ("val_loss", val.get("loss"))
        if value is None:
            return
        if st.best is None or value < st.best[key]:
            st.best = {"epoch": st.epoch + 1, key: value}
            st.epochs_since_best = 0
            if self.cfg.select == "best_val" and run.ctx.is_main:
                save_best_weights(self.out, run.scored_model, st.epoch + 1)
        else:
            st.epochs_since_best += 1

    def _select_best(self, run: Run, epoch_in_hand: int) -> nn.Module:
        """The scored model with the selected epoch's weights, for the test split and the export:
        a copy, so that the training state, and the last checkpoint that a longer resume goes on
        from, stay those of ``epoch_in_hand``; the scored model itself when that is the epoch."""
        st = run.state
        if st.best is None or st.best["epoch"] == epoch_in_hand:
            return run.scored_model
        barrier(run.ctx)  # rank 0 wrote the file
        selected = copy.deepcopy(run.scored_model)
        selected.load_state_dict(load_best_weights(self.out, run.ctx.device)[0])
        what = "validation -ELBO" if "val_neg_elbo" in st.best else "validation loss"
        self.progress.message(f"selected the weights of epoch {st.best['epoch']} ({what} "
                              f"{st.best.get('val_neg_elbo', st.best.get('val_loss')):.3f}, the lowest)")
        return selected


_NOT_SCORED = {"neg_elbo": None, "loss": None, "recon": None, "kl": None, "terms": {}}


def _main_lr(run: Run) -> float:
    """The learning rate of the model's own optimizer (every optimizer follows the same schedule)."""
    return run.schedulers[MAIN_UPDATE].get_last_lr()[0]


class _Silent:
    """A stream that drops what it is given: progress=False."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


_SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


@contextlib.contextmanager
def _on_stop_signals(handler):
    """Call ``handler(signum)`` on SIGTERM and Ctrl-C (SIGINT) while training: the loop then
    checkpoints at its next progress line and stops. Only the main thread may install signal
    handlers, so elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, lambda signum, frame: handler(signum)) for signum in _SIGNAL_NAMES}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


@contextlib.contextmanager
def _kernel_choice(deterministic: bool):
    """While training, and as they were after (the process is the user's): cuDNN benchmark mode
    (the shapes are fixed, so cuDNN may time its kernels once and keep the fastest), or, with
    ``trainer.deterministic``, deterministic algorithms and cuDNN instead.

    On CPUs, denormal floats (below 1.2e-38) are flushed to zero: tiny gradients, such as some
    of those reaching a VampPrior's pseudo-inputs, otherwise take the CPU's slow path (a data-initialized
    VampPrior ran 2.9x slower, benchmarks/denormals.py) for a difference no loss digit shows.
    torch has no getter for the switch, so it goes back to torch's default (off) after."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    flushing = torch.set_flush_denormal(True)  # False where the CPU cannot (then nothing changed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS requires
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    else:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]
        if flushing:
            torch.set_flush_denormal(False)


def _neg_elbo(means: dict[str, float]) -> Optional[float]:
    """recon + every KL term: the negative ELBO of the logged draws (the loss differs for beta != 1);
    None for a model without a KL (a deterministic encoder has no ELBO)."""
    kls = [v for k, v in means.items() if k == "kl" or k.startswith("kl/")]
    if "recon" not in means or not kls:
        return None
    return means["recon"] + sum(kls)
