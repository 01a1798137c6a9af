#!/usr/bin/env bash
# The trainer gives the same model on any mesh: `tiny` for 3 optimizer steps on one PE
# (accum 2) is the reference; every other run uses the same global batch (2 sequences: accum
# 2 / DP) and must match its per-step loss and final weights within fp32 tolerance.
# usage: equiv.sh LONGCTX CMP DATA WORK TOL GTOL REF_ARGS -- RUN_ARGS [-- RUN_ARGS ...]
# TOL (weights after 3 steps, norm-wise) and GTOL (the first step's all-reduced gradients);
# 0 demands bit-identity. AdamW normalises every gradient element, so elements whose gradient
# is a near-cancelling sum move by +-lr whatever their size: the weights drift further apart
# than the gradients, and get the looser bound.
set -euo pipefail
longctx=$1 cmp=$2 data=$3 work=$4 tol=$5 gtol=$6
shift 6
common=(--model tiny --seq 100 --steps 3 --lr 1e-2 --warmup 0 --eval-every 0 --eval-seqs 1
        --peak 1 --threads 1 --quiet --seed 7 --data "$data")
rm -rf "$work" && mkdir -p "$work"
ref=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do ref+=("$1"); shift; done
"$longctx" train "${common[@]}" "${ref[@]}" --out "$work/ref" --dump-params "$work/ref.f32" --dump-grads "$work/ref.g32"
i=0
while [ $# -gt 0 ]; do
    shift # the --
    run=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do run+=("$1"); shift; done
    i=$((i + 1))
    echo "== ${run[*]}"
    "$longctx" train "${common[@]}" "${run[@]}" --out "$work/r$i" --dump-params "$work/r$i.f32" --dump-grads "$work/r$i.g32"
    # every line one JSON object (the optional fields of a CP run once broke it)
    python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$work/r$i/metrics.jsonl"
    "$cmp" loss "$work/r$i/metrics.jsonl" "$work/ref/metrics.jsonl" "$gtol"
    echo -n "gradients of step 1: "
    "$cmp" params "$work/r$i.g32" "$work/ref.g32" "$gtol"
    echo -n "weights after 3 steps: "
    "$cmp" params "$work/r$i.f32" "$work/ref.f32" "$tol"
done
echo "PASS"
