"""The second stage of a VQ-VAE: a learned prior over its codes, fitted on the frozen codes.

The autoencoder's codes of the training and validation images are computed once (the
codebook does not move), then the code prior (``pixelcnn``, ``transformer``, any registered
code prior) is trained by maximum likelihood on them. Each epoch ends with the validation
NLL of the codes; the epoch with the best one is kept (the test set is never looked at). With
``checkpoint_dir`` every epoch writes a crash-safe checkpoint (the prior, Adam's state, the RNG,
the history), and calling again with the same folder continues from it. At the end the model
holds the selected prior as ``model.code_prior`` and ``model.config.code_prior`` names it, so
``save_pretrained`` writes both into one checkpoint and ``vaezoo.load`` rebuilds them.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import torch

from pydantic import ValidationError

from ..config import describe_errors
from ..durations import format_duration
from ..errors import CheckpointError, ConfigError, UsageError
from ..models.base import CodeLatents
from ..schemas import CodePriorSpec
from ..layout.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint

__all__ = ["fit_code_prior", "encode_codes"]

PriorChoice = Union[str, Mapping[str, Any], CodePriorSpec]


@torch.no_grad()
def encode_codes(model, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The code grids (N, h, w) of ``images`` (uint8 or floats in [0, 1]), int64, on the CPU."""
    if not isinstance(model, CodeLatents):
        raise UsageError(f"a code prior is for models with discrete codes (the vqvae family); this model's "
                         f"family is '{model.family}' (its post-hoc prior is the Gaussian mixture: fit_prior)")
    was_training = model.training
    model.eval()
    parameter = next(model.parameters())
    codes = []
    try:
        for chunk in images.split(batch_size):
            chunk = chunk.to(parameter.device)
            chunk = chunk.to(parameter.dtype) / 255.0 if not chunk.is_floating_point() else chunk.to(parameter.dtype)
            codes.append(model.encode(chunk).indices.cpu())
    finally:
        model.train(was_training)
    return torch.cat(codes)


def _spec(prior: PriorChoice) -> CodePriorSpec:
    if isinstance(prior, CodePriorSpec):
        return prior
    data = {"name": prior} if isinstance(prior, str) else dict(prior)
    try:
        return CodePriorSpec.model_validate(data)
    except ValidationError as exc:
        problems = [(f"code_prior.{path}" if path else "code_prior", message)
                    for path, message in describe_errors(exc, CodePriorSpec, data)]
        raise ConfigError("", problems) from None


@torch.no_grad()
def _nll(prior, codes: torch.Tensor, batch_size: int, device: torch.device) -> float:
    """Mean NLL of the codes in nats per grid."""
    prior.eval()
    total = 0.0
    for chunk in codes.split(batch_size):
        total += float(-prior.log_prob(chunk.to(device)).sum())
    prior.train()
    return total / max(codes.shape[0], 1)


def fit_code_prior(
    model,
    train_images: torch.Tensor,
    val_images: Optional[torch.Tensor] = None,
    *,
    prior: PriorChoice = "pixelcnn",
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    checkpoint_dir: Optional[Union[str, Path]] = None,
    progress: Union[bool, Callable[[str], None]] = True,
):
    """Fit a code prior on the codes of ``train_images``, select the epoch on ``val_images``
    (the last epoch when none are given), set it as ``model.code_prior``; returns the model.

    Adam at ``lr`` with a cosine decay to 5% over ``epochs``; the code grids are shuffled per
    epoch from ``seed``. ``checkpoint_dir``: write ``checkpoint_dir/checkpoints/last.safetensors``
    each epoch and continue from it when it exists (with the same recipe: a changed one is refused).
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise UsageError(f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    spec = _spec(prior)
    say = _printer(progress)
    device = next(model.parameters()).device
    start = time.perf_counter()
    train_codes = encode_codes(model, train_images)
    val_codes = encode_codes(model, val_images) if val_images is not None and len(val_images) else None
    say(f"encoded {train_codes.shape[0]} training and {0 if val_codes is None else val_codes.shape[0]} validation "
        f"images to {model.grid[0]}x{model.grid[1]} codes in {format_duration(time.perf_counter() - start)}")
    try:
        net = spec.build(model.codebook_size, model.grid).to(device)
    except ValueError as exc:
        raise UsageError(f"code prior '{spec.name}': {exc}") from None
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, train_codes.shape[0] // batch_size)
    total_steps = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    # the recipe, recorded in the checkpoint: a resume must use the same one
    settings = dict(prior=spec.model_dump(mode="json"), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                    codebook_size=model.codebook_size, grid=list(model.grid))
    state = {"epoch": 0, "history": [], "best_epoch": None, "best_val_nll": None, "settings": settings}
    best: Optional[dict[str, torch.Tensor]] = None
    if checkpoint_dir is not None and checkpoint_path(checkpoint_dir).is_file():
        state, best = _resume(checkpoint_dir, net, optimizer, schedule, settings, say)

    for epoch in range(state["epoch"], epochs):
        epoch_start = time.perf_counter()
        order = torch.randperm(train_codes.shape[0], generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        net.train()
        for step in range(steps_per_epoch):
            batch = train_codes[order[step * batch_size:(step + 1) * batch_size]].to(device)
            loss = -net.log_prob(batch).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        train_nll = _nll(net, train_codes[:5000], 1024, device)
        val_nll = _nll(net, val_codes, 1024, device) if val_codes is not None else None
        record = {"epoch": epoch + 1, "train_nll": train_nll, "val_nll": val_nll, "lr": schedule.get_last_lr()[0],
                  "epoch_time_s": time.perf_counter() - epoch_start}
        state["history"].append(record)
        score = val_nll if val_nll is not None else train_nll
        if state["best_val_nll"] is None or score < state["best_val_nll"] or val_codes is None:
            state["best_epoch"], state["best_val_nll"] = epoch + 1, score
            best = {k: v.detach().clone() for k, v in net.state_dict().items()}
        state["epoch"] = epoch + 1
        remaining = (epochs - epoch - 1) * record["epoch_time_s"]
        say(f"code prior epoch {epoch + 1}/{epochs}: train NLL {train_nll:.2f} nats/grid"
            + (f", val NLL {val_nll:.2f}" if val_nll is not None else "")
            + f" ({_bits_per_code(score, model):.3f} bits/code), {format_duration(record['epoch_time_s'])}, "
              f"eta {format_duration(remaining)}")
        if checkpoint_dir is not None:
            _save(checkpoint_dir, net, optimizer, schedule, state, best)

    net.load_state_dict(best)
    net.eval()
    model.code_prior = net.to(dtype=next(model.parameters()).dtype)
    model.config = model.config.model_copy(update={"code_prior": spec})
    model.code_prior_fit = {k: state[k] for k in ("best_epoch", "best_val_nll", "history")}
    return model


def _bits_per_code(nats_per_grid: float, model) -> float:
    return nats_per_grid / (math.prod(model.grid) * math.log(2))


def _save(directory, net, optimizer, schedule, state, best) -> None:
    # The selected (best) weights travel beside the current ones, under "best." names.
    tensors_owner = _StateHolder({**{f"net.{k}": v for k, v in net.state_dict().items()},
                                  **{f"best.{k}": v for k, v in best.items()}})
    save_checkpoint(directory, model=tensors_owner, optimizers={"model": optimizer},
                    rng={"torch": torch.get_rng_state()},
                    state={**state, "global_step": int(schedule.last_epoch),
                           "schedulers": {"model": schedule.state_dict()}})


class _StateHolder(torch.nn.Module):
    """A module whose state dict is the given tensors (the checkpoint writer takes a module)."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        self._tensors = tensors

    def state_dict(self, *args, **kwargs):  # noqa: D102 - the tensors as given
        return dict(self._tensors)


def _resume(directory, net, optimizer, schedule, settings, say):
    checkpoint = load_checkpoint(directory)
    state = checkpoint.state
    if state.get("settings") != settings:
        changed = sorted(k for k in settings if state.get("settings", {}).get(k) != settings[k])
        raise CheckpointError(f"{checkpoint.path} was written by a code-prior fit with another recipe (changed: "
                              f"{', '.join(changed)}); use another folder, or the same settings to continue it")
    net.load_state_dict({k[4:]: v for k, v in checkpoint.model.items() if k.startswith("net.")})
    best = {k[5:]: v for k, v in checkpoint.model.items() if k.startswith("best.")}
    optimizer.load_state_dict(checkpoint.optimizers["model"])
    schedule.load_state_dict(state.pop("schedulers")["model"])
    torch.set_rng_state(checkpoint.rng["torch"])
    state.pop("global_step", None)
    state.pop("format", None)
    say(f"resumed the code prior from {checkpoint.path} after epoch {state['epoch']}")
    return state, best  # freshly read tensors: nothing shares them


def _printer(progress) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda text: print(text, file=sys.stderr, flush=True)
    return lambda text: None
