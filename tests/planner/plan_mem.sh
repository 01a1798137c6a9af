#!/usr/bin/env bash
# The planner's memory estimate (longctx plan's mem_total: the model's weights, gradients and
# activations, AdamW's moments, the CP plan's buffers and the process baseline --calibrate
# measures) against the peak the trainer measures (VmHWM, max over PEs), at shapes of at least
# 200 MB per PE: each within 15%.
# usage: plan_mem.sh LONGCTX DATA WORK
set -euo pipefail
longctx=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$longctx" plan --calibrate --profile "$work/host.json" >/dev/null
fail=0
check() { # name pes algo train-flags...
    local name=$1 pes=$2 dp=$3 cp=$4 tp=$5 sp=$6 algo=$7 rec=$8; shift 8
    "$longctx" train --model small --seq 16K "$@" --steps 1 --eval-seqs 1 --peak 1 --quiet \
        --train "$data/train.bin" --out "$work/$name" >/dev/null
    local meas est
    meas=$(grep -o '"peak_mem_bytes":[0-9]*' "$work/$name/metrics.jsonl" | head -1 | cut -d: -f2)
    est=$("$longctx" plan --model small --seq 16K --pes "$pes" --batch "$dp" --profile "$work/host.json" --json |
        grep "\"dp\":$dp,\"cp\":$cp,\"tp\":$tp,\"sp\":$sp,\"cp_algo\":\"$algo\"" |
        grep '"cp_layout":"zigzag","lowering":"one_sided"' | grep "\"recompute\":$rec," |
        grep -o '"mem_total":[0-9]*' | head -1 | cut -d: -f2)
    if [ -z "$meas" ] || [ -z "$est" ]; then
        echo "FAIL $name: no measurement ('$meas') or no estimate ('$est')"; fail=1; return
    fi
    local verdict
    verdict=$(awk -v m="$meas" -v e="$est" 'BEGIN { r = e / m; ok = (m >= 200e6 && r >= 0.85 && r <= 1.15);
        printf "%s measured %.1f MB, estimated %.1f MB, estimate/measured %.3f", ok ? "ok  " : "FAIL", m / 1e6, e / 1e6, r }')
    echo "$verdict  ($name)"
    case $verdict in FAIL*) fail=1 ;; esac
}
check cp1 1 1 1 1 0 ring 0
check cp1_recompute 1 1 1 1 0 ring 1 --recompute
check cp2 2 1 2 1 0 ring 0 --cp 2
check cp2_ulysses 2 1 2 1 0 ulysses 0 --cp 2 --cp-algo ulysses
check tp2 2 1 1 2 0 ring 0 --tp 2
check dp2 2 2 1 1 0 ring 0 --dp 2
[ $fail = 0 ] && echo PASS || exit 1
