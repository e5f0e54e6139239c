"""The ``huggingface_hub`` client in vaezoo's words: its errors translated, a folder pushed as one commit.

The client's standard settings apply unchanged: ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HOME`` (the
cache) and ``HF_HUB_OFFLINE``. The token goes to the client only; it is never printed, logged
or written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..errors import HubError
from .card import pointing_to
from .files import CARD_NAME, CONFIG_NAME, without_local_paths
from .lock import reading_run_folder

__all__ = ["HF_PREFIX", "translate_hub_errors", "PushResult", "push_folder", "folder_files", "TRAINING_STATE"]

HF_PREFIX = "hf-hub:"
logger = logging.getLogger(__name__)


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@contextlib.contextmanager
def translate_hub_errors(repo_id: str, revision: str | None = None, filename: str | None = None) -> Iterator[None]:
    """Re-raise ``huggingface_hub``'s errors as :class:`HubError` with what to do about them.

    The client's messages carry request ids and URLs but never the token, and ours only
    name the repository, revision, file and endpoint: nothing secret reaches a log.
    """
    from huggingface_hub import errors as hf

    rev = revision or "main"
    where = f"Hub repository '{repo_id}' at {_endpoint()}"
    try:
        yield
    except hf.HFValidationError as exc:  # a repo id or revision the client refuses before any request
        detail = " ".join(str(exc).split()).split(". Use `repo_type`")[0]
        raise HubError(f"'{repo_id}' is not a valid Hub repository id or revision: {detail}") from None
    except hf.GatedRepoError as exc:
        raise HubError(f"{where} is gated: accept its conditions on the Hub and pass a token (HF_TOKEN)") from exc
    except hf.RepositoryNotFoundError as exc:
        raise HubError(
            f"{where} was not found, or it is private and no valid token was given "
            f"(set HF_TOKEN, run `hf auth login`, or pass token=)"
        ) from exc
    except hf.RevisionNotFoundError as exc:
        raise HubError(f"revision '{rev}' does not exist in {where} (give a branch, a tag or a commit sha)") from exc
    except hf.RemoteEntryNotFoundError as exc:
        raise HubError(f"file '{filename or '?'}' is not in {where} at revision '{rev}'") from exc
    except hf.LocalEntryNotFoundError as exc:
        raise HubError(
            f"'{repo_id}' (revision '{rev}') is not in the local Hugging Face cache and the Hub cannot be "
            f"reached (HF_HUB_OFFLINE is set or there is no network); download it once while online "
            f"(`vaezoo pull`) or unset HF_HUB_OFFLINE"
        ) from exc
    except hf.OfflineModeIsEnabled as exc:
        raise HubError(f"cannot contact {where}: HF_HUB_OFFLINE is set") from exc
    except hf.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        detail = (exc.server_message or "").strip().splitlines()
        reason = f": {detail[0]}" if detail else ""
        hint = " (check the token: HF_TOKEN or token=)" if status in (401, 403) else ""
        raise HubError(f"{where} refused the request with HTTP {status}{reason}{hint}") from exc
    except OSError as exc:  # connection refused, DNS failure, timeouts (httpx errors are OSError-like or not)
        raise HubError(f"cannot reach {where}: {exc.__class__.__name__}: {exc}") from exc
    except Exception as exc:
        # httpx's transport errors do not derive from OSError; catch them by module, not by a broad except
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise HubError(f"cannot reach {where}: {exc.__class__.__name__}: {exc}") from exc
        raise


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    commit: str
    tag: Optional[str]
    url: str

    @property
    def ref(self) -> str:
        """What ``vaezoo.load`` takes to get exactly this commit."""
        return f"{HF_PREFIX}{self.repo_id}@{self.commit}"


# what a training run's folder holds beside the model: its resumable state and its logs
TRAINING_STATE = ("checkpoints", "tensorboard")


def folder_files(folder: Path, include_training: bool = False) -> list[Path]:
    """The regular files a push of ``folder`` uploads: hidden files never, a run's training state
    only with ``include_training``; a symbolic link that leaves the folder is refused (it would
    publish a file from elsewhere on this machine), and what is neither file nor folder skipped."""
    root = folder.resolve()
    files = []
    for directory, subdirs, names in os.walk(folder):  # does not follow linked folders
        here = Path(directory)
        parts = here.relative_to(folder).parts
        if any(part.startswith(".") for part in parts) or (parts and parts[0] in TRAINING_STATE
                                                            and not include_training):
            subdirs[:] = []
            continue
        for name in sorted(names) + sorted(d for d in subdirs if (here / d).is_symlink()):
            path = here / name
            if name.startswith(".") or (not parts and name in TRAINING_STATE and not include_training):
                continue
            if path.is_symlink():
                target = path.resolve()
                if target != root and root not in target.parents:
                    raise HubError(f"refusing to push {folder}: {path.relative_to(folder)} is a symbolic link to "
                                   f"{target}, outside the folder; copy the file in, or remove the link")
                if target.is_dir():
                    continue  # its files are in the folder already
            if stat.S_ISREG(os.stat(path).st_mode):
                files.append(path)
            else:
                logger.warning("skipping %s: not a regular file", path)
    return sorted(files)


def push_folder(folder: Path, repo_id: str, *, tag: Optional[str] = None, private: bool = False,
                token: Optional[str] = None, commit_message: Optional[str] = None, revision: Optional[str] = None,
                include_training: bool = False) -> PushResult:
    """Every file of ``folder`` in one commit (hidden files never; a run's ``checkpoints/`` and
    ``tensorboard/`` only with ``include_training``), then ``tag`` on that commit."""
    from huggingface_hub import CommitOperationAdd, HfApi

    with reading_run_folder(folder, "vaezoo push") if include_training else contextlib.nullcontext():
        # the training state is read whole, or not while a training rewrites it
        files = folder_files(folder, include_training)
        contents = {p: p.read_bytes() for p in files} if include_training else None
    card = folder / CARD_NAME
    if not card.is_file():
        logger.warning("%s has no %s model card", folder, CARD_NAME)
    config = folder / CONFIG_NAME
    operations = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(),
                                     path_or_fileobj=contents[p] if contents is not None else str(p))
                  for p in files if p not in (card, config)]
    if config.is_file():
        operations.append(CommitOperationAdd(path_in_repo=CONFIG_NAME,
                                             path_or_fileobj=without_local_paths(config.read_text()).encode()))
    if card.is_file():  # the pushed card loads from where it is going, not from the pusher's folder
        pushed_card = pointing_to(card.read_text(), f"hf-hub:{repo_id}" + (f"@{tag}" if tag else ""))
        operations.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=pushed_card.encode()))
    api = HfApi(token=token)
    with translate_hub_errors(repo_id, revision):
        url = api.create_repo(repo_id, private=True if private else None, exist_ok=True)
        if tag and tag in {ref.name for ref in api.list_repo_refs(repo_id).tags}:
            # before the commit: an error must not leave main moved
            raise HubError(f"tag {tag!r} already exists in {repo_id}; nothing was pushed: pick another tag "
                           f"(a published tag is never moved)")
        info = api.create_commit(
            repo_id, operations, commit_message=commit_message or f"Upload {folder.name} with vaezoo",
            revision=revision,
        )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, tag_message=f"vaezoo checkpoint {tag}")
    return PushResult(repo_id=repo_id, commit=info.oid, tag=tag, url=str(url))
