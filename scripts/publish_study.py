"""Publish the shapes2d disentanglement study: every finished run of its configs as a pretrained name.

    python scripts/publish_study.py [--runs runs] [--only shapes2d-vae ...]

A run of config C with seed 0 is ``runs/C`` and publishes as ``C``; with seed S it is ``runs/C-sS``
(``vaezoo train configs/C.yaml --set trainer.seed=S --out runs/C-sS``) and publishes as ``C-seedS``.
For each: ``vaezoo publish`` (fp16 weights in registry/), then, on those shipped weights,
``vaezoo eval NAME --iw-samples 0`` (-ELBO, reconstruction, KL on the 2,458 test images) and
``vaezoo eval NAME --disentanglement`` (every score on the factor grid), joined by
``vaezoo publish-metrics``; a samples picture for docs/models.md; the entry's "use it for" line.
The commands are the CLI's, run as a user would run them, and printed before they run.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from vaezoo.hub.index import entry_path, read_entry, write_entry
from vaezoo.maintenance.models_doc import samples_picture

STUDY = {
    "shapes2d-vae": "the study's baseline (beta 1): what the other objectives are measured against",
    "shapes2d-beta4": "beta-VAE, beta 4: a stronger KL weight for more independent codes",
    "shapes2d-beta8": "beta-VAE, beta 8: the trade-off pushed further, blurrier reconstructions",
    "shapes2d-betatcvae": "beta-TCVAE: only the total correlation weighted up (beta 6)",
    "shapes2d-factorvae": "FactorVAE: the total correlation penalized through a discriminator (gamma 35)",
    "shapes2d-dipvae": "DIP-VAE-I: decorrelated posterior means (lambda_od 10, lambda_d 100)",
    "shapes2d-annealed": "beta-VAE with a capacity annealed to 25 nats (gamma 100)",
}


HARDWARE = "1 thread of a 2-core Intel Xeon CPU (AVX-512, AMX), no GPU"  # where the study trained


def run(command: list[str]) -> None:
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def publish(config: str, seed: int, runs: Path, scratch: Path) -> None:
    folder = runs / (config if seed == 0 else f"{config}-s{seed}")
    name = config if seed == 0 else f"{config}-seed{seed}"
    if not (folder / "model.safetensors").is_file():
        print(f"skip {name}: {folder} has no finished run", flush=True)
        return
    run(["vaezoo", "publish", str(folder), name, f"vaezoo/{name}", "--config", config, "--hardware", HARDWARE])
    bounds, scores = scratch / f"{name}-bounds.json", scratch / f"{name}-disentanglement.json"
    run(["vaezoo", "eval", name, "--iw-samples", "0", "-q", "-o", str(bounds)])
    run(["vaezoo", "eval", name, "--disentanglement", "-q", "-o", str(scores)])
    run(["vaezoo", "publish-metrics", name, str(bounds), str(scores)])
    run(["vaezoo", "sample", name, "-n", "64", "-o", str(samples_picture(name))])
    path = entry_path(name)
    write_entry(read_entry(path).model_copy(update={"use_for": STUDY[config]}), path.parent)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--only", nargs="+", choices=sorted(STUDY), help="these configs only")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        for config in args.only or STUDY:
            for seed in args.seeds:
                publish(config, seed, args.runs, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
