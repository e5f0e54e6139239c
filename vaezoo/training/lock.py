"""One run folder, one writer: an advisory lock held while a training writes its folder.

``checkpoints/.lock`` is locked with ``fcntl.flock``: the kernel drops the lock when the process
ends in any way (SIGKILL included), so a crashed run never leaves it stuck; the file itself
stays and holds the last holder's pid for the message. The lock lives under ``checkpoints/``,
which a push leaves out. Where ``fcntl`` does not exist (Windows) nothing is locked.
Taking the lock also proves, before any work, that the folder can be written.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

from ..errors import UsageError
from ..layout.checkpoint import CHECKPOINT_DIR

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["run_folder_lock", "LOCK_NAME"]

LOCK_NAME = ".lock"


def _unwritable(out: Path, exc: OSError) -> UsageError:
    return UsageError(f"cannot write the run folder {out}: {exc.strerror or exc}; pick a folder you can write (--out)")


def _prepare(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: pick a folder for the run")
    folder = out / CHECKPOINT_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(out, exc) from None
    return folder / LOCK_NAME


@contextlib.contextmanager
def run_folder_lock(out: str | Path) -> Iterator[None]:
    """Hold the run folder ``out`` for this process, or refuse with who holds it."""
    out = Path(out)
    path = _prepare(out)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _unwritable(out, exc) from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                raise UsageError(f"another training is writing {out} ({holder}): wait for it to end, or pick "
                                 f"another --out") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        except OSError as exc:
            raise _unwritable(out, exc) from None
        yield
    finally:
        os.close(fd)  # closing drops the lock
