"""``vaezoo explore``: open a model's latent space in the browser."""

from __future__ import annotations

import argparse
from typing import Any, Optional

from ..data.factors import FACTOR_DATASETS
from ..errors import HubError
from ..evaluation.data import resolve_data
from ..explore import Explorer, ExplorerServer
from ..hub import load
from ..hub.index import PretrainedEntry, get_entry
from ..parts.metrics import find_metric
from .arguments import at_least
from ..devices import resolve_device
from .evaluate import _common, data_config

__all__ = ["add_commands", "key_figures"]

# what the page's header shows of a published model's metrics, when it has them
KEY_METRICS = ("neg_elbo", "iwae_nll", "fd-fashion-v1", "class-coverage-fashion-v1", "probe-accuracy", "mig",
               "dci-disentanglement", "factor-vae-score", "gaussian-tc")


def key_figures(entry: Optional[PretrainedEntry]) -> dict[str, Any]:
    """The card a published model brings to the page: its use and its key metrics, with protocols."""
    if entry is None:
        return {}
    metrics = []
    for name in KEY_METRICS:
        record = next((m for m in entry.metrics if m.name == name), None)
        metric = find_metric(name, record.protocol.features if record is not None else None)
        if record is None or metric is None:
            continue
        unit = " nats" if record.unit in ("nats", "information") else ""
        metrics.append({"name": name, "label": metric.label.strip(), "value": f"{record.value:.4g}{unit}",
                        "protocol": f"{record.protocol.split}, {record.protocol.num_examples:,} examples"})
    return {"use_for": entry.use_for, "metrics": metrics, "dataset": entry.dataset}


def _published(ref: str) -> Optional[PretrainedEntry]:
    try:
        return get_entry(ref)
    except (HubError, ValueError):  # a folder, a Hub repo or an unpublished name: no registry card
        return None


def _cmd_explore(args: argparse.Namespace) -> int:
    model = load(args.ref).to(resolve_device(args.device, what="--device")).eval()
    config = data_config(args)
    test = resolve_data(config, root=args.data, limit=args.test_images, expected_shape=tuple(model.input_shape))
    card = {**key_figures(_published(args.ref)), "classes": test.classes or None}
    # the fitted GMM prior needs the training images; a factor dataset's model explores its own grid instead
    data = config if config.dataset.name not in FACTOR_DATASETS else None
    explorer = Explorer(model, args.ref, test.images, test.labels, card=card, data=data, root=args.data)
    server = ExplorerServer(explorer, args.host, args.port)
    print(f"exploring {args.ref} at {server.url} (Ctrl-C stops it; nothing leaves this machine)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: --host {args.host} lets other machines of that network open the page", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def add_commands(commands) -> None:
    p = commands.add_parser(
        "explore", help="open a model's latent space in the browser: sliders, samples, interpolation, your images",
        description="Serve a page on this machine for one model: samples from its prior (and a fitted mixture "
                    "where it applies), sliders on the latent dimensions ranked by their KL from a sample or a test "
                    "image, the level of a hierarchy and the class of a conditional model, a VQ model's code grid, "
                    "interpolation between two images and the reconstruction of your own. The page loads nothing "
                    "from anywhere else and sends nothing anywhere."
                    "\n\nExamples:\n  vaezoo explore fashion-conv64\n  vaezoo explore fashion-hvae40-ema --port 8765\n"
                    "  vaezoo explore runs/my-model",
    )
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=at_least(0), default=0, help="port (default 0: a free one, printed)")
    p.add_argument("--test-images", type=at_least(2), default=1000, metavar="N",
                   help="test images to start from and to rank the sliders on (default 1000)")
    p.set_defaults(func=_cmd_explore, interrupted="the page stopped; nothing was written")
