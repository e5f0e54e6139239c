"""Errors of the Hub code, and the client's errors said in vaezoo's words.

Every error here is a ``ValueError`` so that the CLI reports it as one line (exit 2) and
a caller can catch a bad reference, a bad checkpoint and a refused download the same way.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["HubError", "CheckpointError", "ChecksumError", "translate_hub_errors"]


class HubError(ValueError):
    """A Hub reference, download or upload that cannot be served."""


class CheckpointError(HubError):
    """A folder or file that is not a usable vaezoo checkpoint (the message names the file)."""


class ChecksumError(HubError):
    """A weights file whose sha256 is not the one the registry pins; it was not loaded."""


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
