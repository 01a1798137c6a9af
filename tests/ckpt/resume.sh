#!/usr/bin/env bash
# Resume from a checkpoint equals never stopping.
#  1. bit-for-bit, same layout: 10 steps == 5 steps + save + resume + 5 steps (every loss and
#     the final weights identical), on one PE, on CP 2 and on CP 2 x TP 2;
#  2. across layouts: a checkpoint written under CP 2 resumes under CP 4, CP 2 x DP 2 (accum 1)
#     and CP 2 x TP 2, one written on one PE under CP 2, one written under CP 2 x TP 2 under
#     CP 4 and TP 4: the losses and final weights match the uninterrupted one-PE run within
#     fp32 tolerance;
#  3. --keep K leaves the newest K; --resume DIR picks the newest; a stale .tmp is ignored
#     and cleaned; the model comes from the checkpoint's config.json when no --model is given.
# usage: resume.sh LONGCTX CMP DATA WORK
set -euo pipefail
longctx=$1 cmp=$2 data=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
common=(--model tiny --seq 100 --lr 1e-2 --warmup 2 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1 --quiet
        --seed 7 --data "$data" --steps 10 --accum 2)
run() { "$longctx" train "${common[@]}" "$@"; }
tail_losses() { tail -n 5 "$1" >"$2"; }

for lay in "--cp 1" "--cp 2" "--cp 2 --tp 2"; do
    tag=${lay// /}
    echo "== bit-for-bit, $lay"
    run $lay --out "ref$tag" --dump-params "ref$tag.f32" --save-dir "s$tag" --save-every 5
    test -d "s$tag/step-00000005" && test -d "s$tag/step-00000010"
    run $lay --out "res$tag" --dump-params "res$tag.f32" --resume "s$tag/step-00000005"
    tail_losses "ref$tag/metrics.jsonl" "ref$tag.tail"
    [ "$(wc -l <"res$tag/metrics.jsonl")" -eq 5 ] || { echo "FAIL: the resumed run did not run steps 6..10"; exit 1; }
    "$cmp" loss "res$tag/metrics.jsonl" "ref$tag.tail" 0
    echo -n "weights: "
    "$cmp" params "res$tag.f32" "ref$tag.f32" 0
done

echo "== across layouts"
x() { # name, resume-from, layout of the resumed run
    local name=$1 from=$2
    shift 2
    run "$@" --out "$name" --dump-params "$name.f32" --resume "$from"
    # losses to 1e-5; gradient norms to 1e-4, like the weights: the uninterrupted CP 2 x TP 2
    # run alone is 1.2e-5 from one PE's norm by step 5 on an AVX2 CPU (rounding drift at lr 1e-2)
    "$cmp" loss "$name/metrics.jsonl" "ref--cp1.tail" 1e-5 1e-4
    echo -n "weights ($name): "
    "$cmp" params "$name.f32" "ref--cp1.f32" 1e-4
}
x cp2_to_cp4 "s--cp2/step-00000005" --cp 4
x cp2_to_cp2dp2 "s--cp2/step-00000005" --cp 2 --dp 2 --accum 1
x cp1_to_cp2 "s--cp1/step-00000005" --cp 2 --layout striped
x cp2_to_cp2tp2 "s--cp2/step-00000005" --cp 2 --tp 2
x cp2tp2_to_cp4 "s--cp2--tp2/step-00000005" --cp 4
x cp2tp2_to_tp4 "s--cp2--tp2/step-00000005" --tp 4

echo "== keep, newest, stale tmp, config from the checkpoint"
mkdir -p keep && cp -r "s--cp1/step-00000005" keep/step-00000003.tmp-999999
run --out k --save-dir keep --save-every 2 --keep 2 >/dev/null
ls keep
[ "$(ls keep | tr '\n' ' ')" = "step-00000008 step-00000010 " ] || { echo "FAIL: --keep 2 left: $(ls keep)"; exit 1; }
# no --model: the shapes come from config.json (the default preset would not match)
"$longctx" train --seq 100 --lr 1e-2 --warmup 2 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1 --quiet --seed 7 \
    --data "$data" --steps 12 --accum 2 --out k2 --resume keep --save-dir keep
[ -d keep/step-00000012 ] || { echo "FAIL: no step 12 after resuming from keep"; exit 1; }
"$longctx" ckpt info keep >info.txt
head -5 info.txt
grep -q "^step 12, data position 24" info.txt
grep -q "lm_head.weight  *F32   \[256, 64\]  *65536 bytes" info.txt
grep -q "exp_avg_sq.model.norm.weight" info.txt
grep -q "metadata layout  *dp=1 cp=1 tp=1 zigzag" info.txt
echo "PASS"
