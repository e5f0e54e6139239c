"""Score a finished Fashion-MNIST run under the zoo's protocols and publish it as a pretrained name.

    python scripts/publish_fashion_run.py NAME --use-for "what it is for" [--runs runs] [--hardware TEXT]
    python scripts/publish_fashion_run.py NAME --measure-only   # the evals only, publish later
    python scripts/publish_fashion_run.py NAME --measure-only --shards 10   # a slow model's NLL in 10 pieces

The run is ``runs/NAME``, trained with ``vaezoo train configs/NAME.yaml --out runs/NAME`` (its
checkpoint selected on validation, the test set scored once). Each measurement is a ``vaezoo eval``
of the run's float32 weights, written to ``runs/NAME/metrics-publish/`` and skipped when its file is
already there, so an interrupted publication resumes where it stopped:

- a model with a density: -ELBO with 10 draws, then the IWAE NLL with k = 5000 in float32 on all
  10,000 test images (the zoo's likelihood protocol, docs/models.md); with ``--fast-path`` the NLL
  takes ``vaezoo eval``'s default arithmetic (a bf16 decoder where this CPU has native bf16, the
  densities and the log-sum-exp in float32, recorded in the protocol), and the publication adds the
  check that the registry asks of such a figure: the first 1,000 test images in float32 and on the
  fast path with the same noise (``benchmarks/iwae_precision.py --record``, resumable);
- a VQ model (its code prior fitted first, ``vaezoo fit-prior``): the bound through the code prior in
  one pass, with the codebook's usage and perplexity, then its samples and the probe;
- every model: sample quality through the training prior and, where a Gaussian top latent lets a
  fitted 10-component mixture replace it, through that mixture (``--fid``, ``--fid --prior gmm``),
  the linear probe, the codes' dependence.

Then ``vaezoo publish`` (fp16 weights in registry/, or with ``--pack KEY`` in the weight pack
``weightpacks/KEY/`` for a model the vaezoo archives have no room for), its "use it for" line, the samples pictures of
docs/models.md and what using it costs (``benchmarks/model_costs.py --record``). The commands are
the CLI's, printed before they run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import vaezoo
from vaezoo.evaluation.quality import supports_gmm_prior
from vaezoo.hub.index import entry_path, read_entry, write_entry
from vaezoo.hub.packs import PACKS
from vaezoo.maintenance.models_doc import IMAGES, samples_picture

HARDWARE = "1 thread of a 2-core Intel Xeon CPU (AVX-512, AMX), no GPU"
TEST_IMAGES = 10_000  # Fashion-MNIST's test split, every image scored
ARITHMETIC_CHECK_IMAGES = 1_000  # what the registry asks of a figure scored off float32
POINT_FAMILIES = ("ae",)  # deterministic encoders: no q(z|x), so no bound to score
# discrete codes: one pass gives the bound through the code prior (every importance-weighted one equals it),
# with the codebook's usage; samples come through the code prior
CODE_FAMILIES = ("vqvae",)
# a categorical code's probabilities sum to one (the joint family's c, the vnd family's cut): the codes' covariance
# is singular, no Gaussian total correlation
NO_DEPENDENCE_FAMILIES = ("joint", "vnd")

def iwae_flags(precision: str) -> list[str]:
    """The published NLL's ``vaezoo eval`` flags, the decoder's arithmetic aside."""
    return ["--iw-samples", "5000", "--batch-size", "8", "--precision", precision, "--metrics", "none"]


BOUNDS = {  # the metrics file, then its eval flags
    "elbo.json": ["--iw-samples", "0", "--elbo-samples", "10"],
    # the per-image reconstruction metrics come with the ELBO's run: once is enough
    "iwae.json": iwae_flags("float32"),
}
SAMPLES_AND_CODES = {
    "fid.json": ["--fid"],
    "fidgmm.json": ["--fid", "--prior", "gmm"],
    "probe.json": ["--probe"],
    "dis.json": ["--disentanglement"],
}


def run(command: list[str]) -> None:
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def measure(folder: Path, mixture: bool, shards: int = 1, fast_path: bool = False) -> list[Path]:
    """The evals into ``folder/metrics-publish``; ``mixture``: whether a fitted mixture can replace the prior;
    ``shards``: the IWAE NLL in that many pieces, each kept on disk as it lands (a slow model's hours of
    scoring survive a crash or a session's end), merged by ``vaezoo merge-evals``; ``fast_path``: the
    NLL in ``vaezoo eval``'s default arithmetic, not float32."""
    family = json.loads((folder / "config.json").read_text())["model"].get("family", "vae")
    if family in CODE_FAMILIES:
        evals = {"elbo.json": [], "fid.json": SAMPLES_AND_CODES["fid.json"], "probe.json": SAMPLES_AND_CODES["probe.json"]}
    elif family in POINT_FAMILIES:
        evals = dict(SAMPLES_AND_CODES)
    else:
        evals = {**BOUNDS, **SAMPLES_AND_CODES}
        if fast_path:
            evals["iwae.json"] = iwae_flags("auto")
    if not mixture:  # no Gaussian top latent for a mixture to replace
        evals.pop("fidgmm.json", None)
    if family in NO_DEPENDENCE_FAMILIES:
        del evals["dis.json"]
    out = folder / "metrics-publish"
    out.mkdir(exist_ok=True)
    for file, flags in evals.items():
        target = out / file
        if target.is_file():
            print(f"have {target}", flush=True)
            continue
        partial = target.with_suffix(".partial.json")  # a crash leaves no half-written file behind
        if file == "iwae.json" and shards > 1:
            score_in_shards(folder, flags, shards, partial)
        else:
            run(["vaezoo", "eval", str(folder), *flags, "-q", "-o", str(partial)])
        if file == "iwae.json":
            keep_only_new(partial, out / "elbo.json")
        partial.replace(target)
    return [out / file for file in evals]


def score_in_shards(folder: Path, flags: list[str], shards: int, target: Path) -> None:
    """``vaezoo eval`` over ``shards`` consecutive ranges of the test set, one after the other, each
    skipped when its file is there, then merged into ``target``."""
    size = -(-TEST_IMAGES // shards)
    pieces = []
    for first in range(0, TEST_IMAGES, size):
        piece = target.parent / f"iwae.shard-{first}-{first + size}.json"
        if not piece.is_file():
            partial = piece.with_suffix(".partial.json")
            run(["vaezoo", "eval", str(folder), *flags, "--start", str(first), "--limit", str(size), "-q",
                 "-o", str(partial)])
            partial.replace(piece)
        pieces.append(piece)
    run(["vaezoo", "merge-evals", *map(str, pieces), "-o", str(target)])


def keep_only_new(report: Path, earlier: Path) -> None:
    """Drop from ``report`` the metrics ``earlier`` has. The IWAE run scores the -ELBO too; for a model
    whose sampler draws more than its keyed noise (the vMF posterior's rejection sampler) that second
    estimate, from other batches, differs from the first within its error, and the registry keeps one."""
    data, seen = json.loads(report.read_text()), json.loads(earlier.read_text())["metrics"]
    data["metrics"] = {name: value for name, value in data["metrics"].items() if name not in seen}
    report.write_text(json.dumps(data, indent=2) + "\n")


def finished_run(name: str, runs: Path) -> Path:
    folder = runs / name
    if not (folder / "model.safetensors").is_file():
        raise SystemExit(f"{folder} has no finished run: train it with "
                         f"`vaezoo train configs/{name}.yaml --out {folder}` first")
    return folder


def publish(name: str, use_for: str, runs: Path, hardware: str, costs: bool = True, shards: int = 1,
            fast_path: bool = False, pack: str | None = None, answers: str | None = None) -> None:
    folder = finished_run(name, runs)
    mixture = supports_gmm_prior(vaezoo.load(folder))
    files = measure(folder, mixture, shards, fast_path)
    metrics = [arg for file in files for arg in ("--metrics", str(file))]
    run(["vaezoo", "publish", str(folder), name, f"vaezoo/{name}", *metrics, "--hardware", hardware,
         *(["--pack", pack] if pack else []), *(["--answers", answers] if answers else [])])
    path = entry_path(name)
    write_entry(read_entry(path).model_copy(update={"use_for": use_for}), path.parent)
    if fast_path:  # resumed from its file when an earlier publication stopped inside it
        run([sys.executable, "benchmarks/iwae_precision.py", "--model", name, "--limit", str(ARITHMETIC_CHECK_IMAGES),
             "--threads", "1", "--record", "-o", str(folder / "metrics-publish" / "precision.json")])
    run(["vaezoo", "sample", name, "-n", "64", "-o", str(samples_picture(name))])
    if mixture:
        run(["vaezoo", "sample", name, "--prior", "both", "-n", "32", "--nrow", "8",
             "-o", str(IMAGES / f"{name}-priors.png")])
    if costs:
        run([sys.executable, "benchmarks/model_costs.py", name, "--record"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the run's folder name under --runs and its config's name")
    parser.add_argument("--use-for", help="the registry's one line on what the model is for (needed to publish)")
    parser.add_argument("--measure-only", action="store_true",
                        help="run the evals into the run's metrics-publish/ and stop before publishing")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--shards", type=int, default=1,
                        help="score the IWAE NLL in this many pieces, each kept as it lands (default 1)")
    parser.add_argument("--fast-path", action="store_true",
                        help="score the IWAE NLL in vaezoo eval's default arithmetic (bf16 decoder where the CPU has "
                             "native bf16), then check it against float32 on 1,000 test images")
    parser.add_argument("--hardware", default=HARDWARE, help="what it trained on")
    parser.add_argument("--pack", choices=sorted(PACKS),
                        help="ship the weights in this weight pack instead of vaezoo's archives (registry/README.md)")
    parser.add_argument("--answers", metavar="KEY",
                        help="the published row it answers, a key of registry/references/published.json")
    parser.add_argument("--no-costs", dest="costs", action="store_false",
                        help="leave out the timings (take them later, on a machine doing nothing else)")
    args = parser.parse_args(argv)
    if args.measure_only:
        folder = finished_run(args.name, args.runs)
        measure(folder, supports_gmm_prior(vaezoo.load(folder)), args.shards, args.fast_path)
        return 0
    if not args.use_for:
        parser.error("--use-for is required to publish (or pass --measure-only)")
    publish(args.name, args.use_for, args.runs, args.hardware, args.costs, args.shards, args.fast_path, args.pack,
            args.answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
