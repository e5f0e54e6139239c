"""What ``vaezoo eval NAME --fid`` spends its time on, stage by stage, for both priors, in one run.

    python benchmarks/sample_quality.py                       # fashion-vamp40, 10,000 samples
    python benchmarks/sample_quality.py fashion-conv64 --samples 10000 --threads 1

Prints each stage's seconds and its share of the run, the training prior beside the fitted GMM
prior, so that the ratio survives a noisy machine; and the metrics' own cost split into the
Fréchet distance, KID and the k-NN metrics on the run's real features.
"""

from __future__ import annotations

import argparse
import time

import torch

import vaezoo
from vaezoo.evaluation.feature_metrics import (
    frechet_distance, kernel_distance, precision_recall_density_coverage,
)
from vaezoo.evaluation.quality import draw_samples, sample_quality
from vaezoo.features import default_features, get_features
from vaezoo.zoo import get_config

STAGES = ("reference_features_s", "gmm_fit_s", "sampling_s", "sample_features_s", "metrics_s", "reconstructions_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", default="fashion-vamp40")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = vaezoo.load(args.name)
    data = get_config(args.name).data
    runs = {prior: sample_quality(model, data, samples=args.samples, prior=prior, progress=False,
                                  reconstructions=prior == "model")
            for prior in ("model", "gmm")}
    print(f"{args.name}: {args.samples:,} samples, {args.threads} thread(s)\n")
    print(f"{'stage':<22}{'training prior':>16}{'share':>8}{'GMM prior':>12}{'share':>8}")
    for stage in STAGES + ("seconds",):
        cells = []
        for report in runs.values():
            seconds, total = report.timing.get(stage), report.timing["seconds"]
            cells += ["-", ""] if seconds is None else [f"{seconds:.1f} s", f"{seconds / total:.0%}"]
        print(f"{stage.removesuffix('_s'):<22}{cells[0]:>16}{cells[1]:>8}{cells[2]:>12}{cells[3]:>8}")

    # the metrics alone, on the features of this run's samples
    net = get_features(default_features(model.input_shape))
    real, _ = net.extract(vaezoo.evaluation.resolve_data(data.model_copy(update={"binarize": "none"})).images)
    fake, _ = net.extract(draw_samples(model, args.samples))
    timings = {}
    for label, metric in (("Fréchet distance", frechet_distance), ("KID, 100 subsets", kernel_distance),
                          ("precision/recall/density/coverage", precision_recall_density_coverage)):
        start = time.perf_counter()
        metric(real, fake)
        timings[label] = time.perf_counter() - start
    total = sum(timings.values())
    print(f"\n{'metric':<36}{'seconds':>9}{'share':>8}")
    for label, seconds in timings.items():
        print(f"{label:<36}{seconds:>9.2f}{seconds / total:>8.0%}")


if __name__ == "__main__":
    main()
