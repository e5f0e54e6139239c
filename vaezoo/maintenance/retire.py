"""Stop shipping a superseded entry's weights, keeping the entry as history (registry/README.md,
"The weight budget"):

    python -m vaezoo.maintenance.retire NAME --superseded-by NEWER --why "what NEWER does better"

NEWER is a shipped model of the same architecture and published row that scores better, or, for a
seed replicate, its twin of the same config trained with another seed (tests/test_hub_registry.py
checks which).

Run it in a clone of vaezoo's repository whose last commit holds the weights file: the file's
sha256 in that commit is checked against the entry's, the commit is recorded (so that
``git show COMMIT:PATH`` recovers the pinned file), and the file is removed from registry/weights/.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import HubError
from ..hub.index import Retirement, entry_path, list_entries, read_entry, shipped_path, write_entry
from ..resources import registry_dir


def _git(args: Sequence[str], cwd: Path) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True).stdout


def retire(name: str, superseded_by: str, why: str, registry: Optional[Path] = None) -> Path:
    registry = Path(registry) if registry is not None else registry_dir()
    entry, newer = read_entry(entry_path(name, registry)), read_entry(entry_path(superseded_by, registry))
    if entry.shipped is None:
        raise HubError(f"'{name}' ships no weights already")
    if newer.shipped is None or newer.name == name:
        raise HubError(f"'{superseded_by}' must be another entry that ships its weights")
    repo = Path(_git(["rev-parse", "--show-toplevel"], registry).decode().strip())
    shipped = shipped_path(entry, registry)
    path = shipped.resolve().relative_to(repo.resolve()).as_posix()
    commit = _git(["rev-parse", "HEAD"], repo).decode().strip()
    committed = hashlib.sha256(_git(["show", f"{commit}:{path}"], repo)).hexdigest()
    if committed != entry.weights.sha256:
        raise HubError(f"{path} at {commit[:10]} has sha256 {committed[:12]}..., not the entry's "
                       f"{entry.weights.sha256[:12]}...: commit the entry's weights first")
    retired = entry.model_copy(update={
        "shipped": None, "pack": None, "retired": Retirement(superseded_by=superseded_by, why=why, commit=commit, path=path)})
    write_entry(retired, registry)
    shipped.unlink()
    return entry_path(name, registry)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--superseded-by", required=True, help="the shipped entry that replaces it")
    parser.add_argument("--why", required=True, help="what the replacement does better, in a line")
    args = parser.parse_args(argv)
    print(retire(args.name, args.superseded_by, args.why))
    for dependent in starts_from(args.name):
        print(f"{dependent}'s recipe starts from {args.name} (trainer.init_from): its config and docs must say how to "
              f"run it now, from the recovered file (trainer.init_from=FILE.safetensors)", file=sys.stderr)
    return 0


def starts_from(name: str, registry: Optional[Path] = None) -> list[str]:
    """The shipped entries whose recipe warm-starts from ``name``."""
    return [e.name for e in list_entries(registry) if e.retired is None and e.training.started_from is not None
            and e.training.started_from.source == name]


if __name__ == "__main__":
    sys.exit(main())
