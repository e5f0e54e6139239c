"""The project's errors: each one is a problem a person can act on, said in one line.

Every error vaezoo raises on purpose derives from :class:`VaezooError`, and the command line
prints exactly those as ``error: ...`` lines (exit status 2). Anything else is a bug, in vaezoo
or in a plugin, and keeps its traceback. Each class also derives from the built-in exception a
caller would catch for it (``ValueError``, ``FileNotFoundError``), so ``except ValueError`` keeps
working.
"""

from __future__ import annotations

__all__ = [
    "VaezooError", "ConfigError", "UsageError", "DataError", "DataNotFoundError", "CheckpointError",
    "HubError", "ChecksumError", "DuplicateNameError", "NonFiniteLossError", "TrainingInterrupted",
]


class VaezooError(Exception):
    """Base class: a problem with the input (a config, a file, an argument), not a bug."""

    def lines(self) -> list[str]:
        return str(self).splitlines() or [type(self).__name__]


class ConfigError(VaezooError, ValueError):
    """A config that cannot be used. ``problems`` holds (field path, message) pairs; each line reads
    ``configs/x.yaml: model.encoder.channels: expected a list of int, got 'abc'``."""

    def __init__(self, source: str, problems: list[tuple[str, str]], sources: list[str] | None = None):
        self.source = source
        self.problems = problems
        # where each problem comes from: the file, or an override (a --set flag) that set the field
        self.sources = sources or [source] * len(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        out = []
        for (path, message), source in zip(self.problems, self.sources):
            prefix = f"{source}: " if source else ""
            out.append(f"{prefix}{path}: {message}" if path else f"{prefix}{message}")
        return out


class DuplicateNameError(VaezooError, ValueError):
    """A registration under a name that is taken (of a part, a family, a dataset, ...)."""


class UsageError(VaezooError, ValueError):
    """An argument a function or command cannot take (a count below one, a family without the feature)."""


class DataError(VaezooError, ValueError):
    """A dataset file that exists but cannot be used as images (the message names the file and key)."""


class DataNotFoundError(VaezooError, FileNotFoundError):
    """No place held the dataset; the message lists every place tried and how to fix it."""


class CheckpointError(VaezooError, ValueError):
    """A checkpoint (a Hub-layout folder or a training checkpoint) that is missing, unreadable, or
    from another run; the message names the file."""


class HubError(VaezooError, ValueError):
    """A Hub reference, download or upload that cannot be served."""


class ChecksumError(HubError):
    """A weights file whose sha256 is not the one the registry pins; it was not loaded."""


class TrainingInterrupted(VaezooError, RuntimeError):
    """Training stopped on request (SIGTERM, or a first Ctrl-C) after writing a checkpoint;
    ``--resume`` continues it. ``signal``: the number of the signal that asked."""

    def __init__(self, message: str, step: int, checkpoint=None, signal: int = 15):
        super().__init__(message)
        self.step, self.checkpoint, self.signal = step, checkpoint, signal


class NonFiniteLossError(VaezooError, RuntimeError):
    """The loss or the weights became NaN/inf; ``step`` names the first bad optimizer step."""

    def __init__(self, message: str, step: int, checkpoint=None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint
