"""Re-score a published model under its protocol in one run, in parallel shards, and compare.

    python benchmarks/rescore.py fashion-hvae40                  # k = 5000 on all 10,000 test images
    python benchmarks/rescore.py fashion-hvae40 --shards 2 --seed 1 -o rescore.json
    python benchmarks/rescore.py fashion-hvae40 --shards 2 --seed 1 --record   # into the registry entry
    python benchmarks/rescore.py fashion-conv64 --shards 2 --pieces 20 --keep runs/rescore/conv64-seed1   # resumable

The images are split into ``--pieces`` consecutive ranges (default: one per shard); each is one
``vaezoo eval NAME --start I --limit N`` process on one thread, ``--shards`` at a time. The noise
of an image is keyed by its index in the whole test set, so the pieces together give exactly the
numbers of a single run with the same seed; another ``--seed`` is an independent re-measurement,
which should agree with the registry within the standard errors. A scoring of many hours keeps
its pieces with ``--keep DIR``: each lands there when it finishes, a rerun scores only the
missing ones, and the folder (locked while a run uses it) refuses pieces of other weights or
settings. The merged report (the per-piece means and standard errors pooled into the whole set's
by ``merge_shards``, what ``vaezoo merge-evals`` runs) is printed beside the registry's values,
and ``-o`` writes it in ``vaezoo eval``'s JSON form (``vaezoo publish --metrics`` reads it).
Active units need every posterior mean at once, so the merge leaves them out. ``--record``
writes the re-measured IWAE NLL into the entry's ``rescorings`` (another seed than the published
one; docs/models.md shows it beside the published row).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vaezoo.evaluation.report import EvalReport
from vaezoo.evaluation.shards import merge_shards
from vaezoo.fastpath import PRECISIONS
from vaezoo.hub.index import get_entry
from vaezoo.layout.lock import run_folder_lock
from vaezoo.maintenance.publish import add_rescoring

TEST_IMAGES = 10_000
SETTINGS_FILE = "settings.json"  # in a --keep folder: what its pieces scored
PIECES_FOLDER = "pieces"  # in a --keep folder: one eval report per piece
POLL_SECONDS = 2


def at_least_one(text: str) -> int:
    """An argparse type: a whole number >= 1, else the usage line and exit status 2, no traceback."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def piece_ranges(limit: int, pieces: int) -> list[tuple[int, int]]:
    """``(first image, count)`` of ``pieces`` consecutive ranges covering the first ``limit`` test images."""
    size = math.ceil(limit / pieces)
    return [(first, min(size, limit - first)) for first in range(0, limit, size)]


def check_kept_settings(folder: Path, settings: dict) -> None:
    """A kept folder holds pieces of one scoring only: the first run writes its settings (the weights'
    sha256 among them), a later run with others is refused before it scores anything."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        path.write_text(json.dumps(settings, indent=1) + "\n")
        return
    kept = json.loads(path.read_text())
    differ = sorted(key for key in {**kept, **settings} if kept.get(key) != settings.get(key))
    if differ:
        theirs = ", ".join(f"{key} {kept.get(key)!r}" for key in differ)
        ours = ", ".join(repr(settings.get(key)) for key in differ)
        raise SystemExit(f"--keep {folder} holds pieces of another scoring ({theirs}; this run: {ours}): "
                         f"pick another folder")


def score_pieces(args, folder: Path) -> list[Path]:
    """Each piece one ``vaezoo eval`` process on one thread, ``args.shards`` at a time; a piece already in
    ``folder`` is kept, a finished one lands there whole (written aside, then renamed)."""
    ranges = piece_ranges(args.limit, args.pieces or args.shards)
    folder = folder / PIECES_FOLDER  # beside the lock, not under it: each eval writes its piece unlocked
    folder.mkdir(exist_ok=True)
    paths = [folder / f"piece-{first}-{first + count}.json" for first, count in ranges]
    waiting = [(first, count, path) for (first, count), path in zip(ranges, paths) if not path.is_file()]
    if len(waiting) < len(paths):
        print(f"{len(paths) - len(waiting)} of {len(paths)} pieces already in {folder}", flush=True)
    total, done, started, running = sum(count for _, count, _ in waiting), 0, time.perf_counter(), []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        while waiting or running:
            while waiting and len(running) < args.shards:
                first, count, path = waiting.pop(0)
                partial = path.with_suffix(".partial.json")
                command = [sys.executable, "-m", "vaezoo", "eval", args.name, "--start", str(first), "--limit",
                           str(count), "--iw-samples", str(args.iw_samples), "--elbo-samples", str(args.elbo_samples),
                           "--seed", str(args.seed), "--batch-size", str(args.batch_size), "--precision",
                           args.precision, "-q", "-o", str(partial)]
                running.append((count, partial, path, subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)))
            time.sleep(POLL_SECONDS)
            for item in [r for r in running if r[3].poll() is not None]:
                running.remove(item)
                count, partial, path, process = item
                if process.returncode != 0:
                    raise SystemExit(f"the piece {path.name} failed (exit code {process.returncode})")
                partial.replace(path)
                done += count
                elapsed = time.perf_counter() - started
                print(f"{path.name}: {done:,}/{total:,} images in {elapsed / 60:.1f} min, "
                      f"eta {elapsed * (total - done) / done / 60:.0f} min", flush=True)
    finally:
        for _, _, _, process in running:  # a failure or an interrupt leaves no scoring behind it
            process.kill()
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a published name (vaezoo list --pretrained)")
    parser.add_argument("--shards", type=at_least_one, default=os.cpu_count() or 1,
                        help="parallel processes (default: CPUs)")
    parser.add_argument("--pieces", type=at_least_one,
                        help="split the images into this many pieces, --shards at a time (default: --shards)")
    parser.add_argument("--keep", type=Path,
                        help="keep each piece's report in this folder; a rerun skips the pieces there")
    parser.add_argument("--iw-samples", type=at_least_one, default=5000)
    parser.add_argument("--elbo-samples", type=at_least_one, default=10)
    parser.add_argument("--limit", type=at_least_one, default=TEST_IMAGES, help="score the first N test images")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (another seed: an independent run)")
    parser.add_argument("--batch-size", type=at_least_one, default=8)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the decoder's arithmetic for the NLL (vaezoo eval --precision; default auto)")
    parser.add_argument("-o", "--output", help="write the merged report (vaezoo eval JSON) here")
    parser.add_argument("--record", action="store_true",
                        help="record the IWAE NLL in the registry entry as an independent re-measurement")
    args = parser.parse_args(argv)
    entry = get_entry(args.name)
    started = time.perf_counter()
    settings = {"name": args.name, "sha256": entry.weights.sha256, "limit": args.limit,
                "pieces": args.pieces or args.shards, "iw_samples": args.iw_samples,
                "elbo_samples": args.elbo_samples, "seed": args.seed, "precision": args.precision}
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            folder = args.keep
            stack.enter_context(run_folder_lock(folder, "benchmarks/rescore.py"))
            check_kept_settings(folder, settings)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vaezoo-rescore-")))
        paths = score_pieces(args, folder)
        reports = [EvalReport.from_dict(json.loads(path.read_text())) for path in paths]
    seconds = time.perf_counter() - started
    merged = merge_shards(reports)[0].to_dict()  # active units need every posterior mean at once: left out
    # the pieces' own seconds, one thread each: a resumed scoring's whole cost, not this run's share of it
    thread_seconds = sum(r.timing.get("seconds", 0.0) for r in reports)
    merged["timing"] = {"seconds": seconds, "thread_seconds": thread_seconds, "device": "cpu",
                        "shards": args.shards, "pieces": len(reports)}
    metrics = merged["metrics"]
    print(f"{args.name}: {merged['protocol']['examples']:,} test images, seed {args.seed}, {len(reports)} pieces, "
          f"{seconds / 60:.1f} min here, {thread_seconds / 3600:.2f} thread-hours in all")
    registry = {m.name: m for m in entry.metrics}
    # the same test images: the registry's standard error is the yardstick of a re-measurement
    print(f"{'metric':<14} {'this run':>18} {'registry':>18} {'difference / its s.e.':>22}")
    for name, m in metrics.items():
        ours = f"{m['value']:.3f} ± {m['stderr']:.3f}" if m["stderr"] is not None else f"{m['value']:.3f}"
        theirs, ratio = "-", "-"
        if name in registry:
            r = registry[name]
            theirs = f"{r.value:.3f}" + (f" ± {r.stderr:.3f}" if r.stderr is not None else "")
            if r.stderr:
                ratio = f"{(m['value'] - r.value) / r.stderr:+.2f}"
        print(f"{name:<14} {ours:>18} {theirs:>18} {ratio:>22}")
    if args.output:
        Path(args.output).write_text(json.dumps(merged, indent=2) + "\n")
    if args.record:
        command = (f"python benchmarks/rescore.py {args.name} --shards {args.shards} --seed {args.seed} "
                   f"--precision {args.precision}")
        print(f"recorded in {add_rescoring(args.name, merged, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
