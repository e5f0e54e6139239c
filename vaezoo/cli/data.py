"""``vaezoo data NAME [...]``: make a dataset available (found locally or downloaded) and verified."""

from __future__ import annotations

import argparse

from ..data.fetch import FETCHABLE, fetch

__all__ = ["add_commands"]


def _cmd_data(args: argparse.Namespace) -> int:
    for name in args.names:
        print(fetch(name, root=args.data, download=not args.no_download).summary())
    return 0


def add_commands(commands) -> None:
    p = commands.add_parser(
        "data", help="find or download a dataset into the cache, and verify its checksums",
        description="Look for each dataset where training looks (--data, $VAEZOO_DATA, the Debian package "
                    "dataset-fashion-mnist, the cache ~/.cache/vaezoo or $VAEZOO_CACHE), download it into the "
                    "cache when none has it, and check every file against the release's checksums. "
                    "\n\nExample:\n  vaezoo data fashion-mnist",
    )
    p.add_argument("names", nargs="+", choices=FETCHABLE, metavar="NAME", help=f"one of {', '.join(FETCHABLE)}")
    p.add_argument("--data", metavar="ROOT", help="look only in this folder")
    p.add_argument("--no-download", action="store_true", help="only look; never download")
    p.set_defaults(func=_cmd_data, interrupted="a file cut short fails its checksum at the next `vaezoo data`, "
                                                "which names it")
