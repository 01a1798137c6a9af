#!/usr/bin/env bash
# Peak memory per PE (VmHWM, max over PEs, as the trainer reports it) falls with TP under
# sequence parallelism for a fixed sequence: weights, attention heads, the MLP and the vocab
# are split over TP, and --sp shards the residual stream and the saved norm outputs.
# usage: mem_falls_tp.sh LONGCTX DATA WORK
set -euo pipefail
longctx=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
declare -A mem
# the sanitizer pass (LONGCTX_TEST_QUICK) runs a shorter sequence: three 16K runs under ASan
# on a loaded 2-core machine take minutes
seq=16K
[ -n "${LONGCTX_TEST_QUICK:-}" ] && seq=8K
# ASan's quarantine keeps freed blocks resident: measure without it (other tests check reuse)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
for tp in 1 2 4; do
    sp=()
    [ "$tp" -gt 1 ] && sp=(--sp)
    "$longctx" train --model tiny --seq $seq --tp $tp "${sp[@]}" --steps 1 --threads 1 --peak 1 --quiet \
        --train "$data/train.bin" --out "$work/tp$tp"
    mem[$tp]=$(grep -o '"peak_mem_bytes":[0-9]*' "$work/tp$tp/metrics.jsonl" | cut -d: -f2)
    echo "TP $tp${sp:+ +SP}: peak memory per PE $((mem[$tp] / 1048576)) MiB"
done
# the fixed part (binary, runtime, BLAS) does not shrink: ask for a clear fall, not a halving
[ $((mem[1] * 10)) -gt $((mem[2] * 13)) ] && [ $((mem[2] * 10)) -gt $((mem[4] * 12)) ] || {
    echo "FAIL: peak memory does not fall with TP (+SP)"; exit 1; }
echo PASS
