"""``vaezoo eval``, ``sample``, ``reconstruct``, ``traverse``, ``interpolate`` and ``embed``.

Every command takes a model reference that ``vaezoo.load`` understands (a pretrained name,
``hf-hub:org/repo[@rev]`` or a local folder). Commands that need images read the test split
of the dataset the model was trained on (from its ``config.json``, or its zoo config), else
Fashion-MNIST; ``--data ROOT`` points at the dataset's files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Optional

import torch

from ..devices import resolve_device
from ..errors import UsageError
from ..evaluation import evaluate
from ..evaluation.data import SPLITS, resolve_data
from ..data.factors import FACTOR_DATASETS
from ..evaluation.disentanglement import evaluate_disentanglement, factor_data, factor_of_each_code
from ..evaluation.probe import linear_probe
from ..evaluation.quality import GMM_COMPONENTS, LEARNED_PRIORS, PRIORS, sample_quality, with_gmm_prior, with_learned_prior
from ..evaluation.report import EvalReport
from ..evaluation.shards import merge_shards
from ..fastpath import PRECISIONS
from ..features import FEATURES
from ..hub import load
from ..layout.checkpoint import atomic_write_bytes
from ..layout.files import CONFIG_NAME, training_in_progress
from ..layout.lock import writing_into
from ..models.base import CodeLatents, PointLatents
from ..parts.metrics import metrics_of
from ..schemas import DataConfig
from ..training.peek import BestSoFar, best_model_so_far
from ..viz.images import (
    class_grid, interpolation_grid, labelled_grid, labelled_panels, latent_map, rank_dims_by_kl, reconstruction_grid,
    resolve_level,
    sample_grid, traversal_grid,
)
from ..hub.index import get_entry
from ..zoo import MODELS, get_config, pretrained_names
from .arguments import at_least, device_name, image_file, metric_names, positive_float

__all__ = ["add_commands", "parse_dims", "data_config"]


# ------------------------------------------------------------------------------ helpers


def parse_dims(text: str) -> list[int]:
    """``"0-7"``, ``"0,3,5"`` or ``"0-3,8"`` -> a list of latent dimensions."""
    dims: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                dims.extend(range(lo, hi + 1))
            elif part:
                dims.append(int(part))
    except ValueError:
        raise UsageError(f"--dims: expected dimensions like 0-7 or 0,3,5, got {text!r}") from None
    if not dims:
        raise UsageError(f"--dims: no dimensions in {text!r}")
    return dims


def _device(name: str) -> torch.device:
    return resolve_device(name, what="--device")


def _load(args: argparse.Namespace):
    return load(args.ref).to(_device(args.device)).eval()


def data_config(args: argparse.Namespace, trained_on: DataConfig | None = None) -> DataConfig:
    """The data the model was trained on (``trained_on`` where the caller knows it): its checkpoint's
    ``data`` section, else its published recipe's (a pretrained name), else its zoo config's, else
    Fashion-MNIST; ``--dataset`` and ``--binarize`` override."""
    config: DataConfig | None = trained_on
    folder = Path(args.ref).expanduser()
    if config is None and (folder / CONFIG_NAME).is_file():
        try:
            saved = json.loads((folder / CONFIG_NAME).read_text()).get("data")
            config = DataConfig.model_validate(saved) if saved else None
        except (ValueError, OSError):
            config = None  # an unreadable data section: fall back, the model itself loaded fine
    if config is None and args.ref in pretrained_names():
        config = get_entry(args.ref).recipe.data  # a second seed of a config has a name of its own
    if config is None:
        if args.ref in MODELS:
            config = get_config(args.ref).data
    config = config or DataConfig()
    update = {}
    if getattr(args, "dataset", None):
        update["dataset"] = args.dataset
    if getattr(args, "binarize", None):
        update["binarize"] = args.binarize
    if update:
        config = DataConfig.model_validate({**config.model_dump(), **update})
    return config


def _test_data(args: argparse.Namespace, model, limit: int | None = None, config: DataConfig | None = None):
    data = resolve_data(config or data_config(args), limit=limit, root=args.data, expected_shape=tuple(model.input_shape))
    if tuple(data.images.shape[1:]) != tuple(model.input_shape):
        raise UsageError(f"the model takes images of shape {list(model.input_shape)} but the test images are "
                         f"{list(data.images.shape[1:])}; pick the right dataset with --dataset")
    if model.conditional and data.labels is None:
        raise UsageError(f"the '{model.family}' family is conditional and the test images have no labels")
    return data


def _saved(path: str | Path, what: str) -> int:
    print(f"wrote {what} to {path}")
    return 0


# ------------------------------------------------------------------------------ commands


def _check_quality_flags(args: argparse.Namespace) -> None:
    if not args.fid:
        given = [flag for flag, value in (("--prior", args.prior), ("--features", args.features),
                                          ("--fid-samples", args.fid_samples)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} choose how --fid measures samples; add --fid")
    if args.disentanglement and (args.fid or args.probe):
        raise UsageError("--disentanglement scores a factor dataset; --fid and --probe score the test images: "
                         "run them apart")
    if args.disentanglement and (args.limit or args.start or args.refine_steps or args.metrics is not None):
        raise UsageError("--limit, --start, --refine-steps and --metrics shape the bounds; --disentanglement draws "
                         "its own points from the whole factor grid")
    if (args.fid or args.probe or args.disentanglement) and args.split != "test":
        raise UsageError("--split chooses the images the bounds score; --fid and --probe compare with the test "
                         "images and --disentanglement draws from a factor grid: drop --split")
    if (args.fid or args.probe) and args.metrics is not None:
        raise UsageError("--metrics adds per-image metrics to the bounds; --fid and --probe measure their own")
    if (args.fid or args.probe) and (args.limit or args.start or args.refine_steps):
        raise UsageError("--limit, --start and --refine-steps shape the bounds; --fid and --probe always use the "
                         "whole test split (drop them, or score the bounds in a run of their own)")


def _quality_report(args: argparse.Namespace, model, config: DataConfig) -> EvalReport:
    parts = []
    batch_size = args.batch_size or 500
    if args.fid:
        prior = args.prior or "model"
        parts.append(sample_quality(
            model, config, samples=args.fid_samples or 10000, prior=prior, features=args.features,
            reconstructions=prior == "model", seed=args.seed, batch_size=batch_size, root=args.data,
            model_name=args.ref, progress=not args.quiet))
    if args.probe:
        parts.append(linear_probe(model, config, root=args.data, batch_size=batch_size, model_name=args.ref,
                                  progress=not args.quiet))
    report = parts[0]
    for other in parts[1:]:  # one report: the probe's protocol keys are its own
        report.protocol.update({k: v for k, v in other.protocol.items() if k not in report.protocol})
        report.metrics.update(other.metrics)
        report.timing = {k: report.timing.get(k, 0.0) + other.timing.get(k, 0.0)
                         for k in {*report.timing, *other.timing}}
    return report


def _cmd_eval(args: argparse.Namespace) -> int:
    _check_quality_flags(args)
    target = Path(args.output) if args.output else None
    if target is not None:  # as the picture commands do: the folder is made
        target.parent.mkdir(parents=True, exist_ok=True)
    # a report written into a training's run folder waits for no training: held from the start, not found at the end
    with writing_into(target.parent, "vaezoo eval") if target is not None else contextlib.nullcontext():
        report = _report(args)
        if target is not None:  # whole or not at all: a crash leaves no torn JSON for publish to read
            atomic_write_bytes(target, (report.to_json() + "\n").encode())
    print(report.to_json() if args.json else report.format_table())
    return 0


def _best_so_far(args: argparse.Namespace) -> Optional[BestSoFar]:
    """The best epoch so far of a run folder whose training has not ended (no config.json yet), else None."""
    folder = Path(args.ref).expanduser()
    if not training_in_progress(folder):
        return None
    best = best_model_so_far(folder)
    return best._replace(model=best.model.to(_device(args.device)).eval())


def _report(args: argparse.Namespace) -> EvalReport:
    best, name = _best_so_far(args), args.ref
    if best is not None:
        if args.split == "test":  # --fid, --probe and --disentanglement included: they take no --split
            raise UsageError(f"{args.ref} is a training that has not ended: the test set scores it once, when it "
                             f"ends. Its best epoch so far is scored on the validation images: vaezoo eval {args.ref} "
                             f"--split val")
        name = f"{args.ref}, epoch {best.epoch} (the best so far of a training that has not ended)"
    model = best.model if best is not None else _load(args)
    config = data_config(args, best and best.data)
    if args.disentanglement:
        return evaluate_disentanglement(model, config, root=args.data, model_name=args.ref, progress=not args.quiet)
    if args.fid or args.probe:
        return _quality_report(args, model, config)
    bounded = not isinstance(model, (CodeLatents, PointLatents))
    if args.iw_samples and args.limit is None and not args.quiet and bounded:
        protocol = " (the published protocol)" if args.split == "test" else ""
        print(f"scoring every {args.split} image with k={args.iw_samples} importance samples{protocol}: "
              f"hours on a CPU for big models; --limit N scores the first N images, --iw-samples 0 skips the NLL",
              file=sys.stderr, flush=True)
    return evaluate(
        model, config, iw_samples=args.iw_samples, elbo_samples=args.elbo_samples,
        batch_size=args.batch_size or 64, chunk_size=args.chunk_size, precision=args.precision, refine_steps=args.refine_steps,
        refine_lr=args.refine_lr, seed=args.seed, limit=args.limit, root=args.data, model_name=name,
        progress=not args.quiet, start=args.start, metrics=args.metrics, split=args.split,
    )


def _cmd_merge_evals(args: argparse.Namespace) -> int:
    shards = []
    for path in args.shards:
        try:
            shards.append(EvalReport.from_dict(json.loads(Path(path).read_text())))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(f"{path} is not a report of vaezoo eval -o: {error}") from error
    report, left_out = merge_shards(shards)
    target = Path(args.output)
    target.parent.mkdir(parents=True, exist_ok=True)
    with writing_into(target.parent, "vaezoo merge-evals"):
        atomic_write_bytes(target, (report.to_json() + "\n").encode())
    print(report.format_table())
    if left_out:
        print(f"left out (not means over examples, so no shard merges them): {', '.join(left_out)}; "
              f"measure them on the whole set", file=sys.stderr)
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    best = _best_so_far(args)
    if best is not None:
        print(f"{args.ref} is a training that has not ended: sampling its best epoch so far, {best.epoch}",
              file=sys.stderr)
    model = best.model if best is not None else _load(args)
    if args.prior != "model":  # refuses a conditional model: its prior p(z|y) is given the class
        return _sample_with_fitted_prior(args, model, best and best.data)
    if args.class_ is not None:
        if not model.conditional:
            raise UsageError(f"--class needs a conditional model; the '{model.family}' family is not")
        if not 0 <= args.class_ < model.config.num_classes:
            raise UsageError(f"--class {args.class_} is out of range: the model has classes "
                             f"0-{model.config.num_classes - 1}")
        with_class = dict(classes=[args.class_], seed=args.seed, mean=not args.draw, path=args.output, nrow=args.nrow)
        class_grid(model, args.n, **with_class)
        return _saved(args.output, f"{args.n} samples of class {args.class_}")
    if model.conditional:
        per_class = max(1, args.n // model.config.num_classes)
        class_grid(model, per_class, seed=args.seed, mean=not args.draw, path=args.output)
        return _saved(args.output, f"{per_class} samples of each of the {model.config.num_classes} classes, "
                                   f"one row per class (class 0 on top)")
    sample_grid(model, args.n, nrow=args.nrow, seed=args.seed, mean=not args.draw, path=args.output)
    return _saved(args.output, f"{args.n} prior samples")


def _sample_with_fitted_prior(args: argparse.Namespace, model, trained_on: Optional[DataConfig]) -> int:
    """Samples from a Gaussian mixture fitted on the training images' posterior means, or from a
    prior learned on their codes (two-stage, maf, iaf); with ``--prior both``, the mixture's beside
    the training prior's samples from the same seed."""
    config = data_config(args, trained_on)
    nrow = args.nrow or math.ceil(math.sqrt(args.n))
    grid = dict(nrow=nrow, seed=args.seed, mean=not args.draw)
    if args.prior in LEARNED_PRIORS:
        fitted = with_learned_prior(model, args.prior, config, root=args.data, seed=args.seed,
                                    progress=True)
        sample_grid(fitted, args.n, path=args.output, **grid)
        return _saved(args.output, f"{args.n} samples from a {args.prior} prior learned on the training images' codes")
    fitted = with_gmm_prior(model, config, root=args.data, seed=args.seed, progress=True)
    if args.prior == "gmm":
        sample_grid(fitted, args.n, path=args.output, **grid)
        return _saved(args.output, f"{args.n} samples from a {GMM_COMPONENTS}-component mixture fitted on the "
                                   f"training images' posterior means")
    labelled_panels({"training prior": sample_grid(model, args.n, **grid),
                     f"fitted {GMM_COMPONENTS}-component GMM prior": sample_grid(fitted, args.n, **grid)},
                    args.output, title=f"{args.ref}: {args.n} samples (seed {args.seed}) from each prior")
    return _saved(args.output, f"{args.n} samples from the training prior beside {args.n} from the fitted mixture")


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    model = _load(args)
    data = _test_data(args, model, limit=args.n)
    grid = reconstruction_grid(model, data.images, data.labels, pairs_per_row=args.pairs_per_row)
    pairs = min(args.pairs_per_row, data.images.shape[0])
    labelled_grid(grid, tuple(model.input_shape[-2:]), args.output, column_labels=["input", "recon"] * pairs,
                  title=f"{args.ref}: test images beside their reconstructions (decoder mean at the posterior mean)")
    return _saved(args.output, f"{data.images.shape[0]} test images beside their reconstructions")


def _cmd_traverse(args: argparse.Namespace) -> int:
    model = _load(args)
    level = resolve_level(model, args.level)
    size = model.level_dims()[level]
    config = data_config(args)
    data = _test_data(args, model, limit=max(args.index + 1, args.reference), config=config)
    if not 0 <= args.index < data.images.shape[0]:
        raise UsageError(f"--index {args.index} is out of range")
    labels = data.labels
    order, kl = rank_dims_by_kl(model, data.images[: args.reference],
                                None if labels is None else labels[: args.reference], level=level)
    if args.dims:
        dims = parse_dims(args.dims)
        bad = [d for d in dims if d >= size]
        if bad:
            shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
            raise UsageError(f"--dims: {shown} out of range for the {size}-d level {level} (dims 0-{size - 1})")
        rank = {d: i for i, d in enumerate(order)}
        dims = sorted(dims, key=rank.__getitem__)
    else:
        dims = order[: args.top]
    lo, hi = args.range
    values = torch.linspace(lo, hi, args.steps)
    label = None if labels is None else labels[args.index: args.index + 1]
    grid = traversal_grid(model, data.images[args.index], label, level=level, dims=dims, values=values,
                          order_by_kl=False, offset=args.offset, with_input=True)
    references = min(args.reference, data.images.shape[0])
    carried = {d: "" for d in dims}
    if config.dataset.name in FACTOR_DATASETS and len(model.level_dims()) == 1:
        # a model of a factor dataset: each row also says which factor its dimension carries
        factors = factor_of_each_code(model, factor_data(config, args.data)[0])
        carried = {d: f" {factors[d][0]} {factors[d][1]:.2f}" for d in dims}
        print("each row's factor: the one its dimension tells most about, I(z_d; factor) / H(factor) on the "
              "factor grid (10,000 points, 20 bins)")
    rows = [f"{level}[{d}] KL {float(kl[d]):.2f}" + (f":{carried[d]}" if carried[d] else "") for d in dims]
    labelled_grid(grid, tuple(model.input_shape[-2:]), args.output,
                  row_labels=["input, recon", *rows],
                  column_labels=[f"{v:+.2g}" if args.offset else f"{v:.2g}" for v in values.tolist()],
                  title=f"{args.ref}: test image {args.index}, {level} dims by mean KL (nats, {references} test images)"
                        + (", values added to the posterior mean" if args.offset else ""))
    print(f"rows (level {level}, latent dim: mean KL in nats over {references} test images): "
          + ", ".join(f"{d}: {float(kl[d]):.2f}{carried[d]}" for d in dims))
    return _saved(args.output, f"traversals of {len(dims)} latent dimensions of {level} over [{lo:g}, {hi:g}], "
                               f"below the input and its reconstruction")


def _cmd_interpolate(args: argparse.Namespace) -> int:
    model = _load(args)
    data = _test_data(args, model, limit=2 * args.pairs)
    if data.images.shape[0] < 2 * args.pairs:
        raise UsageError(f"need {2 * args.pairs} test images for {args.pairs} pairs, found {data.images.shape[0]}")
    x, y = data.images, data.labels
    y_a = None if y is None else y[0::2][: args.pairs]
    y_b = None if y is None else y[1::2][: args.pairs]
    interpolation_grid(model, x[0::2][: args.pairs], x[1::2][: args.pairs], y_a, y_b, steps=args.steps,
                       path=args.output)
    return _saved(args.output, f"{args.pairs} interpolations of {args.steps} steps")


def _cmd_embed(args: argparse.Namespace) -> int:
    model = _load(args)
    level = resolve_level(model, args.level)
    data = _test_data(args, model, limit=args.limit)
    latent_map(model, data.images, data.labels, data.classes or None, level=level,
               title=f"{args.ref}: test posterior means of {level} ({data.images.shape[0]:,} images), PCA",
               path=args.output)
    return _saved(args.output, f"a PCA map of {data.images.shape[0]:,} test latents ({level})")


# ------------------------------------------------------------------------------ parsers


def _common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("ref", metavar="NAME|DIR", help="a pretrained name, hf-hub:org/repo[@rev] or a checkpoint folder")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    if data:
        p.add_argument("--data", metavar="ROOT", help="folder holding the dataset's files")
        p.add_argument("--dataset", help="dataset name (default: the one the model was trained on)")


def add_commands(commands) -> None:
    p = commands.add_parser(
        "eval", help="test-set -ELBO, importance-weighted NLL, bits/dim, active units; --fid, --probe",
        description="Score a model on the test split of the dataset it was trained on: -ELBO, the importance-weighted "
                    "NLL, bits/dim, each latent level's KL and active units, with the protocol that measured them. "
                    "Costly: k=5000 on all 10,000 Fashion-MNIST test images takes hours on a CPU; progress shows the "
                    "rate and an ETA. --fid scores samples instead (Fréchet and kernel distances, precision, recall, "
                    "density, coverage and class coverage in a feature network's space; fd-fashion-v1 does not compare "
                    "with Inception FID), --probe the linear-probe accuracy of the posterior means. --split val scores the "
                    "validation images that training held out instead of the test images (of a run still training: "
                    "its best epoch so far): compare checkpoints and recipes there, and score the test set once."
                    "\n\nExamples:\n  vaezoo eval fashion-conv64 --iw-samples 0 --elbo-samples 10\n"
                    "  vaezoo eval runs/my-model --split val --limit 500 -o val-iwae.json\n"
                    "  vaezoo eval fashion-vamp40 --iw-samples 5000 --limit 100 -o iwae.json\n"
                    "  vaezoo eval fashion-vamp40 --fid --prior gmm\n"
                    "  vaezoo eval fashion-vamp40 --probe\n"
                    "  vaezoo eval runs/my-model --fid --features inception\n"
                    "  vaezoo eval runs/shapes --disentanglement",
    )
    _common(p)
    p.add_argument("--iw-samples", type=at_least(0), default=5000, metavar="K",
                   help="importance samples for the NLL estimate; 0 skips it (default 5000)")
    p.add_argument("--elbo-samples", type=at_least(1), default=10, metavar="S", help="z draws per image for the ELBO (default 10)")
    p.add_argument("--refine-steps", type=at_least(0), default=0, metavar="N",
                   help="per-example posterior refinement steps; adds the amortization gap (default 0)")
    p.add_argument("--refine-lr", type=positive_float, default=0.05, help="Adam learning rate of the refinement (default 0.05)")
    p.add_argument("--split", choices=list(SPLITS), default="test",
                   help="the images to score: test, the validation images the recipe held out (data.val_size of the "
                        "training set, the same for every run), or the rest of the training set (default test)")
    p.add_argument("--limit", type=at_least(1), metavar="N", help="evaluate the first N images of the split only")
    p.add_argument("--start", type=at_least(0), default=0, metavar="I",
                   help="skip the first I images of the split: with --limit, a shard; shards give one run's numbers")
    p.add_argument("--batch-size", type=at_least(1), help="images per batch (default 64; 500 with --fid or --probe)")
    p.add_argument("--chunk-size", type=at_least(1), help="importance samples decoded per image at once (default: timed on "
                   "this machine for a long job, once per model, cached; else 2048 / batch, 128 / batch for conv "
                   "decoders on a CPU)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the decoder's arithmetic for the NLL: auto (bf16 for conv decoders on CPUs with native bf16, "
                        "within 0.02 nats of float32; else float32), float32 or bfloat16 (default auto)")
    p.add_argument("--binarize", choices=["none", "static", "dynamic"], help="override the data's binarization")
    p.add_argument("--metrics", type=metric_names, metavar="NAMES",
                   help=f"the per-image metrics to add, comma-separated, or none (default: every one the model "
                        f"meets the needs of: {', '.join(m.name for m in metrics_of('images'))})")
    quality = p.add_argument_group("sample quality and representations (instead of the bounds)")
    quality.add_argument("--fid", action="store_true",
                         help="FD, KID, precision, recall, density, coverage and class coverage of generated samples "
                              "against the test images, and the FD of the test reconstructions")
    quality.add_argument("--prior", choices=list(PRIORS),
                         help="with --fid: sample the training prior (model, the default), a 10-component Gaussian "
                              "mixture fitted on the training images' posterior means (gmm), a second-stage VAE "
                              "trained on their codes (two-stage, Dai & Wipf 2019) or an autoregressive flow fitted "
                              "on them (maf, iaf); the last three take minutes on a CPU")
    quality.add_argument("--features", metavar="NAME",
                         help=f"with --fid: the feature network, one of {', '.join(FEATURES.names())} (default: the "
                              f"one made for the dataset, fashion-v1 for Fashion-MNIST, else inception)")
    quality.add_argument("--fid-samples", type=at_least(1), metavar="N", help="with --fid: samples drawn (default 10000)")
    quality.add_argument("--probe", action="store_true",
                         help="test accuracy of a logistic regression on the training images' posterior means")
    quality.add_argument("--disentanglement", action="store_true",
                         help="MIG, modularity, FactorVAE and BetaVAE scores and the codes' total correlation, on "
                              "the factor dataset the model was trained on (shapes2d, color-squares)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the JSON report to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_eval)

    p = commands.add_parser(
        "sample", help="a grid of images decoded from prior samples",
        description="Draw z from the prior and save the decoder means as a PNG grid (a conditional model: one row "
                    "per class, or --class Y).\n\nExamples:\n  vaezoo sample fashion-conv64 -n 64 -o samples.png\n"
                    "  vaezoo sample fashion-cvae --class 3 -n 16 -o dresses.png\n"
                    "  vaezoo sample fashion-vamp40 --prior both -n 32 -o priors.png",
    )
    _common(p, data=False)
    p.add_argument("-n", type=at_least(1), default=64, help="number of samples (default 64)")
    p.add_argument("--nrow", type=at_least(1), help="images per row (default: square)")
    p.add_argument("--draw", action="store_true", help="sample x ~ p(x|z) instead of showing its mean")
    p.add_argument("--class", dest="class_", type=at_least(0), metavar="Y",
                   help="a conditional model: n samples of this class (default: one row per class)")
    p.add_argument("--prior", choices=[*PRIORS, "both"], default="model",
                   help="sample the training prior (model, the default), a Gaussian mixture fitted on the training "
                        "images' posterior means (gmm), a second-stage VAE trained on their codes (two-stage), an "
                        "autoregressive flow fitted on them (maf, iaf), or show the training prior's and the "
                        "mixture's side by side (both)")
    p.add_argument("--data", metavar="ROOT", help="with a fitted prior: folder holding the training images")
    p.add_argument("-o", "--output", default="samples.png", type=image_file, help="PNG path (default samples.png)")
    p.set_defaults(func=_cmd_sample)

    p = commands.add_parser(
        "reconstruct", help="test images beside their reconstructions",
        description="Save test images, each beside the decoder mean at its posterior mean.\n\n"
                    "Example:\n  vaezoo reconstruct fashion-conv64 -n 32 -o recon.png",
    )
    _common(p)
    p.add_argument("-n", type=at_least(1), default=32, help="number of test images (default 32)")
    p.add_argument("--pairs-per-row", type=at_least(1), default=8, help="input/reconstruction pairs per row (default 8)")
    p.add_argument("-o", "--output", default="recon.png", type=image_file, help="PNG path (default recon.png)")
    p.set_defaults(func=_cmd_reconstruct)

    p = commands.add_parser(
        "merge-evals", help="one report from the shards of an eval (--start I --limit N)",
        description="Merge the reports of `vaezoo eval --start I --limit N -o FILE` over consecutive ranges of the "
                    "test set into the report of one run over their union: the noise is keyed by each image's index, "
                    "so the means and standard errors are the whole run's. A long scoring so lands on disk piece by "
                    "piece.\n\nExample:\n  vaezoo eval runs/m --iw-samples 5000 --limit 5000 -o a.json\n"
                    "  vaezoo eval runs/m --iw-samples 5000 --start 5000 -o b.json\n"
                    "  vaezoo merge-evals a.json b.json -o iwae.json",
    )
    p.add_argument("shards", nargs="+", help="the shards' report files (vaezoo eval -o)")
    p.add_argument("-o", "--output", required=True, help="the merged report (JSON)")
    p.set_defaults(func=_cmd_merge_evals)

    p = commands.add_parser(
        "traverse", help="latent traversals of a test image, most informative dims first",
        description="Sweep latent dimensions of one test image (of one level of a hierarchy), one row per "
                    "dimension, ranked by their KL.\n\nExamples:\n  vaezoo traverse fashion-conv64 --top 8 -o t.png\n"
                    "  vaezoo traverse fashion-hvae40-ema --level z2 -o z2.png",
    )
    _common(p)
    p.add_argument("--level", help="the latent level of a hierarchy, e.g. z2 (default: the top one)")
    p.add_argument("--dims", help="latent dimensions, e.g. 0-7 or 0,3,5 (default: the --top dims with most KL)")
    p.add_argument("--top", type=at_least(1), default=8, help="without --dims: how many dims, by KL (default 8)")
    p.add_argument("--range", type=float, nargs=2, default=(-3.0, 3.0), metavar=("LO", "HI"),
                   help="values of the swept latent (default -3 3)")
    p.add_argument("--steps", type=at_least(2), default=9, help="values per row (default 9)")
    p.add_argument("--offset", action="store_true", help="add the values to the posterior mean instead of setting them")
    p.add_argument("--index", type=at_least(0), default=0, help="which test image (default 0)")
    p.add_argument("--reference", type=at_least(1), default=1000, help="test images used to rank dims by KL (default 1000)")
    p.add_argument("-o", "--output", default="traverse.png", type=image_file, help="PNG path (default traverse.png)")
    p.set_defaults(func=_cmd_traverse)

    p = commands.add_parser(
        "interpolate", help="latent interpolations between pairs of test images",
        description="Decode points on the line between the posterior means of pairs of test images.\n\n"
                    "Example:\n  vaezoo interpolate fashion-conv64 --pairs 8 --steps 10 -o interp.png",
    )
    _common(p)
    p.add_argument("--pairs", type=at_least(1), default=8, help="number of pairs, one per row (default 8)")
    p.add_argument("--steps", type=at_least(2), default=10, help="decoded points per row (default 10)")
    p.add_argument("-o", "--output", default="interp.png", type=image_file, help="PNG path (default interp.png)")
    p.set_defaults(func=_cmd_interpolate)

    p = commands.add_parser(
        "embed", help="2-D PCA map of test posterior means, coloured by class",
        description="Plot the test images' posterior means (of one level) on their first two principal "
                    "components, coloured by class.\n\nExample:\n  vaezoo embed fashion-vamp40 -o latents.png",
    )
    _common(p)
    p.add_argument("--limit", type=at_least(1), help="first N test images (default: all)")
    p.add_argument("--level", help="the latent level of a hierarchy, e.g. z1 (default: the top one)")
    p.add_argument("-o", "--output", default="latents.png", type=image_file, help="PNG path (default latents.png)")
    p.set_defaults(func=_cmd_embed)
