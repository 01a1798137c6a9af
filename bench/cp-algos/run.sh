#!/usr/bin/env bash
# The CP algorithms side by side (issue 24): `bench ring` (attention alone: step time, exposed
# communication, bytes sent per PE, the plan's memory, one- vs two-sided all-to-all) and
# `bench train` (the small model's full step) at 16K and 64K over CP 2 and 4, and the work
# imbalance of each layout on the python-doc corpus. On this 2-core machine CP 4 runs 4 PEs on
# 2 cores (oversubscribed: said in every table). Writes bench/results/cp-algos-DATE.txt.
# usage: bench/cp-algos/run.sh [BUILD_DIR] [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
b=${1:-build}/longctx
data=${2:-build/pydoc}
day=$(date +%F)
txt=bench/results/cp-algos-$day.txt
: >"$txt"
once() { echo "\$ longctx $*" | tee -a "$txt"; "$b" "$@" 2>&1 | tee -a "$txt" || echo "(exit status $?)" | tee -a "$txt"; }
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc) CPUs, $(date -u)" | tee -a "$txt"
# attention alone, fwd+bwd, 16K: every algorithm and all-to-all lowering
once bench ring --pes 2,4 --s 16K --layout zigzag --algo ring,allgather,ulysses,hybrid --ulysses 2 \
    --lowering one_sided,two_sided,zero_copy --pass fwd_bwd --hq 8 --hkv 2 --d 64
# 64K: the forward (a 64K fwd+bwd takes minutes per row here)
once bench ring --pes 2,4 --s 64K --layout zigzag --algo ring,allgather,ulysses,hybrid --ulysses 2 \
    --lowering one_sided,two_sided --pass fwd --hq 8 --hkv 2 --d 64
# the small model's full step (bf16 off: the algorithms, not the dtype)
for a in "ring" "allgather" "ulysses"; do
    once bench train --model small --seq 16K --cp 2 --steps 2 --warm 1 --cp-algo $a
done
for a in "ring" "ulysses" "hybrid --ulysses 2"; do
    once bench train --model small --seq 16K --cp 4 --steps 2 --warm 1 --cp-algo $a
done
for a in "ring" "allgather" "ulysses"; do
    once bench train --model small --seq 64K --cp 2 --steps 1 --warm 1 --cp-algo $a
done
# work per PE on packed documents (no attention runs: the kernels' tile count)
once bench balance --data "$data" --seq 16K,64K --cp 2,4,8 --samples 32
once bench balance --data "$data" --seq 64K --cp 2,4,8 --samples 32 --window 4096
echo "wrote $txt"
