"""Re-score a published model under its protocol in one run, in parallel shards, and compare.

    python benchmarks/rescore.py fashion-hvae40                  # k = 5000 on all 10,000 test images
    python benchmarks/rescore.py fashion-hvae40 --shards 2 --seed 1 -o rescore.json
    python benchmarks/rescore.py fashion-hvae40 --shards 2 --seed 1 --record   # into the registry entry

Each shard is one ``vaezoo eval NAME --start I --limit N`` process on one thread. The noise of
an image is keyed by its index in the whole test set, so the shards together give exactly the
numbers of a single run with the same seed; another ``--seed`` is an independent re-measurement,
which should agree with the registry within the standard errors. The merged report (the
per-shard means and standard errors pooled into the whole set's by ``merge_shards``, what
``vaezoo merge-evals`` runs) is printed beside the registry's values, and ``-o`` writes it in
``vaezoo eval``'s JSON form (``vaezoo publish --metrics`` reads it). Active units need every posterior mean at once, so the merge leaves
them out. ``--record`` writes the re-measured IWAE NLL into the entry's ``rescorings`` (another
seed than the published one; docs/models.md shows it beside the published row).
"""

from __future__ import annotations

import argparse
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
from vaezoo.maintenance.publish import add_rescoring

TEST_IMAGES = 10_000


def at_least_one(text: str) -> int:
    """An argparse type: a whole number >= 1, else the usage line and exit status 2, no traceback."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a published name (vaezoo list --pretrained)")
    parser.add_argument("--shards", type=at_least_one, default=os.cpu_count() or 1,
                        help="parallel processes (default: CPUs)")
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
    size = math.ceil(args.limit / args.shards)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vaezoo-rescore-") as tmp:
        procs = []
        for shard in range(args.shards):
            first = shard * size
            if first >= args.limit:
                break
            out = Path(tmp) / f"shard{shard}.json"
            command = [sys.executable, "-m", "vaezoo", "eval", args.name, "--start", str(first), "--limit",
                       str(min(size, args.limit - first)), "--iw-samples", str(args.iw_samples), "--elbo-samples",
                       str(args.elbo_samples), "--seed", str(args.seed), "--batch-size", str(args.batch_size),
                       "--precision", args.precision,
                       "-q", "-o", str(out)]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            procs.append((out, subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)))
        failed = [p.wait() for _, p in procs]
        if any(failed):
            print(f"a shard failed (exit codes {failed})", file=sys.stderr)
            return 1
        reports = [EvalReport.from_dict(json.loads(out.read_text())) for out, _ in procs]
    seconds = time.perf_counter() - started
    merged = merge_shards(reports)[0].to_dict()  # active units need every posterior mean at once: left out
    merged["timing"] = {"seconds": seconds, "examples_per_s": merged["protocol"]["examples"] / seconds,
                        "device": "cpu", "shards": len(reports)}
    metrics = merged["metrics"]
    print(f"{args.name}: {merged['protocol']['examples']:,} test images, seed {args.seed}, {len(reports)} shards, "
          f"{seconds / 60:.1f} min")
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
