"""``vaezoo list`` and ``vaezoo info NAME``."""

from __future__ import annotations

import argparse
import sys

from ..config import parse_set_args
from ..zoo import build_model, get_config, is_pretrained, list_models


def _cmd_list(args: argparse.Namespace) -> int:
    names = list_models(args.filter or "*", exclude=args.exclude, pretrained=args.pretrained)
    if not names:
        print("no models match", file=sys.stderr)
        return 1
    for name in names:
        print(name)
    return 0


def _part(spec) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
    return f"{spec.name}({params})" if params else spec.name


def _cmd_info(args: argparse.Namespace) -> int:
    experiment = get_config(args.name, parse_set_args(args.set))
    model = build_model(experiment.model, source=experiment.name or args.name)
    m, t = experiment.model, experiment.trainer
    rows = [
        ("name", experiment.name or args.name),
        ("description", experiment.description or "-"),
        ("input shape", " x ".join(map(str, m.input_shape))),
        ("latent dim", m.latent_dim),
        ("encoder", _part(m.encoder)),
        ("decoder", _part(m.decoder)),
        ("prior", _part(m.prior)),
        ("likelihood", _part(m.likelihood)),
        ("objective", _part(m.objective)),
        ("parameters", f"{model.num_parameters():,} (encoder {sum(p.numel() for p in model.encoder.parameters()):,}, "
                       f"decoder {sum(p.numel() for p in model.decoder.parameters()):,})"),
        ("dataset", _part(experiment.data.dataset)),
        ("recipe", f"{t.epochs} epochs, batch {t.batch_size}, {t.optimizer.name} lr {t.optimizer.lr:g}"),
        ("pretrained", _pretrained_summary(experiment.name or "")),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _pretrained_summary(name: str) -> str:
    """'no', or the published weights' metrics with their protocol, from the registry entry."""
    if not is_pretrained(name):
        return "no"
    from ..hub.registry import get_entry

    entry = get_entry(name)
    parts = []
    for metric in entry.metrics:
        if metric.unit != "nats":
            continue
        p = metric.protocol
        samples = f"k={p.importance_samples}" if p.importance_samples > 1 else f"S={p.mc_samples or 1}"
        parts.append(f"{metric.name} {metric.value:.2f} nats ({p.split}, {p.num_examples:,} images, {samples})")
    where = f"hf-hub:{entry.weights.repo_id}" + (f"@{entry.weights.revision[:12]}" if entry.weights.revision else "")
    return f"yes, {entry.training.epochs} epochs; " + "; ".join(parts) + f"; {where}"


def add_commands(commands) -> None:
    p = commands.add_parser("list", help="list model names")
    p.add_argument("filter", nargs="*", help="fnmatch patterns, e.g. 'fashion-*'")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN", help="leave these out")
    p.add_argument("--pretrained", action="store_true", help="only models with published weights")
    p.set_defaults(func=_cmd_list)

    p = commands.add_parser("info", help="summary of a model: config, parameter count, weights")
    p.add_argument("name", help="a model name or a YAML config path")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.set_defaults(func=_cmd_info)
