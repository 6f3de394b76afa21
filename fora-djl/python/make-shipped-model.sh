#!/usr/bin/env bash
# Rebuilds every committed model artifact from nothing: the patterns DiT checkpoint, the
# classifier, the exported model directory and the Java golden references.
# Usage: fora-djl/python/make-shipped-model.sh [RUN_DIR]   (RUN_DIR keeps resumable training state)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
run=${1:-$repo/target/dit-run}
ckpt=$repo/fora-examples/model/checkpoints
model=$repo/fora-model/dit-patterns
py=/usr/bin/python3
# torch.set_num_threads(1) does not reach Debian's OpenBLAS thread pool: without these a
# "one-thread" training used ~120 % CPU and competed with any second job on 2 cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
cd "$here"
# The shipped checkpoint's schedule: 3,000 steps at batch 32 and lr 2e-3 on one core, then
# data-parallel on both cores at batch 64 with the learning rate decaying (cosine) from 2e-3
# to 0 at 12,000 steps: about 70 minutes on the 2-core VM. STEPS moves the end of the decay.
$py -m fora_tools.train --run "$run" --steps 3000 --batch 32 --lr 2e-3 --warmup 300 --threads 1
$py -m fora_tools.train --run "$run" --steps "${STEPS:-12000}" --batch 64 --workers 2 --lr 2e-3 \
    --decay-from 3000 --threads 1 --out "$ckpt/dit-patterns.pt"
$py -m fora_tools.classifier --steps 1500 --out "$ckpt/classifier.pt"
$py -m fora_tools.export --checkpoint "$ckpt/dit-patterns.pt" --config patterns --classifier "$ckpt/classifier.pt" \
    --name dit-patterns --bf16 --int8 --out "$model"
$py -m fora_tools.goldens --model "$model" --out "$repo/fora-djl/src/test/resources/golden"
$py -m fora_tools.evaluate --checkpoint "$ckpt/dit-patterns.pt" --classifier "$ckpt/classifier.pt" --samples 500
