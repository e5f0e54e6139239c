"""The ``vaezoo`` command line.

Each module in ``COMMAND_MODULES`` adds its subcommands through ``add_commands(subparsers)``
and sets ``func`` on each parser. Results go to stdout, problems to stderr; a config or
usage problem exits with status 2 and one line per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .. import __version__
from ..config import ConfigError

__all__ = ["main", "build_parser"]

COMMAND_MODULES = ["zoo_commands", "hub", "evaluate", "train", "data"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaezoo", description="A config-driven zoo of VAEs.")
    parser.add_argument("--version", action="version", version=f"vaezoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{module}").add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
