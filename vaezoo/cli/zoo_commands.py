"""``vaezoo list``, ``vaezoo info NAME`` and ``vaezoo parts [KIND]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ..catalog import KINDS, describe_parts, format_parts
from ..config import parse_set_args
from ..durations import format_duration
from ..errors import UsageError
from ..factory import build_model
from ..hub.index import get_entry
from ..hub.local import build_from_checkpoint
from ..hub.remote import HF_PREFIX, pull, weights_source
from ..layout.files import CONFIG_NAME, read_config, training_in_progress
from ..models import FAMILIES
from ..schemas import PartSpec
from ..training.status import read_run_status
from ..zoo import MODELS, get_config, is_pretrained, list_models, model_family

__all__ = ["add_commands"]


def _cmd_list(args: argparse.Namespace) -> int:
    if args.families:
        for part in describe_parts("family"):  # the summary `vaezoo parts family` gives, as plain text
            print(f"{part.name:<12} {part.summary}")
        return 0
    families = args.family or None
    if families:
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            print(f"error: {FAMILIES.unknown_message(unknown[0])}", file=sys.stderr)
            return 2
    names = list_models(args.filter or "*", exclude=args.exclude, pretrained=args.pretrained, family=families)
    if not names:
        print("no models match", file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {model_family(name)}" if args.long else name)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    folder = Path(args.name).expanduser()
    if args.name.startswith(HF_PREFIX) or (folder / CONFIG_NAME).is_file():
        return _checkpoint_info(args)
    if training_in_progress(folder):
        _print_rows(read_run_status(folder).rows())
        return 0
    overrides = parse_set_args(args.set)
    if is_pretrained(args.name) and args.name not in MODELS:  # a published run of another seed, say
        if args.set or args.resolved:
            raise UsageError(f"{'--set' if args.set else '--resolved'} is for a zoo config; {args.name} is a "
                             f"published model of config {get_entry(args.name).config}")
        entry = get_entry(args.name)
        rows = [("name", args.name), ("description", entry.description or "-"),
                *_architecture_rows(entry.model, entry.num_params),
                ("dataset", entry.recipe.data.dataset.label), ("recipe", _recipe(entry.recipe.trainer)),
                ("config", f"{entry.config} (seed {entry.recipe.trainer.seed})"),
                ("pretrained", _pretrained_summary(args.name, {}))]
        _print_rows(rows)
        return 0
    experiment = get_config(args.name, overrides)
    if args.resolved:  # every field, defaults included: a YAML that `vaezoo train` takes as it is
        print(f"# {args.name}{''.join(f' --set {item}' for item in args.set)}, validated, with every default")
        print(yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False, default_flow_style=None), end="")
        return 0
    model = build_model(experiment.model, source=experiment.name or args.name)
    rows = [("name", experiment.name or args.name), ("description", experiment.description or "-"),
            *_architecture_rows(experiment.model, model.num_parameters()),
            ("dataset", experiment.data.dataset.label), ("recipe", _recipe(experiment.trainer)),
            ("pretrained", _pretrained_summary(experiment.name or "", overrides))]
    _print_rows(rows)
    return 0


def _checkpoint_info(args: argparse.Namespace) -> int:
    """A run folder or a Hub repo: what its config.json records (only that file is downloaded)."""
    if args.set or args.resolved:
        flag = "--set" if args.set else "--resolved"
        raise UsageError(f"{flag} is for a zoo config or a YAML file; {args.name} is a trained checkpoint, whose "
                         f"config.json holds its resolved config already")
    folder = Path(args.name).expanduser() if not args.name.startswith(HF_PREFIX) else pull(args.name, files=[CONFIG_NAME])
    saved = read_config(folder / CONFIG_NAME)
    model = build_from_checkpoint(saved, args.name)
    trained = saved.training or {}
    rows = [("name", saved.name or args.name), *_architecture_rows(saved.model, model.num_parameters()),
            ("dataset", saved.data.dataset.label if saved.data is not None else "-"),
            ("recipe", _recipe(saved.trainer) if saved.trainer is not None else "-"),
            ("trained", _training_summary(trained)),
            ("scores", ", ".join(f"{name} {record['value']:.3f}" for name, record in (saved.metrics or {}).items()
                                 if isinstance(record, dict) and "value" in record) or "-"),
            ("load with", f"vaezoo.load({args.name!r})")]
    _print_rows(rows)
    return 0


def _architecture_rows(m, num_parameters: int) -> list[tuple[str, str]]:
    return [("family", m.family), ("input shape", " x ".join(map(str, m.input_shape))), ("latent", m.latent_summary()),
            *[(field.replace("_", " "), spec.label) for field, spec in m if isinstance(spec, PartSpec)],
            ("parameters", f"{num_parameters:,}")]


def _recipe(t) -> str:
    return f"{t.epochs} epochs, batch {t.batch_size}, {t.optimizer_summary()}"


def _training_summary(trained: dict) -> str:
    if not trained.get("epochs"):
        return "-"
    words = [f"{trained['epochs']} epochs"]
    if trained.get("wall_time_s") is not None:
        words.append(f"in {format_duration(trained['wall_time_s'])}")
    if trained.get("device"):
        words.append(f"on {trained['device']}")
    if trained.get("selected_epoch"):
        words.append(f"(weights of epoch {trained['selected_epoch']}, selected on validation)")
    return " ".join(words)


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def _pretrained_summary(name: str, overrides: dict) -> str:
    """'no', or the published weights' metrics with their protocol, from the registry entry."""
    if not is_pretrained(name):
        return "no"
    entry = get_entry(name)
    if get_config(entry.config, overrides).model != entry.model.as_trained():
        changed = ", ".join(k for k in overrides if k.startswith("model."))
        return f"no: the override of {changed} changes the architecture; {name}'s published weights do not apply"
    parts = []
    for metric in entry.metrics:
        if metric.unit != "nats":
            continue
        p = metric.protocol
        samples = f"k={p.importance_samples}" if (p.importance_samples or 1) > 1 else f"S={p.mc_samples or 1}"
        parts.append(f"{metric.name} {metric.value:.2f} nats ({p.split}, {p.num_examples:,} images, {samples})")
    where = f"hf-hub:{entry.weights.repo_id}" + (f"@{entry.weights.revision[:12]}" if entry.weights.revision else "")
    return f"yes, {entry.training.epochs} epochs; " + "; ".join(parts) + f"; {where}; {weights_source(entry)}"


def _cmd_parts(args: argparse.Namespace) -> int:
    print(format_parts(describe_parts(args.kind)))
    return 0


def add_commands(commands) -> None:
    p = commands.add_parser(
        "list", help="list model names (or the model families)",
        description="List the zoo's model names, filtered by fnmatch patterns, family and published weights. "
                    "\n\nExample:\n  vaezoo list 'fashion-*' --family hvae --pretrained",
    )
    p.add_argument("filter", nargs="*", help="fnmatch patterns, e.g. 'fashion-*'")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN", help="leave these out")
    p.add_argument("--pretrained", action="store_true", help="only models with published weights")
    p.add_argument("--family", action="append", metavar="FAMILY", help="only models of this family (repeatable)")
    p.add_argument("-l", "--long", action="store_true", help="show each model's family")
    p.add_argument("--families", action="store_true", help="list the model families instead")
    p.set_defaults(func=_cmd_list)

    p = commands.add_parser(
        "info", help="summary of a model: family, parts, parameter count, weights",
        description="Show a model's family, parts, parameter count, recipe and published metrics. "
                    "A run folder or a Hub repo shows what its config.json records (only that file is downloaded); "
                    "a run whose training has not ended shows where it stands: its epoch, its validation, whether a "
                    "process trains it now, and the time left."
                    "\n\nExamples:\n  vaezoo info fashion-conv64 --set model.latent_dim=32\n  vaezoo info runs/my-run\n"
                    "  vaezoo info configs/fashion-conv64.yaml --resolved > my.yaml\n"
                    "  vaezoo info hf-hub:alice/my-vae@v1",
    )
    p.add_argument("name", help="a model name, a YAML config path, a run folder or hf-hub:org/repo[@rev]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--resolved", action="store_true",
                   help="print the validated config with every default, as YAML that vaezoo train takes")
    p.set_defaults(func=_cmd_info)

    p = commands.add_parser(
        "parts", help="list the registered model families and parts with their arguments",
        description="List every registered model family, backbone, prior, likelihood, objective and dataset with "
                    "its arguments, types and defaults (plugins and --import-ed modules included).\n\n"
                    "Examples:\n  vaezoo parts encoder\n  vaezoo parts --import my_parts.py encoder",
    )
    p.add_argument("kind", nargs="?", choices=list(KINDS), help="only this kind")
    p.set_defaults(func=_cmd_parts)
