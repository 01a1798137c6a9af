#!/usr/bin/env bash
# On the real corpus (python3-doc via prepare-data), a short CP = 2 run of `tiny` learns:
# the loss falls by more than 1 nat/token from ln(256) = 5.55, and the PNG and JSONL appear.
# usage: loss_falls.sh LONGCTX CMP WORK
set -euo pipefail
longctx=$1 cmp=$2 work=$3
if [ ! -d /usr/share/doc/python3-doc/html ]; then
    echo "SKIP: python3-doc is not installed (scripts/setup.sh installs it)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work"
"$longctx" prepare-data "$work/data"
"$longctx" train --model tiny --seq 512 --cp 2 --steps 40 --eval-every 10 --eval-seqs 2 --threads 1 \
    --peak 1 --data "$work/data" --out "$work/out"
"$cmp" falls "$work/out/metrics.jsonl" 1.0
test "$(grep -c '"val_loss":[0-9]' "$work/out/metrics.jsonl")" -eq 4
head -c 8 "$work/out/loss.png" | od -An -c | grep -q 'P   N   G'
echo PASS
