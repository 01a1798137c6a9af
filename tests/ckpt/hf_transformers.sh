#!/usr/bin/env bash
# transformers loads our checkpoint and gives our loss; save_pretrained folders load in
# longctx with transformers' loss (hf_check.py). Needs the peers' venv (bench/peers/.venv
# with torch and transformers): without it the test skips (77), and it never runs in CI.
# usage: hf_transformers.sh LONGCTX CMP DATA WORK VENV
set -euo pipefail
longctx=$1 cmp=$2 data=$3 work=$4 venv=$5
here=$(cd "$(dirname "$0")" && pwd)
py=$venv/bin/python
if [ ! -x "$py" ] || ! "$py" -c "import torch, transformers" 2>/dev/null; then
    echo "SKIP: no $venv with torch and transformers (bench/peers/install.sh; never in CI)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$longctx" train --model tiny --seq 100 --lr 1e-2 --warmup 2 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1 \
    --quiet --seed 7 --data "$data" --steps 4 --out t --save-dir ck --rope-theta 30000
OMP_NUM_THREADS=1 "$py" "$here/hf_check.py" "$longctx" ck/step-00000004 "$work" 2>&1 | grep -v "Loading weights"
