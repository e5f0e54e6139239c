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
import importlib.util
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Sequence

from .._version import __version__
from ..errors import (
    ConfigError, DuplicateNameError, NonFiniteLossError, TrainingInterrupted, UsageError, VaezooError,
)

__all__ = ["main", "build_parser"]

COMMAND_MODULES = ["zoo_commands", "hub", "evaluate", "posthoc", "train", "data", "explore"]
NOTHING_KEPT = "nothing was written (a command writes its files when it finishes)"
_IMPORT_HELP = ("import a module (a name, or a .py file) before anything else, so that the parts, families or "
                "datasets it registers can be used (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaezoo", description="A config-driven zoo of VAEs: list, inspect, train, evaluate, draw and share "
                                   "models. `vaezoo COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"vaezoo {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error (also VAEZOO_TRACEBACK=1)")
    parser.add_argument("--import", dest="imports_first", action="append", default=[], metavar="MODULE",
                        help=_IMPORT_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{module}").add_commands(commands)
    for command in commands.choices.values():  # `vaezoo train --import my_parts ...` works too
        command.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                             help=_IMPORT_HELP)
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def import_user_module(name: str) -> None:
    """``my_parts`` (found from the working directory, as ``python -m`` would) or ``path/to/parts.py``.

    A syntax error, or a name its registrations take twice, is one line naming the file and the
    line; any other error inside the user's module keeps its traceback (a bug to read there)."""
    try:
        _import(name)
    except SyntaxError as exc:
        raise UsageError(f"--import {name}: {exc.msg} ({exc.filename}, line {exc.lineno})") from None
    except DuplicateNameError as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_PACKAGE_DIR)]
        where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
        raise UsageError(f"--import {name}: {exc}{where}") from None


_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def _import(name: str) -> None:
    if name.endswith(".py") or os.sep in name or "/" in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise UsageError(f"--import {name}: no such file")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if importlib.util.find_spec(name) is None:
        raise UsageError(f"--import {name}: no module named {name!r} (from {os.getcwd()} or the installed packages)")
    importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for name in [*args.imports_first, *args.imports]:
            import_user_module(name)
        return args.func(args)
    except KeyboardInterrupt:
        # Ctrl-C: one line saying what is kept, not a traceback (a training's first Ctrl-C
        # checkpoints and stops cleanly, as TrainingInterrupted; this is a second one, or elsewhere)
        print(f"stopped by Ctrl-C: {getattr(args, 'interrupted', NOTHING_KEPT)}", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # the reader went away (`vaezoo list | head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except VaezooError as exc:
        if args.traceback or os.environ.get("VAEZOO_TRACEBACK") not in (None, "", "0"):
            raise
        # one problem per line for a config; one message (its first line marked) for anything else
        lines = exc.lines()
        marked = lines if isinstance(exc, ConfigError) else lines[:1]
        for line in marked:
            print(f"error: {line}", file=sys.stderr)
        for line in lines[len(marked):]:
            print(line, file=sys.stderr)
        if isinstance(exc, TrainingInterrupted):
            return 128 + exc.signal  # what a process stopped by that signal reports
        return 1 if isinstance(exc, NonFiniteLossError) else 2
