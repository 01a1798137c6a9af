#!/usr/bin/env bash
# The main job: set up (Debian packages, build), prepare the corpus (the Python documentation
# from python3-doc, byte tokens), and train the `small` Llama-3-style model on 16K-token
# sequences split over CP = 2 PEs on the built-in shared-memory backend for about five
# minutes (the step count is fitted to the machine after two steps), printing the loss and
# tokens/s per step, and leaving runs/main/loss.png and runs/main/metrics.jsonl.
# Extra arguments go to `longctx train` (e.g. --seq 32K, --dtype bf16, --time-budget 600).
# The collective-permute benchmark is still there: build/longctx bench permute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
data=${LONGCTX_DATA:-build/pydoc}
if [ ! -s "$data/train.bin" ] || [ ! -s "$data/val.bin" ]; then
    build/longctx prepare-data "$data"
fi
exec build/longctx train --model small --seq 16K --cp 2 --dp 1 --steps 1000 --time-budget 270 \
    --warmup 2 --lr 3e-3 --eval-every 4 --eval-seqs 1 --data "$data" --out runs/main "$@"
