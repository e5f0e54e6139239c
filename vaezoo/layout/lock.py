"""One run folder, one writer: an advisory lock that every command writing (or reading whole) a run
folder holds: training, ``fit-prior``, ``publish``, ``push --include-training``.

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
from .checkpoint import CHECKPOINT_DIR

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["run_folder_lock", "reading_run_folder", "writing_into", "check_not_another_model", "holder", "LOCK_NAME"]

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
def run_folder_lock(out: str | Path, what: str = "vaezoo") -> Iterator[None]:
    """Hold the run folder ``out`` for this process, or refuse with who holds it (``what``: the
    command, for that message)."""
    out = Path(out)
    path = _prepare(out)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _unwritable(out, exc) from None
    try:
        if fcntl is not None:
            _take(fd, fcntl.LOCK_EX, lambda holder: f"another command holds the run folder {out} ({holder}): wait "
                                                    f"for it to end, or pick another folder")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{what}, process {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        except OSError as exc:
            raise _unwritable(out, exc) from None
        yield
    finally:
        os.close(fd)  # closing drops the lock


@contextlib.contextmanager
def reading_run_folder(folder: str | Path, what: str = "vaezoo") -> Iterator[None]:
    """Read a run folder whole (``publish``, ``push --include-training``) while no command writes it:
    a shared lock, which readers may hold together and a writer's lock excludes. A folder that no
    training ever held (no lock file: a saved model, a read-only download) is read as it is."""
    path = Path(folder) / CHECKPOINT_DIR / LOCK_NAME
    if fcntl is None or not path.is_file():
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        _take(fd, fcntl.LOCK_SH, lambda holder: f"{what}: the run folder {folder} is being written ({holder}): wait "
                                                f"for it to end, then read it")
        yield
    finally:
        os.close(fd)


def holder(folder: str | Path) -> str | None:
    """Who writes the run folder now (the lock file's "command, process PID, since TIME"), or None
    when no command holds its lock. Probing takes a shared lock for an instant and drops it."""
    path = Path(folder) / CHECKPOINT_DIR / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)  # closing drops the probe's lock


def _take(fd: int, mode: int, refusal) -> None:
    """``flock`` without waiting, or a UsageError whose text ``refusal(holder)`` names the holder."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        raise UsageError(refusal(holder)) from None


def check_not_another_model(out: str | Path, source: str | Path, own_output: bool = False) -> None:
    """Refuse to write a model into ``out`` when it holds another model than ``source``'s (its own
    ``config.json``), unless ``own_output``: the caller recognises it as its own earlier output (a
    code prior's stage folder, a fitted prior's record). A second command never replaces another
    run's model without a word."""
    out, source = Path(out).expanduser(), Path(source).expanduser()
    if own_output or not (out / "config.json").is_file() or out.resolve() == source.resolve():
        return
    raise UsageError(f"{out} holds another model (its config.json): writing there would replace it; pick an empty "
                     f"folder for --out, or leave --out out to write into the source run")


def writing_into(folder: str | Path, what: str = "vaezoo"):
    """The lock to hold while a command writes a file into ``folder``: the run folder's own lock when
    ``folder`` is a training's run folder (it has a lock file), else none (any other folder)."""
    if (Path(folder) / CHECKPOINT_DIR / LOCK_NAME).is_file():
        return run_folder_lock(folder, what)
    return contextlib.nullcontext()
