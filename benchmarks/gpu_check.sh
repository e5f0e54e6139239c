#!/usr/bin/env bash
# The GPU checks of the training and evaluation paths, in one run of about 11 minutes on one
# H100-class GPU; what they print goes into docs/performance.md.
#
#   VAEZOO_DATA=/path/to/fashion-mnist bash benchmarks/gpu_check.sh [OUTDIR]
#
# 1. a short real run of fashion-conv64 per compile mode (eager, default, reduce-overhead =
#    CUDA graphs) under bf16 autocast: the step, the loss lines and the img/s of each;
# 2. 2-GPU DDP when there are two GPUs (SyncBatchNorm, the gathered beta-TCVAE, NCCL);
# 3. benchmarks/train_throughput.py: vaezoo against the seed loop, the fraction of peak;
# 4. benchmarks/iwae_nll.py: IWAE k = 5000 on 1,000 test images, extrapolated to 10,000;
# 5. 300 steps of configs/fashion-pixelvae40.yaml (the autoregressive likelihood): its img/s
#    decides how many epochs of that recipe a GPU session affords (65 img/s on one CPU thread);
# 6. 300 steps of each ConvHVAE recipe with CUDA graphs: the epochs per hour of the
#    table's two ConvHVAE rows.
# Needs the project importable (pip install -e ., or PYTHONPATH=. where its dependencies are
# installed) and Fashion-MNIST in $VAEZOO_DATA. Each step has its own time limit, so one that
# hangs does not take the others with it.
#
# On a bare GPU machine that has torch, timm and safetensors but not pydantic (and no network),
# prepare on a machine that has PyPI, from the repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .whl pydantic pydantic-core annotated-types typing-inspection
#   mkdir -p runs/fashion-mnist && cp "$VAEZOO_DATA"/*-ubyte* runs/fashion-mnist/
# carry .whl and runs/fashion-mnist there, and run:
#   pip install --no-index --no-deps .whl/*.whl && VAEZOO_DATA=runs/fashion-mnist bash benchmarks/gpu_check.sh "$OUT"
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-runs/gpu-check}}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-.}
py=${PYTHON:-python3}

$py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'native bf16:',
torch.cuda.is_bf16_supported(including_emulation=False), 'GPUs:', torch.cuda.device_count())" | tee "$out/env.txt"

for mode in off default reduce-overhead; do
  echo "== train fashion-conv64, compile: $mode" | tee -a "$out/train.txt"
  timeout 150 $py -m vaezoo train fashion-conv64 --out "$out/run-$mode" --set trainer.epochs=3 \
    --set trainer.compile=$mode --set trainer.test=never --set trainer.val_limit=2048 --set trainer.log_every=24 \
    2>&1 | grep -E "img/s|error|Error" | tee -a "$out/train.txt"
done

if [ "$($py -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  echo "== 2-GPU DDP, fashion-conv64" | tee -a "$out/train.txt"
  timeout 150 $py -m torch.distributed.run --standalone --nproc-per-node 2 -m vaezoo train fashion-conv64 \
    --out "$out/run-ddp" --set trainer.epochs=2 --set trainer.test=never 2>&1 | grep -E "img/s|note|rror" \
    | tee -a "$out/train.txt"
fi

timeout 240 $py benchmarks/train_throughput.py --device cuda --steps 40 --rounds 3 2>&1 | tee "$out/throughput.txt"
timeout 240 $py benchmarks/train_throughput.py --device cuda --steps 40 --rounds 3 \
  --set trainer.compile=reduce-overhead 2>&1 | tee "$out/throughput-cudagraphs.txt"
timeout 240 $py benchmarks/iwae_nll.py --device cuda --limit 1000 --batch-size 100 2>&1 | tee "$out/iwae.txt"

echo "== train fashion-pixelvae40 (likelihood: pixelcnn), 300 steps" | tee "$out/pixelvae.txt"
timeout 150 $py -m vaezoo train configs/fashion-pixelvae40.yaml --out "$out/run-pixelvae" --set trainer.max_steps=300 \
  --set trainer.test=never --set trainer.val_limit=1000 --set trainer.log_every=50 2>&1 | grep -E "img/s|rror" \
  | tee -a "$out/pixelvae.txt"

for name in fashion-convhvae40 fashion-convhvae40-vamp; do
  echo "== train $name (the ConvHVAE rows), 300 steps with CUDA graphs" | tee -a "$out/convhvae.txt"
  timeout 120 $py -m vaezoo train configs/$name.yaml --out "$out/run-$name" --set trainer.max_steps=300 \
    --set trainer.compile=reduce-overhead --set trainer.test=never --set trainer.val_limit=1000 \
    --set trainer.log_every=50 2>&1 | grep -E "img/s|rror" | tee -a "$out/convhvae.txt"
done
