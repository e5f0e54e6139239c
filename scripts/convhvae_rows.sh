#!/usr/bin/env bash
# The ConvHVAE rows (Exemplar VAE, Table 1): train, score and publish into the weight pack, then the
# second, independent scoring. Every step resumes where it stopped and skips what is done, so the
# same command continues the work on every machine session (a step of many hours is often cut):
#
#   VAEZOO_DATA=... nohup nice scripts/convhvae_rows.sh fashion-convhvae40 >> runs/fashion-convhvae40.pipeline.log 2>&1 &
#   VAEZOO_DATA=... nohup nice scripts/convhvae_rows.sh fashion-convhvae40-vamp >> runs/fashion-convhvae40-vamp.pipeline.log 2>&1 &
#
# One thread each, so that the two run side by side on two cores. The published entry, its weights
# (weightpacks/conv/) and its pictures are left in the working tree to be reviewed and committed.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1

name=${1:?usage: scripts/convhvae_rows.sh fashion-convhvae40|fashion-convhvae40-vamp}
case $name in
  fashion-convhvae40)
    answers=exemplar-vae/convhvae
    use_for="likelihood with a Gaussian prior from gated convolutions (the ConvHVAE row)" ;;
  fashion-convhvae40-vamp)
    answers=exemplar-vae/convhvae-vampprior
    use_for="likelihood with a VampPrior from gated convolutions (the ConvHVAE + VampPrior row)" ;;
  *) echo "unknown run '$name': this pipeline publishes fashion-convhvae40 and fashion-convhvae40-vamp" >&2; exit 2 ;;
esac

step() { echo "== $(date -u +%FT%TZ) $*"; }

if [ ! -f "runs/$name/model.safetensors" ]; then  # a finished training writes its model; until then, train
  if [ -f "runs/$name/checkpoints/last.safetensors" ]; then
    # to the recipe's epoch count as it is now: a constant learning rate makes a longer run the same
    # run extended, so a recipe given more epochs mid-run stays one that reproduces its weights
    epochs=$(sed -n 's/^  epochs: *\([0-9][0-9]*\) *$/\1/p' "configs/$name.yaml")
    [ -n "$epochs" ] || { echo "configs/$name.yaml has no trainer.epochs line ('  epochs: N')" >&2; exit 2; }
    step "resume the training of $name, to epoch $epochs"
    vaezoo train --resume "runs/$name" --set "trainer.epochs=$epochs"
  else
    step "train $name"
    vaezoo train "configs/$name.yaml" --out "runs/$name"
  fi
fi
step "score and publish $name (fast path, 20 resumable pieces, then its float32 check)"
python scripts/publish_fashion_run.py "$name" --fast-path --shards 20 --pack conv --answers "$answers" \
  --use-for "$use_for" --no-costs
step "second scoring of $name (seed 1, 20 resumable pieces)"
python benchmarks/rescore.py "$name" --shards 1 --pieces 20 --seed 1 --keep "runs/rescore/$name-seed1" --record
step "done: review and commit registry/$name.json, weightpacks/conv/, docs/images/$name-*.png"
