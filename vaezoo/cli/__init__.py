"""The ``vaezoo`` command line.

Each module in ``COMMAND_MODULES`` adds its subcommands through ``add_commands(subparsers)``
and sets ``func`` on each parser. Results go to stdout, problems to stderr. A problem with the
input (a :class:`~vaezoo.errors.VaezooError`: a config, a file, an argument) exits with status 2
and one line per problem; anything else is a bug, in vaezoo or in a plugin, and keeps its
traceback. ``--traceback`` (or ``VAEZOO_TRACEBACK=1``) shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from .. import __version__
from ..errors import NonFiniteLossError, VaezooError

__all__ = ["main", "build_parser"]

COMMAND_MODULES = ["zoo_commands", "hub", "evaluate", "train", "data"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaezoo", description="A config-driven zoo of VAEs.")
    parser.add_argument("--version", action="version", version=f"vaezoo {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error (also VAEZOO_TRACEBACK=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{module}").add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VaezooError as exc:
        if args.traceback or os.environ.get("VAEZOO_TRACEBACK") not in (None, "", "0"):
            raise
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return 1 if isinstance(exc, NonFiniteLossError) else 2
