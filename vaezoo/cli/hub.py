"""``vaezoo push DIR REPO_ID``, ``vaezoo pull NAME|hf-hub:...``, ``vaezoo publish RUN NAME`` and
``vaezoo publish-metrics NAME FILE...``."""

from __future__ import annotations

import argparse
import sys

from ..maintenance.publish import add_metrics, publish_run
from ..hub.packs import PACKS
from ..hub.remote import pull, push_to_hub
from .arguments import at_least, positive_float


def _cmd_push(args: argparse.Namespace) -> int:
    # the token comes from HF_TOKEN or the client's login; no --token flag, so it never lands in shell history
    result = push_to_hub(args.dir, args.repo_id, tag=args.tag, private=args.private, commit_message=args.message,
                         revision=args.revision, include_training=args.include_training)
    print(f"pushed {args.dir} to {result.url} (commit {result.commit}" + (f", tag {result.tag})" if result.tag else ")"))
    print(f"load it with: vaezoo.load({result.ref!r})")
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    path = pull(args.ref, revision=args.revision, local_files_only=args.offline)
    if path.is_file():  # a pretrained name not pushed yet: its verified shipped weights
        print(f"{args.ref} is not on the Hub yet; its shipped weights (sha256 verified):", file=sys.stderr)
    print(path)
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    entry_path = publish_run(
        args.run, args.name, args.repo_id, metrics=args.metrics, config=args.config, license=args.license,
        push=args.push, tag=args.tag, registry=args.registry, dtype=args.dtype, hardware=args.hardware,
        time_s=args.time_s, epochs=args.epochs, answers=args.answers, pack=args.pack,
    )
    print(entry_path)
    return 0


def _cmd_publish_metrics(args: argparse.Namespace) -> int:
    path, left_out = add_metrics(args.name, args.files, registry=args.registry)
    for name in left_out:
        print(f"kept the entry's {name}: it was measured more precisely than the new one", file=sys.stderr)
    print(path)
    return 0


def add_commands(commands) -> None:
    p = commands.add_parser(
        "push", help="upload a checkpoint folder to the Hugging Face Hub (one commit)",
        description="Upload a folder in Hub layout (a run folder is one) as one commit, optionally tagged. The "
                    "token comes from HF_TOKEN or `hf auth login`; HF_ENDPOINT picks the server.\n\n"
                    "Example:\n  vaezoo push runs/fc64 alice/my-vae --tag v1",
    )
    p.add_argument("dir", help="a folder in Hub layout (config.json, model.safetensors, README.md)")
    p.add_argument("repo_id", help="org/name on the Hub")
    p.add_argument("--tag", help="tag the new commit, e.g. v1")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="branch to commit to (default: main)")
    p.add_argument("-m", "--message", help="commit message")
    p.add_argument("--include-training", action="store_true",
                   help="also upload a run's training state (checkpoints/, tensorboard/); by default only the model")
    p.set_defaults(func=_cmd_push, interrupted="a push is one commit, made whole or not at all: pushing again "
                                                "finishes it")

    p = commands.add_parser(
        "pull", help="download a pretrained name or hf-hub:org/repo[@rev] to the cache",
        description="Download a repository (or a pretrained name's pinned commit) into the Hugging Face cache and "
                    "print where it is; a pretrained name not on the Hub yet gives its verified shipped file.\n\n"
                    "Examples:\n  vaezoo pull hf-hub:alice/my-vae@v1\n  vaezoo pull fashion-conv64",
    )
    p.add_argument("ref", help="a pretrained name or hf-hub:org/repo[@revision]")
    p.add_argument("--revision", help="branch, tag or commit (hf-hub references only)")
    p.add_argument("--offline", action="store_true", help="only look in the local cache")
    p.set_defaults(func=_cmd_pull, interrupted="the Hub cache keeps finished files only: pulling again finishes it")

    p = commands.add_parser(
        "publish", help="turn a trained run folder into a registry/ entry (+ shipped weights)",
        description="Write registry/weights/NAME.safetensors (fp16 by default) and registry/NAME.json with its "
                    "sha256, metrics and recipe; --push also uploads it and pins the commit.\n\n"
                    "Example:\n  vaezoo publish runs/hvae fashion-hvae40 vaezoo/fashion-hvae40 --metrics elbo.json "
                    "--metrics iwae.json",
    )
    p.add_argument("run", help="the run's folder in Hub layout (what training saved)")
    p.add_argument("name", help="the pretrained name, e.g. fashion-conv64")
    p.add_argument("repo_id", help="org/name of its Hub repository")
    p.add_argument("--metrics", action="append",
                   help="JSON file of metrics with their protocol, e.g. `vaezoo eval -o` output; repeat it to merge "
                        "several (default: the run's config.json)")
    p.add_argument("--config", help="the configs/ name it was trained from (default: the run's name)")
    p.add_argument("--license", default="mit")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32", "bfloat16"],
                   help="storage dtype of the shipped weights")
    p.add_argument("--epochs", type=at_least(1), help="epochs actually run (default: from the run)")
    p.add_argument("--time-s", type=positive_float, help="training wall time in seconds (default: from the run)")
    p.add_argument("--hardware", help="what it trained on, e.g. '1x H100' (default: from the run)")
    p.add_argument("--push", action="store_true", help="also push to the Hub and pin the new commit")
    p.add_argument("--tag", help="with --push: tag the commit")
    p.add_argument("--registry", help="registry folder to write (default: vaezoo's registry/)")
    p.add_argument("--pack", choices=sorted(PACKS),
                   help="ship the weights in this weight pack (a companion distribution, weightpacks/KEY/) instead "
                        "of vaezoo's own archives (default: the pack the entry had, else none)")
    p.add_argument("--answers", metavar="KEY", help="the published result it answers, a key of "
                                                   "registry/references/published.json (e.g. exemplar-vae/hvae)")
    p.set_defaults(func=_cmd_publish)

    p = commands.add_parser(
        "publish-metrics", help="add measurements of a published model to its registry entry",
        description="Join `vaezoo eval NAME -o FILE` reports of a published name (its shipped weights) to its "
                    "registry entry; the weights and recipe stay as they are. A metric already there is replaced "
                    "by a measurement at least as precise.\n\nExample:\n  vaezoo eval fashion-vamp40 --fid -o fid.json"
                    " && vaezoo publish-metrics fashion-vamp40 fid.json",
    )
    p.add_argument("name", help="the pretrained name")
    p.add_argument("files", nargs="+", metavar="FILE", help="`vaezoo eval -o` reports (or metric records)")
    p.add_argument("--registry", help="registry folder (default: vaezoo's registry/)")
    p.set_defaults(func=_cmd_publish_metrics)
