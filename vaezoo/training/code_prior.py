"""The second stage of a VQ-VAE, trained by the shared loop: a learned prior over its codes.

``train_code_prior(source)`` writes a stage run: ``OUT/code-prior/`` is an ordinary run folder
whose model is the first stage with a code prior and the ``code-prior`` objective (the prior
alone is trained, on the codes of the frozen first stage). The loop brings what every run has:
the run folder's lock, crash-safe checkpoints and ``resume`` (calling again continues the
stage), progress with an ETA, the NaN stop, and the selection of the epoch on the validation
split (``trainer.select: best_val``; the test split is scored once, at the end, and never
selects). The first stage the stage starts from is written into the stage folder first, so a
resume never re-reads the source. Then the finished model, the first stage's objective and
config with the selected prior, is written to ``OUT`` under its lock: ``vaezoo.load(OUT)`` samples
from the prior.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, TextIO, Union

import torch
from pydantic import ValidationError

from ..config import describe_errors
from ..errors import ConfigError, HubError, UsageError
from ..factory import build_model
from ..hub import load
from ..hub.index import get_entry
from ..layout.checkpoint import checkpoint_path
from ..layout.files import CONFIG_NAME, read_config
from ..models.base import CodeLatents
from ..schemas import CodePriorSpec, DataConfig, ExperimentConfig, TrainerConfig
from ..zoo import MODELS, get_config
from ..layout.lock import check_not_another_model, run_folder_lock
from .loop import Trainer

__all__ = ["train_code_prior", "STAGE_FOLDER", "FIRST_STAGE_FOLDER"]

STAGE_FOLDER = "code-prior"  # under OUT: the stage's run folder
FIRST_STAGE_FOLDER = "first-stage"  # under the stage folder: the frozen weights it starts from

PriorChoice = Union[str, Mapping[str, Any], CodePriorSpec]


def train_code_prior(
    source: Union[str, Path],
    prior: PriorChoice = "pixelcnn",
    *,
    out: Union[str, Path, None] = None,
    data: Optional[DataConfig] = None,
    data_root: Optional[str] = None,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: Optional[str] = None,
    stream: Optional[TextIO] = None,
    progress: bool = True,
):
    """Train a code prior for the VQ-VAE ``source`` (a run folder, a pretrained name, ``hf-hub:...``)
    and write the model with it to ``out`` (default: ``source``, a run folder); returns the model.

    The recipe: Adam at ``lr``, a cosine decay to 5% over ``epochs``, batches of ``batch_size``
    from the training split of ``data`` (default: the data ``source`` was trained on), ``seed``
    for the shuffling and the prior's initialization. Calling again with the same ``out``
    continues an interrupted stage (Ctrl-C stops it after a checkpoint); another recipe there is
    refused. Progress goes to ``stream`` (stderr by default); ``progress=False`` silences it.
    """
    source_path = Path(source).expanduser()
    local = (source_path / CONFIG_NAME).is_file()
    if out is None and not local:
        raise UsageError(f"{source} is not a local run folder: say where the model with its prior goes (out=)")
    out = Path(out).expanduser() if out is not None else source_path
    spec = _spec(prior)
    saved = read_config(source_path / CONFIG_NAME) if local else None
    check_not_another_model(out, source_path, own_output=(out / STAGE_FOLDER).is_dir())
    with run_folder_lock(out, "vaezoo fit-prior"):  # OUT is written at the end; no other writer may change it meanwhile
        return _train_stage(source, saved, spec, out, data=data, data_root=data_root, epochs=epochs,
                            batch_size=batch_size, lr=lr, seed=seed, device=device, stream=stream, progress=progress)


def _train_stage(source, saved, spec: CodePriorSpec, out: Path, *, data, data_root, epochs, batch_size, lr, seed,
                 device, stream, progress):
    """The stage's run in ``out/code-prior/``, then the model with its prior in ``out`` (whose lock is held)."""
    first_stage = load(source)
    if not isinstance(first_stage, CodeLatents):
        raise UsageError(f"a code prior is for models with discrete codes (the vqvae family); this model's family is "
                         f"'{first_stage.family}' (its post-hoc prior is the Gaussian mixture: vaezoo fit-prior "
                         f"--prior gmm)")
    data = data or _trained_on(source, saved)
    stage_dir = out / STAGE_FOLDER
    starts_from = stage_dir / FIRST_STAGE_FOLDER
    resume = checkpoint_path(stage_dir).is_file()
    first_config = first_stage.config.as_trained()  # the frozen stage: no prior of its own to carry over
    if resume:
        _check_same_first_stage(first_stage, starts_from, source)
    else:
        with run_folder_lock(stage_dir, "vaezoo fit-prior"):
            frozen = build_model(first_config)
            frozen.load_state_dict({k: v for k, v in first_stage.state_dict().items()
                                    if not k.startswith("code_prior.")})
            frozen.save_pretrained(starts_from)
    experiment = ExperimentConfig(
        name=f"{saved.name if saved is not None and saved.name else Path(str(source)).name}-code-prior",
        description=f"the code prior ({spec.name}) of a VQ-VAE, on its frozen codes",
        model=_with(first_config, code_prior=spec.model_dump(mode="json"), objective={"name": "code-prior"}),
        data=data,
        trainer=_stage_recipe(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, starts_from=starts_from),
    )
    trainer = Trainer(experiment, stage_dir, data_root=data_root, device=device,
                      resume=stage_dir if resume else None, stream=stream, progress=progress,
                      continue_with=f"the same fit-prior command (out={out})")
    stage_model, final = trainer.fit()  # the selected epoch's validation scores
    model = build_model(_with(first_config, code_prior=spec.model_dump(mode="json")))
    model.load_state_dict(stage_model.state_dict())
    model.to(next(stage_model.parameters()).device).eval()
    val_nll = final.get("val_kl")  # the code-prior objective's KL term: the prior's NLL of the codes
    record = {"prior": spec.name, "epochs": epochs, "selected_epoch": final.get("selected_epoch"),
              "val_nll_nats_per_grid": None if val_nll is None else round(val_nll, 4),
              "wall_time_s": round(final.get("wall_time_s", 0.0), 1), "run": STAGE_FOLDER}  # over every resume
    training = {**(saved.training or {}), "code_prior": record} if saved is not None else {"code_prior": record}
    experiment_out = None
    if saved is not None and saved.data is not None and saved.trainer is not None:
        experiment_out = ExperimentConfig(name=saved.name, model=model.config, data=saved.data, trainer=saved.trainer)
    (out / "samples.png").unlink(missing_ok=True)  # drawn again, from the prior
    model.save_pretrained(out, experiment=experiment_out, metrics=saved.metrics if saved else None,
                          training=training, samples=64)
    return model


def _with(config, **fields):
    """``config`` with ``fields`` replaced, validated again."""
    return type(config).model_validate({**config.model_dump(mode="json"), **fields})


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


def _trained_on(source: Union[str, Path], saved) -> DataConfig:
    """The data the first stage was trained on: its run folder's, its registry entry's or its zoo config's."""
    if saved is not None and saved.data is not None:
        return saved.data
    name = str(source)
    if name in MODELS:
        try:
            return get_entry(name).recipe.data
        except HubError:  # a zoo name without published weights: its config's data
            return get_config(name).data
    raise UsageError(f"{source} does not say which data it was trained on: pass data= (a DataConfig)")


def _stage_recipe(*, epochs: int, batch_size: int, lr: float, seed: int, starts_from: Path) -> TrainerConfig:
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise UsageError(f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    return TrainerConfig(
        epochs=epochs, batch_size=batch_size, seed=seed, optimizer={"name": "adam", "lr": lr},
        scheduler={"name": "cosine", "min_lr_ratio": 0.05}, init_from=str(starts_from), select="best_val",
        test="end")


def _check_same_first_stage(first_stage, starts_from: Path, source) -> None:
    """A stage continues only over the first stage it began with: a prior fitted on the codes of an
    encoder and codebook that have moved since (a training resumed after fit-prior) would be paired
    with codes it never saw."""
    began = load(starts_from).state_dict()
    now = {k: v for k, v in first_stage.state_dict().items() if not k.startswith("code_prior.")}
    moved = sorted(k for k in began if k not in now or not torch.equal(began[k].to(now[k].dtype), now[k].cpu()))
    if moved:
        raise UsageError(f"the first stage of {source} has changed since the code prior's stage in "
                         f"{starts_from.parent} began ({moved[0]}{' and more' if len(moved) > 1 else ''} moved: "
                         f"a training resumed after fit-prior?): that prior was fitted on other codes. Delete "
                         f"{starts_from.parent} to fit a prior on the codes the model gives now")
