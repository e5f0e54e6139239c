"""``vaezoo.load``: a pretrained name, a Hub repository or a local folder -> a model; pushing a folder.

The client's standard settings apply unchanged: ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HOME``
(the cache) and ``HF_HUB_OFFLINE``. vaezoo adds the pinning: a pretrained name resolves to a
repository, a commit, a file and its sha256, and a file whose sha256 differs is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Union

import torch

from .._registry import suggest
from ..errors import ChecksumError, HubError
from ..factory import build_model
from ..layout import CONFIG_NAME, HF_PREFIX, WEIGHTS_NAME, PushResult, push_folder, translate_hub_errors
from ..models import BaseVAE
from ..zoo import MODELS
from .index import (
    PretrainedEntry, entry_path, get_entry, list_entries, sha256_file, shipped_candidates, verified_shipped_file,
)
from .packs import PACKS
from .local import load_local, load_weights, validate_folder

__all__ = ["HF_PREFIX", "parse_hub_ref", "resolve", "load", "load_pretrained", "load_from_hub", "pull",
           "push_to_hub", "PushResult", "verified_weights", "weights_source"]

logger = logging.getLogger(__name__)


def parse_hub_ref(ref: str) -> tuple[str, Optional[str]]:
    """``hf-hub:org/repo@rev`` -> (``org/repo``, ``rev`` or None)."""
    body = ref[len(HF_PREFIX):] if ref.startswith(HF_PREFIX) else ref
    repo_id, sep, revision = body.partition("@")  # repo names cannot hold '@'; revisions may hold '/'
    if not repo_id or (sep and not revision) or repo_id.count("/") > 1 or repo_id.startswith("/") or repo_id.endswith("/"):
        raise HubError(f"cannot read {ref!r} as a Hub reference: expected 'hf-hub:org/repo' or 'hf-hub:org/repo@revision'")
    return repo_id, (revision or None)


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith((".", "~"))


def resolve(ref: Union[str, Path]) -> tuple[str, str]:
    """What ``ref`` names: ``("local", path)``, ``("hub", ref)`` or ``("pretrained", name)``.

    Nothing is guessed: a bare word is a pretrained name or an existing folder, never both.
    """
    if isinstance(ref, Path):
        return "local", str(ref)
    text = str(ref)
    if text.startswith(HF_PREFIX):
        return "hub", text
    is_folder = Path(text).expanduser().is_dir()
    if _looks_like_path(text):
        if not is_folder:
            raise HubError(f"cannot load {text!r}: no such folder (a local checkpoint is a folder holding "
                           f"{CONFIG_NAME} and {WEIGHTS_NAME})")
        return "local", text
    is_pretrained = entry_path(text).is_file()
    if is_pretrained and is_folder:
        raise HubError(f"{text!r} is both a pretrained name and a folder here; say which: "
                       f"vaezoo.load('./{text}') for the folder, or run from another directory for the weights")
    if is_pretrained:
        return "pretrained", text
    if is_folder:
        return "local", text
    names = [e.name for e in list_entries()]
    if text in MODELS:
        hint = (f" '{text}' is a zoo architecture without published weights: vaezoo.create('{text}') builds it "
                f"with fresh weights.")
    else:
        hint = suggest(text, names + MODELS.names())
    raise HubError(
        f"cannot load {text!r}: it is not a pretrained name, an 'hf-hub:' reference or an existing folder.{hint} "
        f"Accepted: a pretrained name ({', '.join(names) if names else 'none published yet'}), "
        f"'hf-hub:org/repo[@revision]', or a folder path holding {CONFIG_NAME} and {WEIGHTS_NAME}"
    )


def load(
    ref: Union[str, Path],
    revision: Optional[str] = None,
    map_location: Union[str, torch.device] = "cpu",
    *,
    token: Optional[Union[str, bool]] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    local_files_only: bool = False,
) -> BaseVAE:
    """A trained model in eval mode, from a pretrained name, ``hf-hub:org/repo[@rev]`` or a folder."""
    kind, what = resolve(ref)
    if kind == "local":
        if revision is not None:
            raise HubError(f"revision={revision!r} means nothing for the local folder {what!r}")
        return load_local(Path(what).expanduser(), map_location=map_location)
    if kind == "hub":
        repo_id, ref_revision = parse_hub_ref(what)
        if revision is not None and ref_revision is not None and revision != ref_revision:
            raise HubError(f"two revisions given for {repo_id}: '@{ref_revision}' in the reference and "
                           f"revision={revision!r}; give one")
        return load_from_hub(repo_id, revision=revision or ref_revision, map_location=map_location, token=token,
                             cache_dir=cache_dir, local_files_only=local_files_only)
    if revision is not None:
        raise HubError(f"'{what}' is pinned by the registry; to load another revision use "
                       f"vaezoo.load('hf-hub:<repo>@{revision}')")
    return load_pretrained(what, map_location=map_location, token=token, cache_dir=cache_dir,
                           local_files_only=local_files_only)


# --------------------------------------------------------------------------- pretrained


def retired_message(entry: PretrainedEntry) -> str:
    r = entry.retired
    return (f"'{entry.name}' is kept as history: its weights no longer ship with vaezoo and are not on the Hub "
            f"({r.why}). Load '{r.superseded_by}' instead, retrain it with `vaezoo train configs/{entry.config}.yaml`, "
            f"or recover the sha256-pinned file from a clone of vaezoo's repository: "
            f"`{r.recover_command(entry.name)}`")


def weights_source(entry: PretrainedEntry) -> str:
    """Where ``vaezoo.load`` takes the entry's weights from here, in a phrase (``vaezoo info``)."""
    if entry.retired is not None:
        return f"weights retired for {entry.retired.superseded_by}"
    if entry.shipped is None:
        return "weights on the Hub"
    if entry.pack is None:
        return "weights ship with vaezoo"
    pack = PACKS[entry.pack]
    if any(path.is_file() for path in shipped_candidates(entry)):
        return f"weights in {pack.distribution}"
    return f"weights in {pack.distribution}, not installed: {pack.install_hint()}"


def not_on_the_hub_message(entry: PretrainedEntry, altered: list[Path]) -> str:
    """Why an entry that is not pushed yet cannot load here, and what to do."""
    if entry.retired is not None:
        return retired_message(entry)
    prefix = f"'{entry.name}' is not on the Hub yet (its registry entry has no revision) and "
    if altered:
        return (prefix + f"its shipped weights were altered ({', '.join(map(str, altered))} do not have sha256 "
                f"{entry.weights.sha256}); reinstall " + (PACKS[entry.pack].distribution if entry.pack else "vaezoo"))
    if entry.pack is not None:
        pack = PACKS[entry.pack]
        return (prefix + f"its weights ship in the weight pack {pack.distribution} ({pack.holds}), which is not "
                f"installed: {pack.install_hint()}")
    return prefix + f"no shipped weights file with sha256 {entry.weights.sha256} was found; reinstall vaezoo"


def verified_weights(
    entry: PretrainedEntry,
    *,
    token: Optional[Union[str, bool]] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    local_files_only: bool = False,
    registry: Optional[Path] = None,
) -> Path:
    """The path of a weights file whose sha256 is the entry's: shipped, cached or downloaded."""
    expected = entry.weights.sha256
    shipped, altered = verified_shipped_file(entry, registry)
    if shipped is not None:
        return shipped
    for path in altered:
        logger.warning("shipped weights %s do not match the registry's sha256; trying the Hub", path)
    if entry.weights.revision is None:
        raise HubError(not_on_the_hub_message(entry, altered))
    from huggingface_hub import hf_hub_download

    w = entry.weights
    with translate_hub_errors(w.repo_id, w.revision, w.file):
        path = Path(hf_hub_download(w.repo_id, w.file, revision=w.revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only))
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(
            f"refused the weights of '{entry.name}': {w.file} from hf-hub:{w.repo_id}@{w.revision} has sha256 "
            f"{actual}, the registry pins {expected}. The file was not loaded; it is at {path} (delete it "
            f"to download it again)"
        )
    return path


def load_pretrained(
    name: str,
    *,
    map_location: Union[str, torch.device] = "cpu",
    token: Optional[Union[str, bool]] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    local_files_only: bool = False,
    registry: Optional[Path] = None,
) -> BaseVAE:
    entry = get_entry(name, registry)
    model = build_model(entry.model, source=f"registry entry '{name}'")
    path = verified_weights(entry, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
                            registry=registry)
    load_weights(model, path, map_location=map_location)
    return model.eval()


# --------------------------------------------------------------------------- any Hub repo


def pull(
    ref: str,
    revision: Optional[str] = None,
    *,
    token: Optional[Union[str, bool]] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    local_files_only: bool = False,
    files: Optional[list[str]] = None,
) -> Path:
    """Download a Hub repository (or a pretrained name's pinned commit) to the cache; its local folder.

    For a pretrained name the weights file's sha256 is checked against the registry.
    """
    from huggingface_hub import snapshot_download

    if ref.startswith(HF_PREFIX):
        repo_id, ref_revision = parse_hub_ref(ref)
        revision = revision or ref_revision
        entry = None
    else:
        entry = get_entry(ref)
        if entry.weights.revision is None:
            shipped, altered = verified_shipped_file(entry)
            if shipped is not None:
                return shipped  # not on the Hub yet: the verified copy that ships with vaezoo (or its pack) is the local one
            raise HubError(not_on_the_hub_message(entry, altered))
        repo_id, revision = entry.weights.repo_id, entry.weights.revision
    with translate_hub_errors(repo_id, revision):
        folder = Path(snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir,
                                        local_files_only=local_files_only, allow_patterns=files))
    if entry is not None:
        actual = sha256_file(folder / entry.weights.file)
        if actual != entry.weights.sha256:
            raise ChecksumError(f"refused '{ref}': {folder / entry.weights.file} has sha256 {actual}, the registry "
                                f"pins {entry.weights.sha256}")
    return folder


def load_from_hub(
    repo_id: str,
    revision: Optional[str] = None,
    *,
    map_location: Union[str, torch.device] = "cpu",
    token: Optional[Union[str, bool]] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    local_files_only: bool = False,
) -> BaseVAE:
    # one snapshot: config and weights come from the same commit even if a push lands meanwhile
    folder = pull(f"{HF_PREFIX}{repo_id}", revision, token=token, cache_dir=cache_dir,
                  local_files_only=local_files_only, files=[CONFIG_NAME, WEIGHTS_NAME])
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise HubError(f"file '{name}' is not in Hub repository '{repo_id}' at revision '{revision or 'main'}': "
                           f"not a vaezoo checkpoint")
    return load_local(folder, map_location=map_location)


# --------------------------------------------------------------------------- push


def push_to_hub(
    model_or_dir: Union[BaseVAE, str, Path],
    repo_id: str,
    *,
    tag: Optional[str] = None,
    private: bool = False,
    token: Optional[str] = None,
    commit_message: Optional[str] = None,
    revision: Optional[str] = None,
    samples: Optional[int] = 64,
    include_training: bool = False,
) -> PushResult:
    """Upload a model (saved first) or a checkpoint folder as one commit; optionally tag that commit.

    ``create_repo(exist_ok=True)`` first, then the model's files in a single ``create_commit``,
    then ``create_tag`` on the new commit. A training run's folder is pushed without its
    training state (``checkpoints/``, metrics, TensorBoard logs) unless ``include_training``.
    The token goes to the client only; it is never printed, logged or written.
    """
    if isinstance(model_or_dir, BaseVAE):
        return model_or_dir.push_to_hub(repo_id, tag=tag, private=private, token=token,
                                        commit_message=commit_message, revision=revision, samples=samples)
    folder = Path(model_or_dir).expanduser()
    if not folder.is_dir():
        raise HubError(f"cannot push {str(model_or_dir)!r}: no such folder")
    validate_folder(folder)  # refuse to publish what vaezoo.load would reject
    return push_folder(folder, repo_id, tag=tag, private=private, token=token, commit_message=commit_message,
                       revision=revision, include_training=include_training)
