#!/usr/bin/env bash
# bf16 against f32 and against PyTorch in bf16 (issue 28): the small model's full training step
# at 16K and 64K over CP 1 and 2, bf16 beside f32 in one run; the step beside transformers'
# LlamaForCausalLM under autocast to bf16 (and in fp32) on the same weights, tokens and cores,
# medians of interleaved rounds; the attention kernels in bf16 beside torch's sdpa. Needs
# bench/peers/install.sh for the PyTorch rows (absent: they say so). Writes
# bench/results/bf16-DATE.txt. usage: bench/bf16/run.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
b=${1:-build}/longctx
txt=bench/results/bf16-$(date +%F).txt
: >"$txt"
once() { echo "\$ longctx $*" | tee -a "$txt"; "$b" "$@" 2>&1 | tee -a "$txt" || echo "(exit status $?)" | tee -a "$txt"; }
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc) CPUs; $(grep -o -m1 'avx512_bf16' /proc/cpuinfo || echo 'no avx512_bf16'); $(date -u)" | tee -a "$txt"
once bench train --model small --seq 16K --cp 1,2 --dtype bf16,f32 --steps 2 --warm 1
once bench train --model small --seq 64K --cp 1,2 --dtype bf16,f32 --steps 1 --warm 1
once bench train --model small --seq 16K --cp 1 --dtype bf16 --peers torch --rounds 3 --steps 2 --warm 1
once bench train --model small --seq 16K --cp 1 --dtype f32 --peers torch --rounds 3 --steps 2 --warm 1
once bench attn --dtype bf16 --s 8K --d 128 --hq 8 --hkv 2 --mask causal --pass fwd,fwd_bwd --threads 1 --rounds 3 --reps 1
echo "wrote $txt"
