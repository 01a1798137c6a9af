#!/usr/bin/env bash
# The Hopper forward kernel as ptxas sees it (no device needed): every variant without spills,
# without C7515, the note that wgmma.mma_async instructions are serialised because registers
# of an in-flight wgmma are defined by other instructions inside the pipeline stage (that turns
# the overlap of the softmax with the P.V product into a serial chain), and without C7508, the
# note that every setmaxnreg was ignored because the register count at entry is unknown (as
# with __launch_bounds__ lacking its blocks-per-SM minimum): the consumer warpgroups would then
# keep the launch's share instead of 232 registers, while the kernel still compiles and runs.
# The last line is the counts, which scripts/gpu-check puts in its summary.
# usage: sm90_ptxas.sh NVCC SRC_ROOT WORK
set -uo pipefail
nvcc=$1 root=$2 work=$3
command -v "$nvcc" >/dev/null 2>&1 || { echo "no nvcc: skipped"; exit 77; }
mkdir -p "$work"
out=$("$nvcc" -O3 -arch=sm_90a -std=c++17 -I"$root/include" -I"$root/src" -I"$root/src/attn/cuda" -I"$root/src/attn/cuda/arch" -cubin -Xptxas -v \
    "$root/src/attn/cuda/attn_fwd_sm90.cu" -o "$work/attn_fwd_sm90.cubin" 2>&1) || { echo "$out"; echo "FAIL: nvcc"; exit 1; }
kernels=$(grep -c "Compiling entry function" <<<"$out")
serial=$(grep -c "C7515" <<<"$out")
ignored=$(grep -c "C7508" <<<"$out")
spills=$(grep -Eo "[0-9]+ bytes spill stores" <<<"$out" | awk '{s += $1} END {print s + 0}')
grep -E "Used [0-9]+ registers" <<<"$out" | sort | uniq -c
counts="$kernels kernels: $serial serialised by C7515, $ignored setmaxnreg ignored by C7508, $spills bytes of spill stores"
if [ "$kernels" -ge 8 ] && [ "$serial" -eq 0 ] && [ "$ignored" -eq 0 ] && [ "$spills" -eq 0 ]; then
    echo "PASS: $counts"
else
    grep -E "C7515|C7508" <<<"$out" | head -6
    echo "FAIL: $counts"
    exit 1
fi
