#!/usr/bin/env bash
# Rebuilds every committed model artifact from nothing: the shapes DiT checkpoint, the
# classifier, the exported model directory and the Java golden references.
# Usage: fora-djl/python/make-shipped-model.sh [RUN_DIR]   (RUN_DIR keeps resumable training state)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
run=${1:-$repo/target/dit-run}
ckpt=$repo/fora-examples/model/checkpoints
model=$repo/fora-examples/model/dit-shapes
py=/usr/bin/python3
# torch.set_num_threads(1) does not reach Debian's OpenBLAS thread pool: without these a
# "one-thread" training used ~120 % CPU and competed with any second job on 2 cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
cd "$here"
# The shipped checkpoint's schedule: 7,250 steps at lr 1e-3, then lr 3e-4 up to 12,000 steps
# (about 50 minutes on one core of a 2-core VM). Raise STEPS to train longer.
$py -m fora_tools.train --run "$run" --steps 7250 --batch 32 --lr 1e-3 --warmup 200 --threads 1
$py -m fora_tools.train --run "$run" --steps "${STEPS:-12000}" --batch 32 --lr 3e-4 --threads 1 --out "$ckpt/dit-shapes.pt"
$py -m fora_tools.classifier --steps 1500 --out "$ckpt/classifier.pt"
$py -m fora_tools.export --checkpoint "$ckpt/dit-shapes.pt" --config shapes --classifier "$ckpt/classifier.pt" \
    --name dit-shapes --out "$model"
$py -m fora_tools.goldens --model "$model" --out "$repo/fora-djl/src/test/resources/golden"
$py -m fora_tools.evaluate --checkpoint "$ckpt/dit-shapes.pt" --classifier "$ckpt/classifier.pt" --samples 500
