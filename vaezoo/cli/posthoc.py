"""``vaezoo fit-prior``: a prior fitted after training, saved with the model in one checkpoint.

``--prior pixelcnn`` / ``transformer`` (or any registered code prior) fits a learned prior over
a VQ-VAE's frozen codes; ``--prior gmm`` a Gaussian mixture on a VAE's aggregate posterior,
``two-stage`` a second-stage VAE on its codes, ``maf`` / ``iaf`` an autoregressive flow on them.
All read the training split of the data the model was trained on (the validation split
selects the code prior's epoch) and write the model, now with its prior, to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from ..data.splits import load_splits
from ..devices import resolve_device
from ..errors import UsageError
from ..hub import load
from ..layout.files import CONFIG_NAME, read_config
from ..models.base import CodeLatents
from ..parts.kinds import CODE_PRIORS
from ..posthoc import fit_flow_prior, fit_prior, fit_two_stage
from ..progress import SLOW_PASS_SECONDS, progress_callback
from ..schemas import ExperimentConfig
from ..training.code_prior import STAGE_FOLDER, train_code_prior
from ..layout.lock import check_not_another_model, run_folder_lock
from .arguments import at_least, device_name, positive_float
from .evaluate import data_config

__all__ = ["add_commands"]

LATENT_PRIORS = ("gmm", "two-stage", "maf", "iaf")  # fitted on a VAE's latents by vaezoo.posthoc


def _prior_params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE (a parameter of the prior, e.g. channels=64), got {pair!r}")
        params[key] = yaml.safe_load(value)
    return params


def _cmd_fit_prior(args: argparse.Namespace) -> int:
    source = Path(args.ref).expanduser()
    out = Path(args.out).expanduser() if args.out else (source if (source / CONFIG_NAME).is_file() else None)
    if out is None:
        raise UsageError(f"{args.ref} is not a local run folder: say where the model with its prior goes, --out DIR")
    if args.prior not in LATENT_PRIORS:  # a code prior: a stage the training loop runs, in OUT/code-prior/
        train_code_prior(args.ref, {"name": args.prior, **_prior_params(args.set)}, out=out, data=data_config(args),
                         data_root=args.data, epochs=args.epochs or 30, batch_size=args.batch_size or 128,
                         lr=args.lr or 1e-3, seed=args.seed, device=args.device)
        print(f"wrote {out}: the model with its {args.prior} prior (the stage's run: {out / STAGE_FOLDER}); "
              f"vaezoo sample {out} draws from it")
        return 0
    earlier = read_config(out / CONFIG_NAME) if (out / CONFIG_NAME).is_file() else None
    check_not_another_model(out, source, own_output=earlier is not None and "posthoc_prior" in (earlier.training or {}))
    with run_folder_lock(out, "vaezoo fit-prior"):  # held from the first read to the last write, as a training holds it
        _fit_latent_prior(args, source, out)
    print(f"wrote {out}: the model with its {args.prior} prior; vaezoo sample {out} draws from it")
    return 0


def _fit_latent_prior(args: argparse.Namespace, source: Path, out: Path) -> None:
    started = time.perf_counter()
    model = load(args.ref).to(resolve_device(args.device, what="--device"))
    if isinstance(model, CodeLatents):
        raise UsageError(f"--prior {args.prior} is fitted on Gaussian latents; this model has discrete codes: use "
                         f"a code prior ({', '.join(CODE_PRIORS.names())})")
    splits = load_splits(data_config(args), args.data, expected_shape=tuple(model.input_shape))
    saved = read_config(source / CONFIG_NAME) if (source / CONFIG_NAME).is_file() else None
    training = dict(saved.training or {}) if saved else {}
    if args.prior == "gmm":
        fit_prior(model, splits.train, components=args.components, seed=args.seed,
                  progress=progress_callback(True, "encoding the training images: ", "images", SLOW_PASS_SECONDS))
        record = {"prior": "mog", "components": args.components}
    else:
        steps = {key: value for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                               ("lr", args.lr)) if value is not None}
        report = progress_callback(True, f"fitting the {args.prior} prior: ", "epochs")
        if args.prior == "two-stage":
            fit_two_stage(model, splits.train, seed=args.seed, progress=report, **steps)
        else:
            fit_flow_prior(model, splits.train, args.prior, seed=args.seed, progress=report, **steps)
        record = {"prior": args.prior, **model.config.prior.params, **steps, "seed": args.seed}
    training["posthoc_prior"] = {**record, "wall_time_s": round(time.perf_counter() - started, 1)}
    experiment = None
    if saved is not None and saved.data is not None and saved.trainer is not None:
        experiment = ExperimentConfig(name=saved.name, model=model.config, data=saved.data, trainer=saved.trainer)
    (out / "samples.png").unlink(missing_ok=True)  # drawn again, from the new prior
    model.save_pretrained(out, experiment=experiment, metrics=saved.metrics if saved else None, training=training,
                          samples=64)


def add_commands(commands) -> None:
    p = commands.add_parser(
        "fit-prior", help="fit a prior after training: over a VQ-VAE's codes, or on a VAE's latents",
        description="Fit a prior on a trained model and save the model with it. A VQ-VAE gets a learned prior over its "
                    "frozen codes (--prior pixelcnn or transformer), trained by the training loop on the codes of the "
                    "training split with the epoch selected on the validation split: its run folder is OUT/code-prior/, "
                    "and calling again continues it; any other model a "
                    "Gaussian mixture fitted on its aggregate posterior (--prior gmm), a second-stage VAE trained on "
                    "its codes (--prior two-stage: samples, no density) or an autoregressive flow fitted on them "
                    "(--prior maf or iaf).\n\nExamples:\n"
                    "  vaezoo fit-prior runs/vq --prior pixelcnn\n"
                    "  vaezoo fit-prior runs/vq --prior transformer --set depth=2 --epochs 10 --out runs/vq-tf\n"
                    "  vaezoo fit-prior fashion-vamp40 --prior gmm --components 20 --out runs/vamp-gmm\n"
                    "  vaezoo fit-prior fashion-vae40-ema --prior maf --out runs/vae40-maf",
    )
    p.add_argument("ref", metavar="NAME|DIR", help="a run folder, a pretrained name or hf-hub:org/repo[@rev]")
    p.add_argument("--prior", default="pixelcnn", help="pixelcnn, transformer (or a registered code prior), or gmm, "
                                                        "two-stage, maf, iaf (default pixelcnn)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the code prior, e.g. channels=64 (repeatable)")
    p.add_argument("--out", metavar="DIR", help="where the model with its prior goes (default: the run folder itself)")
    p.add_argument("--epochs", type=at_least(1), help="a learned prior's training epochs (default: code prior 30, "
                                                       "two-stage, maf and iaf 20)")
    p.add_argument("--batch-size", type=at_least(1), help="a learned prior's batch size (default: code prior 128, "
                                                           "the others 100)")
    p.add_argument("--lr", type=positive_float, help="a learned prior's Adam learning rate (default 1e-3)")
    p.add_argument("--components", type=at_least(1), default=10, help="gmm: mixture components (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fit (default 0)")
    p.add_argument("--data", metavar="ROOT", help="folder holding the dataset's files")
    p.add_argument("--dataset", help="dataset name (default: the one the model was trained on)")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, ... (default: cuda if available)")
    p.set_defaults(func=_cmd_fit_prior, interrupted="a code prior's stage (OUT/code-prior/) keeps its last "
                                                    "checkpoint, if one was written: the same command continues it")
