#!/usr/bin/env bash
# `longctx train --device cuda`, its whole wiring run where there is no GPU: the GPU plugin's
# emulated build (LONGCTX_CUDA_PLUGIN = liblongctx_cuda_emu.so: the model's CUDA kernels on CPU
# threads, the GEMM seam as CPU loops, the host's attention in place of the ring).
#  1. the same model as the host: tiny for 3 steps (2 sequences a step) on the device over CP 2
#     and over DP 2 against the CPU run on one PE: every loss, the first step's gradients and
#     the final weights (fp32 tolerance, as for any layout);
#  2. checkpoints to and from the device: 2 steps + save + resume + 1 step on the device equals
#     3 uninterrupted device steps bit for bit, and a device checkpoint resumes on the CPU;
#  3. refusals, each naming what is wrong: --tp 2, --device gpu, a plugin that is not there.
# usage: cuda_emu.sh LONGCTX CMP DATA WORK PLUGIN
set -euo pipefail
longctx=$1 cmp=$2 data=$3 work=$4 plugin=$5
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export LONGCTX_CUDA_PLUGIN=$plugin
common=(--model tiny --seq 100 --steps 3 --lr 1e-2 --warmup 0 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1
        --quiet --seed 7 --data "$data" --accum 2)
run() { "$longctx" train "${common[@]}" "$@"; }

echo "== the device against the host"
run --cp 1 --out ref --dump-params ref.f32 --dump-grads ref.g32
for mesh in "--cp 2" "--cp 1 --dp 2 --accum 1"; do
    tag=${mesh// /}
    tag=${tag//--/}
    run --device cuda $mesh --out d$tag --dump-params d$tag.f32 --dump-grads d$tag.g32 --save-dir s$tag --save-every 2
    grep -q '"gpu_mem_bytes"' d$tag/metrics.jsonl || { echo "FAIL: no gpu_mem_bytes in metrics.jsonl"; exit 1; }
    python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' d$tag/metrics.jsonl
    "$cmp" loss d$tag/metrics.jsonl ref/metrics.jsonl 1e-5
    echo -n "gradients of step 1 ($mesh): "
    "$cmp" params d$tag.g32 ref.g32 1e-5
    echo -n "weights after 3 steps ($mesh): "
    "$cmp" params d$tag.f32 ref.f32 1e-4
done

echo "== checkpoints to and from the device"
run --device cuda --cp 2 --out res --dump-params res.f32 --resume scp2/step-00000002
[ "$(wc -l <res/metrics.jsonl)" -eq 1 ] || { echo "FAIL: the resumed run did not run step 3 alone"; exit 1; }
tail -n 1 dcp2/metrics.jsonl >d2.tail
"$cmp" loss res/metrics.jsonl d2.tail 0
echo -n "weights, resumed on the device: "
"$cmp" params res.f32 dcp2.f32 0
run --cp 1 --out cpu --dump-params cpu.f32 --resume scp2/step-00000002
echo -n "weights, the device's checkpoint resumed on the CPU: "
"$cmp" params cpu.f32 ref.f32 1e-4

echo "== refusals"
refuse() { # expected message, then the arguments
    local want=$1
    shift
    if out=$("$longctx" train "${common[@]}" "$@" 2>&1); then
        echo "FAIL: accepted: $*"
        exit 1
    fi
    grep -q -- "$want" <<<"$out" || { echo "FAIL: $* said: $out"; exit 1; }
    echo "refused ($*): $(grep -- "$want" <<<"$out" | head -1)"
}
refuse "tensor parallelism runs on the CPU only" --device cuda --cp 1 --tp 2
refuse "--device gpu: cpu or cuda" --device gpu
LONGCTX_CUDA_PLUGIN=$work/none.so refuse "needs the GPU plugin" --device cuda
echo "PASS"
